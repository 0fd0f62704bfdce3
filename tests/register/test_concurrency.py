"""Processes registering versions of one model at once get distinct numbers and no error."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from loopml.metadata.audit import verify_audit
from loopml.register import list_versions

PER_PROCESS = 4
PROCESSES = 3


def _register_many(root: str, db_url: str, worker: int) -> list[int]:
    from loopml.workspace import open_workspace
    from loopml.register import register_model, set_alias

    ws = open_workspace(root, actor=f"worker{worker}", db_url=db_url)
    versions = []
    for i in range(PER_PROCESS):
        rec = register_model(ws, "churn", {"worker": worker, "i": i}, flavor="custom")
        set_alias(ws, "churn", f"w{worker}", rec.version)
        versions.append(rec.version)
    ws.store.dispose()
    return versions


def test_concurrent_registrations_get_distinct_versions(workspace, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # spawn: a forked child would share the parent's database connections.
    ctx = mp.get_context("spawn")
    with ctx.Pool(PROCESSES) as pool:
        results = pool.starmap(
            _register_many, [(str(workspace.root), workspace.store.url, w) for w in range(PROCESSES)]
        )
    numbers = sorted(v for vs in results for v in vs)
    assert numbers == list(range(1, PROCESSES * PER_PROCESS + 1))
    assert [r.version for r in list_versions(workspace, "churn")] == numbers
    assert verify_audit(workspace) == []
