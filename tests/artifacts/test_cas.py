"""The content-addressed store: round trips, dedupe, atomic writes, verified reads, no path tricks."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from loopml.artifacts import ArtifactStore, FsspecBackend, MemoryBackend
from loopml.artifacts._cas import MAGIC
from loopml.kernel.exceptions import ArtifactError, IntegrityError, NotFoundError


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return ArtifactStore(str(tmp_path / "cas"))
    return ArtifactStore(MemoryBackend())


def _object_path(root: Path, digest: str) -> Path:
    return root / "objects" / digest[:2] / digest[2:]


def test_put_and_get_round_trip_with_meta(store: ArtifactStore) -> None:
    info = store.put_bytes(b"hello", media_type="text/plain", meta={"k": 1})
    assert info.digest == hashlib.sha256(b"hello").hexdigest()
    assert store.get_bytes(info.digest) == b"hello"
    stored = store.info(info.digest)
    assert (stored.size, stored.media_type, stored.meta) == (5, "text/plain", {"k": 1})
    assert store.exists(info.digest) and store.verify(info.digest)


def test_same_bytes_are_stored_once(store: ArtifactStore) -> None:
    a = store.put_bytes(b"same")
    b = store.put_bytes(b"same", media_type="text/plain")
    assert a.digest == b.digest
    assert list(store.digests()) == [a.digest]


def test_put_file_streams_a_file(tmp_path: Path, store: ArtifactStore) -> None:
    path = tmp_path / "big.bin"
    data = os.urandom(3 * (1 << 20) + 17)  # more than one chunk
    path.write_bytes(data)
    info = store.put_file(path)
    assert info.size == len(data)
    assert store.get_bytes(info.digest) == data


def test_missing_artifact_is_not_found(store: ArtifactStore) -> None:
    with pytest.raises(NotFoundError, match="artifact objects/ab/.* not found"):
        store.get_bytes("ab" * 32)


@pytest.mark.parametrize(
    "digest",
    ["../../etc/passwd", "ab" * 32 + "\n", "AB" * 32, "ab" * 31, "ab" * 32 + "/..", "", "objects/ab"],
)
def test_no_caller_string_becomes_a_path(store: ArtifactStore, digest: str) -> None:
    for call in (store.get_bytes, store.exists, store.info):
        with pytest.raises(ArtifactError, match="invalid artifact digest"):
            call(digest)


def test_corrupt_payload_fails_on_read(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "cas"))
    info = store.put_bytes(b"payload bytes")
    path = _object_path(tmp_path / "cas", info.digest)
    path.write_bytes(path.read_bytes().replace(b"payload", b"PAYLOAD"))
    with pytest.raises(IntegrityError, match=f"artifact {info.digest[:12]} is corrupt"):
        store.get_bytes(info.digest)
    assert store.verify(info.digest) is False


@pytest.mark.parametrize(
    "garbage",
    [b"", b"not an envelope at all", MAGIC + (5).to_bytes(4, "big") + b"{bad}", MAGIC + (2).to_bytes(4, "big") + b"[]"],
)
def test_corrupt_envelope_fails_on_read(tmp_path: Path, garbage: bytes) -> None:
    store = ArtifactStore(str(tmp_path / "cas"))
    info = store.put_bytes(b"x")
    _object_path(tmp_path / "cas", info.digest).write_bytes(garbage)
    with pytest.raises(IntegrityError, match=info.digest[:12]):
        store.get_bytes(info.digest)


def test_truncated_object_fails_on_read(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "cas"))
    info = store.put_bytes(b"0123456789" * 100)
    path = _object_path(tmp_path / "cas", info.digest)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(IntegrityError, match="corrupt"):
        store.get_bytes(info.digest)


def test_putting_again_repairs_a_corrupt_object(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "cas"))
    info = store.put_bytes(b"precious")
    path = _object_path(tmp_path / "cas", info.digest)
    path.write_bytes(b"rot")
    store.put_bytes(b"precious")
    assert store.get_bytes(info.digest) == b"precious"


class _FailingStream(io.RawIOBase):
    """Yields some bytes, then the disk 'fails'."""

    def __init__(self) -> None:
        self.sent = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if not self.sent:
            self.sent = True
            return b"partial"
        raise OSError("disk full")


def test_a_failed_write_leaves_no_object_and_no_temp_file(tmp_path: Path) -> None:
    backend = FsspecBackend(str(tmp_path / "cas"))
    key = "objects/ab/" + "c" * 62
    with pytest.raises(ArtifactError, match="could not write artifact .*disk full"):
        backend.put_atomic(key, _FailingStream())
    assert not backend.exists(key)
    assert list((tmp_path / "cas" / "tmp").iterdir()) == []


def test_writes_leave_no_temp_files(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "cas"))
    for i in range(3):
        store.put_bytes(f"v{i}".encode())
    assert list((tmp_path / "cas" / "tmp").iterdir()) == []
    assert len(list(store.digests())) == 3


def test_bytes_that_do_not_hash_to_their_digest_are_never_kept(store: ArtifactStore) -> None:
    """A source that changes while it is copied (put_file on a growing file) is refused."""
    claimed = hashlib.sha256(b"what was hashed").hexdigest()
    with pytest.raises(ArtifactError, match="source changed while it was being stored"):
        store._put(claimed, 15, io.BytesIO(b"what was copied"), "application/octet-stream", {})
    assert not store.exists(claimed)


def test_an_unknown_url_scheme_is_an_artifact_error_naming_the_url() -> None:
    with pytest.raises(ArtifactError, match=r"artifact store URL 'nosuchproto://bucket/x': .*nosuchproto"):
        ArtifactStore("nosuchproto://bucket/x")


def test_s3_without_s3fs_names_the_extra_to_install() -> None:
    # A fresh interpreter where s3fs cannot be imported (fsspec caches drivers it loaded).
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['s3fs'] = None\n"
        "from loopml.artifacts import ArtifactStore\n"
        "from loopml.kernel.exceptions import MissingExtraError\n"
        "try:\n    ArtifactStore('s3://bucket/cas')\n"
        "except MissingExtraError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'loopml[s3]'" in out.stdout, out.stdout + out.stderr
