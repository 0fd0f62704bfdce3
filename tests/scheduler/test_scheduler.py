from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path

from loopml.kernel.types import utcnow
from loopml.monitor import define_monitor, list_reports
from loopml.recipes import QUICKSTART_RECIPE, prepare_quickstart
from loopml.scheduler import Scheduler, execute_next_request
from loopml.tracking import get_run
from loopml.trigger import add_trigger, fire_trigger, list_run_requests


def test_only_the_lease_holder_acts(workspace) -> None:
    a = Scheduler(workspace, holder="a", tick_s=1, lease_ttl_s=30)
    b = Scheduler(workspace, holder="b", tick_s=1, lease_ttl_s=30)
    now = utcnow()
    assert a.tick(now=now).leader is True
    assert b.tick(now=now).leader is False
    # a dies: its lease expires and b takes over.
    assert b.tick(now=now + timedelta(seconds=31)).leader is True


def test_a_monitor_that_raises_does_not_stop_the_others(sqlite_workspace) -> None:
    ws = sqlite_workspace
    now = utcnow()
    for name in ("broken", "fine"):
        define_monitor(ws, {"name": name, "endpoint": name, "model": f"{name}@champion", "schedule": "* * * * *"})
    # The broken endpoint's prediction log holds a corrupt file: reading it fails.
    part = Path(ws.settings.resolved_predictions_url) / "endpoint=broken" / f"date={now:%Y-%m-%d}" / f"hour={now:%H}"
    part.mkdir(parents=True)
    (part / "part-corrupt.parquet").write_bytes(b"this is not parquet")
    report = Scheduler(ws, holder="s").tick(now=now + timedelta(minutes=2))
    statuses = {r.endpoint: r.status for r in list_reports(ws)}
    assert report.monitors_run == ["fine"] and statuses == {"fine": "ok"}
    # The damaged log is a loopml error naming the endpoint (no DuckDB exception escapes).
    assert report.monitor_errors["broken"].startswith("DataError: the prediction log of endpoint 'broken'")


def test_a_fired_trigger_runs_the_recipe_with_its_context(sqlite_workspace) -> None:
    ws = sqlite_workspace
    prepare_quickstart(ws.root)
    spec = copy.deepcopy(QUICKSTART_RECIPE)
    spec["data"]["source"] = str(ws.root / spec["data"]["source"])
    spec["data"]["contract"] = str(ws.root / spec["data"]["contract"])
    spec["train"]["search"]["n_trials"] = 2
    spec["train"]["params"]["max_iter"] = 20
    add_trigger(ws, "retrain", "manual", recipe=spec)
    request = fire_trigger(ws, "retrain", reason="new holiday feature")
    done = execute_next_request(ws, "worker-1")
    assert done is not None and done.id == request.id and done.status == "succeeded"
    run = get_run(ws, done.run_id)
    assert run.trigger["type"] == "manual" and run.trigger["reason"] == "new holiday feature"
    assert run.trigger["run_request_id"] == request.id
    assert list_run_requests(ws)[0].run_id == done.run_id
    assert execute_next_request(ws, "worker-1") is None
    assert list_reports(ws) == []


def test_an_abandoned_request_without_a_recipe_fails_instead_of_hanging(sqlite_workspace) -> None:
    from loopml.trigger import claim_next_request, remove_trigger

    ws = sqlite_workspace
    add_trigger(ws, "gone", "manual", recipe={"name": "r"})
    request = fire_trigger(ws, "gone")
    # A runner claimed it long ago and died; then someone removed the trigger.
    claim_next_request(ws, "dead-runner", lease_ttl_s=60, now=utcnow() - timedelta(minutes=5))
    remove_trigger(ws, "gone")
    done = execute_next_request(ws, "worker-1")
    assert done is not None and done.id == request.id and done.status == "failed"
    assert done.error == (f"run request {request.id} has no recipe to run: its trigger was removed "
                          "or names neither a recipe nor a recipe file")
    assert execute_next_request(ws, "worker-1") is None


