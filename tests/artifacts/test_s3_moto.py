"""The artifact store on S3, against a real S3-compatible server (moto's server mode on loopback).

Nothing is patched: s3fs talks HTTP to the server. The endpoint reaches s3fs
the way it does in production, through the standard AWS settings in the
environment (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_DEFAULT_REGION``), which botocore reads; ``LOOPML_ARTIFACTS_URL`` is
just ``s3://bucket/prefix``.
"""

from __future__ import annotations

import copy
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("s3fs", reason="s3fs is not installed (pip install s3fs)")
moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")

BUCKET = "loopml-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh bucket; the AWS settings point every client (boto3, s3fs) at the local server."""
    import boto3
    import fsspec

    for key, value in {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(key, raising=False)
    fsspec.filesystem("s3").clear_instance_cache()  # no client built with other settings is reused
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    yield client
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for o in page.get("Contents", [])]
    for key in keys:
        client.delete_object(Bucket=BUCKET, Key=key)
    client.delete_bucket(Bucket=BUCKET)


def _keys(client: Any, prefix: str) -> list[str]:
    return [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
            for o in page.get("Contents", [])]


def test_cas_on_s3_puts_verifies_and_lists(s3: Any) -> None:
    from loopml.artifacts import ArtifactStore
    from loopml.kernel.exceptions import IntegrityError, NotFoundError

    store = ArtifactStore(f"s3://{BUCKET}/cas")
    info = store.put_bytes(b"hello s3", media_type="text/plain", meta={"k": 1})
    assert store.exists(info.digest) and store.get_bytes(info.digest) == b"hello s3"
    assert store.info(info.digest).meta == {"k": 1}
    assert list(store.digests()) == [info.digest]
    assert _keys(s3, "cas/") == [f"cas/objects/{info.digest[:2]}/{info.digest[2:]}"]
    assert store.put_bytes(b"hello s3").digest == info.digest and len(_keys(s3, "cas/")) == 1  # deduped
    # tampering in the bucket is caught on read
    key = f"cas/objects/{info.digest[:2]}/{info.digest[2:]}"
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=key, Body=body[:-1] + b"X")
    store.backend.fs.invalidate_cache()  # s3fs pins an object's ETag; the change happened behind its back
    with pytest.raises(IntegrityError, match=r"is corrupt"):
        store.get_bytes(info.digest)
    with pytest.raises(NotFoundError, match=r"not found in the store"):
        store.get_bytes("0" * 64)


def test_the_whole_loop_keeps_its_artifacts_in_s3(s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ingest, train, register (the recipe), load and batch score with LOOPML_ARTIFACTS_URL=s3://..."""
    import pyarrow.parquet as pq

    from loopml.kernel.config import reset_settings
    from loopml.recipes import QUICKSTART_RECIPE, prepare_quickstart, run_recipe
    from loopml.register import load_model, resolve
    from loopml.serve.batch import score_file
    from loopml.workspace import init_workspace

    monkeypatch.setenv("LOOPML_ARTIFACTS_URL", f"s3://{BUCKET}/team")
    reset_settings()
    ws = init_workspace(tmp_path / "ws", actor="tester")
    assert ws.settings.resolved_artifacts_url == f"s3://{BUCKET}/team"
    root = ws.root
    prepare_quickstart(root)
    spec = copy.deepcopy(QUICKSTART_RECIPE)
    spec["data"]["source"] = str(root / spec["data"]["source"])
    spec["data"]["contract"] = str(root / spec["data"]["contract"])
    spec["train"]["search"]["n_trials"] = 2
    spec["train"]["params"]["max_iter"] = 20
    result = run_recipe(ws, spec)
    assert result.status == "succeeded"
    assert not (root / ".loopml" / "artifacts").exists()  # nothing went to the local default

    record = resolve(ws, "rain-tomorrow@champion")
    objects = _keys(s3, "team/objects/")
    assert f"team/objects/{record.artifact_digest[:2]}/{record.artifact_digest[2:]}" in objects
    assert len(objects) > 5  # the dataset version, step outputs, logs, the model ...
    loaded = load_model(ws, "rain-tomorrow@champion")
    assert loaded.version == record.version

    src = root / spec["data"]["source"]
    import pandas as pd

    frame = pd.read_csv(src).head(200)
    frame.to_parquet(tmp_path / "in.parquet")
    scored = score_file(ws, "rain-tomorrow@champion", tmp_path / "in.parquet", tmp_path / "out.parquet")
    assert scored.rows_in == 200 and pq.read_table(tmp_path / "out.parquet").num_rows == scored.rows_scored

    # a second process-like open (fresh settings) finds the same store by URL
    reset_settings()
    again = run_recipe(init_workspace(root, actor="tester"), spec)
    assert [s["status"] for s in again.steps][:5] == ["cached"] * 5
