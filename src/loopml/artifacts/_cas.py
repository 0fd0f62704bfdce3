"""Content-addressed artifact store over fsspec.

Layout under the root URL::

    objects/ab/cdef...   one object per sha256 digest, written once, never changed

Each object is a versioned envelope: an 8-byte magic ``LMLART01``, a 4-byte
big-endian header length, a JSON header (``media_type``, ``size``, ``meta``),
then the payload. The digest addresses the *payload*, so the same bytes dedupe
whatever their media type. Writes go to a temporary name and are renamed into
place (atomic on local disks); reads verify the digest before returning bytes.
No caller-supplied name ever becomes a path: only hex digests do.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from loopml.kernel.exceptions import (
    ArtifactError,
    IntegrityError,
    MissingExtraError,
    NotFoundError,
)

__all__ = ["ArtifactInfo", "ArtifactStore", "ByteBackend", "FsspecBackend", "MemoryBackend"]

MAGIC = b"LMLART01"
_DIGEST_RE = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ByteBackend(Protocol):
    """The dumb byte store the CAS sits on: whole objects by key, atomic put."""

    def put_atomic(self, key: str, data: BinaryIO) -> None: ...
    def open(self, key: str) -> BinaryIO: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def keys(self, prefix: str) -> Iterator[str]: ...


@dataclass(frozen=True)
class ArtifactInfo:
    digest: str
    size: int
    media_type: str
    meta: dict[str, Any] = field(default_factory=dict)


class FsspecBackend:
    """Any fsspec filesystem; local paths by default."""

    def __init__(self, url: str) -> None:
        try:
            import fsspec
        except ImportError as exc:  # pragma: no cover - core dependency
            raise ArtifactError("fsspec is required for the artifact store") from exc
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url)
        except ImportError as exc:
            # fsspec imports the filesystem's driver on demand: name the extra that ships it.
            if url.split("://", 1)[0].lower() in ("s3", "s3a"):
                raise MissingExtraError("s3fs", "s3", f"the artifact store at {url!r}") from exc
            raise ArtifactError(f"artifact store URL {url!r}: {exc}") from exc
        except (ValueError, OSError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ArtifactError(f"artifact store URL {url!r}: {first}") from exc
        self.root = self.root.rstrip("/")
        self._local = getattr(self.fs, "protocol", None) in ("file", ("file", "local"), "local") or (
            isinstance(self.fs.protocol, tuple) and "file" in self.fs.protocol
        )
        if self._local:
            os.makedirs(self.root, exist_ok=True)

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}"

    def put_atomic(self, key: str, data: BinaryIO) -> None:
        final = self._path(key)
        tmp = self._path(f"tmp/{uuid.uuid4().hex}")
        try:
            if self._local:
                os.makedirs(os.path.dirname(final), exist_ok=True)
                os.makedirs(os.path.dirname(tmp), exist_ok=True)
                with open(tmp, "wb") as out:
                    while chunk := data.read(_CHUNK):
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, final)
                _fsync_dir(os.path.dirname(final))  # the rename itself survives a power cut
            else:
                # Object stores have atomic PUTs: write the final key in one request.
                with self.fs.open(final, "wb") as out:
                    while chunk := data.read(_CHUNK):
                        out.write(chunk)
        except OSError as exc:
            raise ArtifactError(f"could not write artifact {key}: {exc}") from exc
        finally:
            if self._local and os.path.exists(tmp):
                os.unlink(tmp)

    def open(self, key: str) -> BinaryIO:
        try:
            if self._local:  # the same file, without fsspec's wrapper object
                return open(self._path(key), "rb")
            return self.fs.open(self._path(key), "rb")
        except FileNotFoundError as exc:
            raise NotFoundError(f"artifact {key} not found in the store") from exc
        except OSError as exc:
            raise ArtifactError(f"could not read artifact {key}: {exc}") from exc

    def exists(self, key: str) -> bool:
        try:
            if self._local:
                return os.path.exists(self._path(key))
            return bool(self.fs.exists(self._path(key)))
        except OSError as exc:
            raise ArtifactError(f"could not reach the artifact store: {exc}") from exc

    def delete(self, key: str) -> None:
        try:
            self.fs.rm(self._path(key))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ArtifactError(f"could not delete artifact {key}: {exc}") from exc

    def keys(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix)
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ArtifactError(f"could not list the artifact store: {exc}") from exc
        strip = len(self.root) + 1
        for path in found:
            yield path[strip:] if path.startswith(self.root) else path


class MemoryBackend:
    """In-memory bytes, for tests and notebooks (a public test double)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_atomic(self, key: str, data: BinaryIO) -> None:
        self.objects[key] = data.read()

    def open(self, key: str) -> BinaryIO:
        try:
            return io.BytesIO(self.objects[key])
        except KeyError as exc:
            raise NotFoundError(f"artifact {key} not found in the store") from exc

    def exists(self, key: str) -> bool:
        return key in self.objects

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def keys(self, prefix: str) -> Iterator[str]:
        return iter([k for k in self.objects if k.startswith(prefix)])


def _key(digest: str) -> str:
    # fullmatch: ``match`` with ``$`` would accept a trailing newline.
    if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
        raise ArtifactError(f"invalid artifact digest {digest!r}: expected 64 lowercase hex characters")
    return f"objects/{digest[:2]}/{digest[2:]}"


