"""Logging to runs: round trips, history, failure, nesting, audit, durability, concurrency."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.metadata._orm import AuditEvent, AuditHead
from loopml.metadata.audit import verify_chain
from loopml.metadata.lineage import walk
from loopml.tracking import (
    ArtifactRef,
    find_cached_artifacts,
    find_cached_run,
    get_run,
    list_runs,
    log_batch,
    metric_history,
    start_run,
)


def test_params_metrics_tags_artifacts_round_trip(workspace, tmp_path: Path) -> None:
    file = tmp_path / "model.json"
    file.write_text('{"w": 1}')
    with start_run(workspace, "baseline", experiment="churn", tags={"team": "risk"},
                   trigger={"type": "manual"}) as run:
        run.log_param("model", "hgb")
        run.log_params({"lr": 0.1, "depth": 3})
        run.log_metric("acc", 0.5, step=0)
        run.log_metrics({"acc": 0.9, "loss": 0.25}, step=1)
        run.set_tag("stage", "dev")
        run.set_tags({"team": "credit"})
        d_bytes = run.log_artifact("weights.bin", b"\x00\x01")
        d_text = run.log_artifact("notes.txt", "hello")
        d_file = run.log_artifact("model.json", file)
    rec = get_run(workspace, run.id)
    assert rec.status == "succeeded" and rec.ended_at is not None and rec.duration_s >= 0
    assert (rec.name, rec.experiment, rec.kind) == ("baseline", "churn", "manual")
    assert rec.params == {"depth": "3", "lr": "0.1", "model": "hgb"}
    assert rec.metrics == {"acc": 0.9, "loss": 0.25}
    assert rec.metric_steps == {"acc": 1, "loss": 1}
    assert rec.tags == {"team": "credit", "stage": "dev"}
    assert rec.trigger == {"type": "manual"}
    arts = {a.name: a for a in rec.artifacts}
    assert arts["weights.bin"].digest == d_bytes and arts["weights.bin"].size == 2
    assert arts["notes.txt"].media_type.startswith("text/plain")
    assert arts["model.json"].media_type == "application/json"
    assert workspace.artifacts.get_bytes(d_text) == b"hello"
    assert workspace.artifacts.get_bytes(d_file) == b'{"w": 1}'
    assert rec.to_dict()["metrics"] == {"acc": 0.9, "loss": 0.25}


def test_metric_history_keeps_every_step_in_order(workspace) -> None:
    with start_run(workspace) as run:
        for step in (2, 0, 1):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_metric("loss", float("nan"), step=3)
        run.log_metric("loss", 0.1, step=1)  # a second point at step 1 is kept too
    hist = metric_history(workspace, run.id, "loss")
    assert [s for s, _, _ in hist] == [0, 1, 1, 2, 3]
    assert [v for _, v, _ in hist][:4] == [1.0, 0.5, 0.1, 1.0 / 3]
    assert math.isnan(hist[-1][1])
    assert all(isinstance(ts, float) for _, _, ts in hist)
    assert math.isnan(get_run(workspace, run.id).metrics["loss"])  # latest = highest step
    assert metric_history(workspace, run.id, "nope") == []
    with pytest.raises(NotFoundError, match="run 'missing-run' not found"):
        metric_history(workspace, "missing-run", "loss")


def test_exception_inside_the_run_marks_it_failed_with_the_error(workspace) -> None:
    with pytest.raises(RuntimeError, match="diverged"):
        with start_run(workspace, "crashy") as run:
            run.log_metric("loss", 3.0)
            raise RuntimeError("loss diverged")
    rec = get_run(workspace, run.id)
    assert rec.status == "failed"
    assert rec.error == "RuntimeError: loss diverged"
    assert rec.metrics == {"loss": 3.0}  # what was logged before the crash is kept


def test_nested_runs_link_parent_and_children(workspace) -> None:
    with start_run(workspace, "pipeline", kind="pipeline") as parent:
        for name in ("ingest", "train"):
            with start_run(workspace, name, kind="step", parent_id=parent.id) as child:
                child.log_metric("rows", 10)
    children = list_runs(workspace, parent_id=parent.id, order_by=["name"])
    assert [c.name for c in children] == ["ingest", "train"]
    assert all(c.parent_id == parent.id and c.kind == "step" for c in children)
    with workspace.store.read() as session:
        edges = walk(session, ("run", parent.id))
    assert {e.dst for e in edges} == {("run", c.id) for c in children}
    with pytest.raises(NotFoundError, match="parent run 'nope' not found"):
        start_run(workspace, parent_id="nope")


def test_start_and_end_are_audited_but_metric_points_are_not(workspace) -> None:
    with start_run(workspace, "audited") as run:
        for i in range(50):
            run.log_metric("loss", 1.0 / (i + 1), step=i)
    with workspace.store.read() as session:
        events = session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()
        head = session.get(AuditHead, 1)
        mine = [(e.action, e.object_id) for e in events if e.object_type == "run"]
        assert mine == [("run.start", run.id), ("run.end", run.id)]
        assert events[-1].after == {"status": "succeeded", "error": None}
        assert verify_chain(events, head) == []


def test_params_are_write_once_and_ended_runs_reject_logging(workspace) -> None:
    run = start_run(workspace)
    run.log_param("lr", 0.1)
    run.log_param("lr", 0.1)  # same value again: fine
    with pytest.raises(ValidationError, match="param 'lr' of run .* is already '0.1'; params are write-once"):
        run.log_param("lr", 0.2)
    with pytest.raises(ValidationError, match="metric 'acc': value 'high' is not a number"):
        run.log_metric("acc", "high")
    with pytest.raises(ValidationError, match="metric step 1.5 is not an integer"):
        run.log_metric("acc", 1.0, step=1.5)
    with pytest.raises(ValidationError, match="metric key '' is invalid"):
        run.log_metric("", 1.0)
    run.end()
    run.end()  # idempotent
    with pytest.raises(ValidationError, match=f"run {run.id} has already ended \\(succeeded\\)"):
        run.log_metric("acc", 1.0)
    with pytest.raises(ValidationError, match="run status 'done' is invalid"):
        start_run(workspace).end("done")
    with pytest.raises(ValidationError, match="run kind 'nap' is invalid"):
        start_run(workspace, kind="nap")


def test_find_cached_run_returns_the_latest_succeeded_run(workspace) -> None:
    assert find_cached_run(workspace, "k1") is None
    with start_run(workspace, "first", cache_key="k1") as first:
        first.log_metric("acc", 0.1)
    with start_run(workspace, "second", cache_key="k1") as second:
        second.log_metric("acc", 0.2)
    with pytest.raises(ZeroDivisionError):
        with start_run(workspace, "broken", cache_key="k1"):
            1 / 0  # noqa: B018
    with start_run(workspace, "other", cache_key="k2"):
        pass
    hit = find_cached_run(workspace, "k1")
    assert hit is not None and hit.id == second.id and hit.metrics == {"acc": 0.2}


def test_find_cached_artifacts_is_the_lean_form_of_find_cached_run(workspace) -> None:
    digest = workspace.artifacts.put_bytes(b"out").digest
    with start_run(workspace, "step", kind="step", cache_key="k3") as run:
        run.attach_artifacts([ArtifactRef("outputs/x", digest, 3, "application/octet-stream")])
        with pytest.raises(ValidationError, match="artifact name"):
            run.attach_artifacts([ArtifactRef("../x", digest, 3)])
    full = find_cached_run(workspace, "k3")
    assert full is not None
    assert find_cached_artifacts(workspace, "k3") == (run.id, full.artifacts)
    assert full.artifacts == (ArtifactRef("outputs/x", digest, 3, "application/octet-stream"),)
    assert find_cached_artifacts(workspace, "k3", kind="manual") is None
    assert find_cached_artifacts(workspace, "nope") is None


def test_log_batch_writes_to_a_run_by_id(workspace) -> None:
    with start_run(workspace) as run:
        log_batch(workspace, run.id, metrics=[("loss", 0.5, 0, 100.0), ("loss", 0.25, 1)],
                  params={"seed": 7}, tags={"via": "batch"})
    rec = get_run(workspace, run.id)
    assert rec.params == {"seed": "7"} and rec.tags == {"via": "batch"}
    assert [(s, v) for s, v, _ in metric_history(workspace, run.id, "loss")] == [(0, 0.5), (1, 0.25)]
    with pytest.raises(NotFoundError, match="run 'nope' not found"):
        log_batch(workspace, "nope", metrics=[("a", 1.0, 0)])


def test_background_flush_writes_an_idle_run(sqlite_workspace) -> None:
    run = start_run(sqlite_workspace, flush_interval_s=0.05)
    run.log_metric("loss", 1.0)
    deadline = time.monotonic() + 10
    while run.pending and time.monotonic() < deadline:
        time.sleep(0.02)
    # Read with a separate engine: no in-process flush on read can help here.
    engine = create_engine(sqlite_workspace.store.url)
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM metrics WHERE run_id = :r"), {"r": run.id}).scalar()
    engine.dispose()
    run.end()
    assert n == 1


def _run_script(ws_root: Path, body: str) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(
        f"""
        import os, sys
        from loopml.workspace import open_workspace
        from loopml.tracking import start_run
        ws = open_workspace({str(ws_root)!r}, actor="child")
        """
    ) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def test_hard_crash_loses_at_most_the_unflushed_points(sqlite_workspace) -> None:
    # 2,500 points with the default 1,000-point buffer, then a crash without cleanup.
    out = _run_script(sqlite_workspace.root, """
        run = start_run(ws, "crash", flush_interval_s=3600)
        print(run.id, flush=True)
        for i in range(2500):
            run.log_metric("loss", 1.0 / (i + 1), step=i)
        os._exit(1)
    """)
    run_id = out.stdout.split()[0]
    rec = get_run(sqlite_workspace, run_id)
    assert rec.status == "running"  # nobody ended it
    steps = [s for s, _, _ in metric_history(sqlite_workspace, run_id, "loss")]
    assert steps == list(range(2000))  # the last 500 were still in the buffer


def test_exit_without_end_flushes_and_marks_the_run_failed(sqlite_workspace) -> None:
    out = _run_script(sqlite_workspace.root, """
        run = start_run(ws, "forgot", flush_interval_s=3600)
        print(run.id, flush=True)
        run.log_metric("acc", 0.75)
    """)
    rec = get_run(sqlite_workspace, out.stdout.split()[0])
    assert rec.status == "failed"
    assert rec.error == "the process exited before the run was ended"
    assert rec.metrics == {"acc": 0.75}


def test_two_processes_logging_to_one_sqlite_workspace_lose_nothing(sqlite_workspace) -> None:
    body = """
        tag = sys.argv[1]
        for r in range(15):
            with start_run(ws, f"{tag}-{r}", experiment="race", flush_max_points=50) as run:
                run.log_params({"who": tag, "r": r})
                for i in range(300):
                    run.log_metric("loss", 1.0 / (i + 1), step=i)
                run.set_tag("who", tag)
    """
    script = textwrap.dedent(
        f"""
        import sys
        from loopml.workspace import open_workspace
        from loopml.tracking import start_run
        ws = open_workspace({str(sqlite_workspace.root)!r}, actor="child")
        """
    ) + textwrap.dedent(body)
    procs = [subprocess.Popen([sys.executable, "-c", script, tag], stderr=subprocess.PIPE, text=True)
             for tag in ("a", "b")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    runs = list_runs(sqlite_workspace, experiment="race", limit=None)
    assert len(runs) == 30
    assert all(r.status == "succeeded" and r.metric_steps == {"loss": 299} for r in runs)
    assert {r.tags["who"] for r in runs} == {"a", "b"}
    for r in runs[:4]:
        assert len(metric_history(sqlite_workspace, r.id, "loss")) == 300
    with sqlite_workspace.store.read() as session:
        n = session.execute(text("SELECT count(*) FROM metrics")).scalar()
        events = session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()
        assert verify_chain(events, session.get(AuditHead, 1)) == []
    assert n == 30 * 300
