from __future__ import annotations

import threading
from datetime import timedelta

import pandas as pd
import pytest

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.kernel.types import utcnow
from loopml.monitor.alerts import raise_alert
from loopml.trigger import (
    add_trigger,
    check_triggers,
    claim_next_request,
    finish_request,
    fire_trigger,
    list_run_requests,
    set_trigger_enabled,
)

RECIPE = {"name": "r"}


def test_schedule_fires_once_per_slot_and_catches_up_once(workspace) -> None:
    t0 = utcnow().replace(second=0, microsecond=0)
    add_trigger(workspace, "nightly", "schedule", recipe=RECIPE, config={"cron": "*/10 * * * *"}, now=t0)
    assert check_triggers(workspace, now=t0) == []
    # The scheduler was down for an hour: the missed slots fire once, not six times.
    fired = check_triggers(workspace, now=t0 + timedelta(hours=1))
    assert len(fired) == 1 and fired[0].context["type"] == "schedule"
    assert check_triggers(workspace, now=t0 + timedelta(hours=1, seconds=5)) == []


def test_two_schedulers_racing_fire_a_slot_once(workspace) -> None:
    t0 = utcnow().replace(second=0, microsecond=0)
    add_trigger(workspace, "race", "schedule", recipe=RECIPE, config={"cron": "* * * * *"}, now=t0)
    results: list[int] = []
    barrier = threading.Barrier(2)

    def scheduler() -> None:
        barrier.wait()
        results.append(len(check_triggers(workspace, now=t0 + timedelta(minutes=2))))

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0, 1]
    assert len(list_run_requests(workspace)) == 1


def test_new_data_fires_only_above_min_rows_with_its_context(workspace) -> None:
    from loopml.ingest import ingest

    frame = pd.DataFrame({"x": range(100), "y": [0, 1] * 50})
    ingest(workspace, frame, "events")
    add_trigger(workspace, "fresh", "new_data", recipe=RECIPE, config={"dataset": "events", "min_new_rows": 50})
    assert check_triggers(workspace) == []  # existing data is the baseline
    ingest(workspace, pd.concat([frame, frame.head(20)], ignore_index=True), "events")
    assert check_triggers(workspace) == []  # 20 new rows < 50
    v3 = ingest(workspace, pd.concat([frame, frame, frame.head(10)], ignore_index=True), "events")
    [request] = check_triggers(workspace)
    assert request.context["dataset_version"] == f"events@{v3.version}"
    assert request.context["new_rows"] == 110
    assert check_triggers(workspace) == []


def test_alert_trigger_retrains_once_per_incident(workspace) -> None:
    add_trigger(workspace, "on-drift", "alert", recipe=RECIPE, config={"endpoint": "churn", "min_severity": "warning"})
    raise_alert(workspace, rule="data_drift", endpoint="other", message="elsewhere")
    raise_alert(workspace, rule="data_drift", endpoint="churn", message="info only", severity="info",
                dedup_key="info-key")
    assert check_triggers(workspace) == []
    alert = raise_alert(workspace, rule="data_drift", endpoint="churn", message="drift",
                        context={"drifted_features": ["age", "plan"], "window": ["t1", "t2"]})
    [request] = check_triggers(workspace)
    assert request.context["alert_id"] == alert.id
    assert request.context["drifted_features"] == ["age", "plan"]
    raise_alert(workspace, rule="data_drift", endpoint="churn", message="still drifting")  # same incident
    assert check_triggers(workspace) == []


def test_manual_fire_claim_and_finish(workspace) -> None:
    add_trigger(workspace, "by-hand", "manual", recipe=RECIPE)
    request = fire_trigger(workspace, "by-hand", reason="new features")
    assert request.context == {"type": "manual", "trigger": "by-hand", "by": "tester", "reason": "new features"}
    claimed, recipe, _ = claim_next_request(workspace, "w1")
    assert claimed.id == request.id and recipe == RECIPE
    assert claim_next_request(workspace, "w2") is None
    done = finish_request(workspace, request.id, run_id="abc")
    assert done.status == "succeeded" and done.run_id == "abc"


def test_disabled_trigger_does_not_fire(workspace) -> None:
    add_trigger(workspace, "off", "manual", recipe=RECIPE)
    set_trigger_enabled(workspace, "off", False)
    with pytest.raises(ValidationError, match="trigger 'off' is disabled"):
        fire_trigger(workspace, "off")