class ArtifactStore:
    """Put bytes, get them back by sha256, verified."""

    def __init__(self, backend: ByteBackend | str) -> None:
        self.backend: ByteBackend = FsspecBackend(backend) if isinstance(backend, str) else backend

    def put_bytes(self, data: bytes, *, media_type: str = "application/octet-stream", meta: dict[str, Any] | None = None) -> ArtifactInfo:
        digest = hashlib.sha256(data).hexdigest()
        return self._put(digest, len(data), io.BytesIO(data), media_type, meta or {})

    def put_file(self, path: str | os.PathLike[str], *, media_type: str = "application/octet-stream", meta: dict[str, Any] | None = None) -> ArtifactInfo:
        """Store a local file without reading it whole into memory."""
        h = hashlib.sha256()
        size = 0
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)
        try:
            with open(path, "rb") as f:
                return self._put(h.hexdigest(), size, f, media_type, meta or {})
        except OSError as exc:
            raise ArtifactError(f"could not read {os.fspath(path)!r} to store it: {exc}") from exc

    def _put(self, digest: str, size: int, payload: BinaryIO, media_type: str, meta: dict[str, Any]) -> ArtifactInfo:
        info = ArtifactInfo(digest=digest, size=size, media_type=media_type, meta=meta)
        key = _key(digest)
        # Dedupe: content-addressed objects never change. A stored object that
        # no longer verifies (bit rot, a truncated copy) is rewritten, not trusted.
        if self.backend.exists(key) and self.verify(digest):
            return info
        header = json.dumps({"media_type": media_type, "size": size, "meta": meta}, sort_keys=True).encode()
        envelope = _Envelope(header, payload)
        self.backend.put_atomic(key, envelope)
        if envelope.payload_digest() != digest or envelope.payload_size != size:
            # The source changed between hashing and copying (a file being
            # written): never leave bytes under a digest they do not hash to.
            self.backend.delete(key)
            raise ArtifactError(
                f"artifact {digest[:12]}: the source changed while it was being stored "
                f"({envelope.payload_size} bytes copied, {size} hashed); nothing was stored"
            )
        return info

    def info(self, digest: str) -> ArtifactInfo:
        with self.backend.open(_key(digest)) as f:
            header = _read_header(f, digest)
        return ArtifactInfo(digest, header["size"], header["media_type"], header.get("meta", {}))

    def get_bytes(self, digest: str) -> bytes:
        """The payload, after checking its sha256 against ``digest``."""
        return self.read(digest)[0]

    def read(self, digest: str) -> tuple[bytes, ArtifactInfo]:
        """Payload and header in one pass over the object, verified (for objects that fit in memory)."""
        with self.backend.open(_key(digest)) as f:
            header = _read_header(f, digest)
            data = f.read()
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest or len(data) != header["size"]:
            raise IntegrityError(
                f"artifact {digest[:12]} is corrupt: its bytes hash to {actual[:12]} "
                f"({len(data)} bytes, expected {header['size']})"
            )
        return data, ArtifactInfo(digest, header["size"], header["media_type"], header.get("meta", {}))

    @contextmanager
    def open(self, digest: str) -> Iterator[BinaryIO]:
        """A verified payload stream; the whole object is hashed before it is handed out."""
        with self.backend.open(_key(digest)) as f:
            header = _read_header(f, digest)
            start = f.tell()
            h = hashlib.sha256()
            size = 0
            while chunk := f.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)
            if h.hexdigest() != digest or size != header["size"]:
                raise IntegrityError(
                    f"artifact {digest[:12]} is corrupt: its bytes hash to {h.hexdigest()[:12]} "
                    f"({size} bytes, expected {header['size']})"
                )
            f.seek(start)
            yield f

    def exists(self, digest: str) -> bool:
        return self.backend.exists(_key(digest))

    def verify(self, digest: str) -> bool:
        try:
            with self.open(digest):
                return True
        except IntegrityError:
            return False

    def digests(self) -> Iterator[str]:
        for key in self.backend.keys("objects/"):
            parts = key.split("/")
            if len(parts) >= 3:
                yield parts[-2] + parts[-1]


class _Envelope(io.RawIOBase):
    """A read-only stream of magic + header length + header + payload."""

    def __init__(self, header: bytes, payload: BinaryIO) -> None:
        self._prefix = io.BytesIO(MAGIC + len(header).to_bytes(4, "big") + header)
        self._payload = payload
        # Hash what is actually streamed, so the writer can check it afterwards.
        self._hash = hashlib.sha256()
        self.payload_size = 0

    def readable(self) -> bool:
        return True

    def _read_payload(self, size: int) -> bytes:
        chunk = self._payload.read(size)
        self._hash.update(chunk)
        self.payload_size += len(chunk)
        return chunk

    def read(self, size: int | None = -1) -> bytes:
        if size is None:
            size = -1
        data = self._prefix.read(size)
        if size < 0:
            return data + self._read_payload(-1)
        if len(data) < size:
            data += self._read_payload(size - len(data))
        return data

    def payload_digest(self) -> str:
        return self._hash.hexdigest()


def _read_header(f: BinaryIO, digest: str) -> dict[str, Any]:
    magic = f.read(8)
    if magic != MAGIC:
        raise IntegrityError(f"artifact {digest[:12]} has an unknown envelope {magic!r} (expected {MAGIC!r})")
    n = int.from_bytes(f.read(4), "big")
    try:
        header = json.loads(f.read(n))
    except ValueError as exc:
        raise IntegrityError(f"artifact {digest[:12]} has a corrupt header") from exc
    if (
        not isinstance(header, dict)
        or not isinstance(header.get("size"), int)
        or not isinstance(header.get("media_type"), str)
    ):
        raise IntegrityError(f"artifact {digest[:12]} has a corrupt header: size or media_type missing")
    return header