def test_a_restarted_scheduler_runs_a_missed_monitor_once(sqlite_workspace) -> None:
    ws = sqlite_workspace
    slot = define_monitor(ws, {"name": "m", "endpoint": "quiet", "schedule": "*/10 * * * *"}).next_due_at
    a = Scheduler(ws, holder="a", tick_s=1, lease_ttl_s=30)
    assert a.tick(now=slot).monitors_run == ["m"]
    assert a.tick(now=slot + timedelta(seconds=1)).monitors_run == []  # the slot is done
    # a dies without releasing its lease; b starts an hour later: the missed slots run once, not six times.
    b = Scheduler(ws, holder="b", tick_s=1, lease_ttl_s=30)
    assert b.tick(now=slot + timedelta(seconds=20)).leader is False
    assert b.tick(now=slot + timedelta(hours=1)).monitors_run == ["m"]
    assert b.tick(now=slot + timedelta(hours=1, seconds=1)).monitors_run == []
    assert len(list_reports(ws)) == 2


def _canary(ws, **options):
    """Two registered versions, v1 serving ``e`` and a canary of v2 running (no traffic yet)."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from loopml.deploy import deploy
    from loopml.register import register_model

    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})
    versions = [register_model(ws, "churn", LogisticRegression().fit(x, (x.a > 0).astype(int)),
                               gates_passed=True).version for _ in range(2)]
    deploy(ws, "e", f"churn/{versions[0]}")
    return deploy(ws, "e", f"churn/{versions[1]}", strategy="canary", **options)


def _statements(ws):
    """A list that collects every SQL statement the workspace's engine runs from now on."""
    from sqlalchemy import event

    seen: list[str] = []
    event.listen(ws.store.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_the_rollout_tick_is_one_read_when_nothing_runs_and_acts_only_as_leader(workspace) -> None:
    a = Scheduler(workspace, holder="a", lease_ttl_s=30)
    b = Scheduler(workspace, holder="b", lease_ttl_s=30)
    assert a.tick().leader is True
    seen = _statements(workspace)
    assert a.rollout_tick() == [] and b.rollout_tick() == []
    queries = [q for q in seen if q.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE", "DELETE"))]
    assert len(queries) == 2 and all("FROM rollouts" in q for q in queries)  # one indexed read per look
    r = _canary(workspace, interval_s=0)
    assert b.rollout_tick() == []  # a standby never decides
    [decision] = a.rollout_tick()
    assert (decision.rollout_id, decision.action) == (r.id, "hold") and "step held" in decision.reason


def test_repeated_holds_are_stored_once_with_their_count(sqlite_workspace) -> None:
    from loopml.deploy import get_rollout

    ws = sqlite_workspace
    a = Scheduler(ws, holder="a", lease_ttl_s=30)
    assert a.tick().leader is True
    _canary(ws, interval_s=0)
    for _ in range(5):
        assert [d.action for d in a.rollout_tick()] == ["hold"]
    evidence = get_rollout(ws, "e").evidence
    assert len(evidence) == 1 and evidence[0]["analyses"] == 5 and evidence[0]["first_ts"] < evidence[0]["ts"]


def test_the_main_tick_leaves_running_rollouts_to_the_rollout_thread(sqlite_workspace) -> None:
    import threading
    import time

    from loopml.deploy import get_rollout

    ws = sqlite_workspace
    _canary(ws, interval_s=0)
    sched = Scheduler(ws, holder="a", tick_s=0.05, lease_ttl_s=30, execute_runs=False, rollout_tick_s=0.05)
    thread = threading.Thread(target=sched.run_forever, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not get_rollout(ws, "e").evidence:
            assert time.monotonic() < deadline, "the rollout thread never analysed the running rollout"
            time.sleep(0.05)
        report = sched.tick()
        assert report.leader is True and report.rollout_decisions == []  # analysed on its own thread only
    finally:
        sched.stop()
        thread.join(timeout=10)
    assert sched.tick().rollout_decisions[0].action == "hold"  # stopped: the main tick analyses again