@pytest.mark.parametrize(
    ("kind", "config", "message"),
    [
        ("hourly", {}, "trigger kind 'hourly' is unknown; allowed: schedule, new_data, alert, manual"),
        ("schedule", {}, "schedule trigger needs 'cron'"),
        ("schedule", {"cron": "61 * * * *"}, "minute value 61 is outside 0-59"),
        ("new_data", {"dataset": "d", "every": 3}, "unknown option\\(s\\) every; allowed: dataset, drift_share"),
    ],
)
def test_bad_trigger_config_names_the_rule(sqlite_workspace, kind, config, message) -> None:
    with pytest.raises(ValidationError, match=message):
        add_trigger(sqlite_workspace, "t", kind, recipe=RECIPE, config=config)


def test_unknown_trigger_lists_the_known_ones(sqlite_workspace) -> None:
    add_trigger(sqlite_workspace, "a", "manual", recipe=RECIPE)
    with pytest.raises(NotFoundError, match="trigger 'b' does not exist; triggers: a"):
        fire_trigger(sqlite_workspace, "b")


def test_a_request_left_running_by_a_dead_runner_is_taken_over_after_its_lease(workspace) -> None:
    from sqlalchemy import select

    from loopml.metadata._orm import AuditEvent, Lease
    from loopml.trigger import request_lease

    add_trigger(workspace, "by-hand", "manual", recipe=RECIPE)
    request = fire_trigger(workspace, "by-hand")
    t0 = utcnow()
    claimed, _, _ = claim_next_request(workspace, "dead-runner", lease_ttl_s=60, now=t0)
    assert claimed.id == request.id
    # Its runner is gone (killed scheduler): while the lease runs, nobody else may take the request ...
    assert claim_next_request(workspace, "w2", lease_ttl_s=60, now=t0 + timedelta(seconds=30)) is None
    # ... once it has expired, the next claim takes it over instead of leaving it 'running' forever.
    again, recipe, _ = claim_next_request(workspace, "w2", lease_ttl_s=60, now=t0 + timedelta(seconds=61))
    assert again.id == request.id and again.status == "running" and recipe == RECIPE
    assert claim_next_request(workspace, "w3", lease_ttl_s=60, now=t0 + timedelta(seconds=62)) is None
    with workspace.store.read() as s:
        reclaims = s.execute(select(AuditEvent).where(AuditEvent.action == "run_request.reclaim")).scalars().all()
        assert [(e.before["claimed_by"], e.after["claimed_by"]) for e in reclaims] == [("dead-runner", "w2")]
        assert s.get(Lease, request_lease(request.id)).holder == "w2"
    finish_request(workspace, request.id, run_id=None, error="stopped")
    with workspace.store.read() as s:
        assert s.get(Lease, request_lease(request.id)) is None  # finishing releases the lease


def test_claim_refuses_a_lease_that_is_not_positive(sqlite_workspace) -> None:
    with pytest.raises(ValidationError, match="lease_ttl_s must be > 0 seconds, got 0"):
        claim_next_request(sqlite_workspace, "w", lease_ttl_s=0)


def test_new_data_on_drift_fires_only_when_the_distribution_moved(sqlite_workspace) -> None:
    import numpy as np

    from loopml.ingest import ingest

    ws = sqlite_workspace
    rng = np.random.default_rng(21)

    def frame(shift: float = 0.0) -> pd.DataFrame:
        return pd.DataFrame({"a": rng.normal(shift, 1, 2000), "b": rng.normal(shift, 1, 2000),
                             "c": rng.normal(0, 1, 2000), "plan": rng.choice(["x", "y", "z"], 2000)})

    ingest(ws, frame(), "events")
    add_trigger(ws, "moved", "new_data", recipe=RECIPE, config={"dataset": "events", "on_drift": True})
    ingest(ws, frame(), "events")  # a new version, same distribution
    assert check_triggers(ws) == []
    v3 = ingest(ws, frame(shift=0.5), "events")
    [request] = check_triggers(ws)
    assert request.context["dataset_version"] == f"events@{v3.version}"
    assert request.context["drifted_features"] == ["a", "b"]
