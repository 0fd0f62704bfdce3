from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from loopml.deploy import (
    advance,
    deploy,
    get_endpoint,
    get_rollout,
    list_rollouts,
    pause,
    promote,
    record_evidence,
    release_standby,
    resume,
    rollback,
    traffic_history,
    versions_between,
)
from loopml.kernel.exceptions import DeploymentError, PermissionDenied, ValidationError
from loopml.kernel.types import utcnow
from loopml.register import register_model, resolve


def _register(ws, passed: bool | None = True) -> int:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})
    model = LogisticRegression().fit(x, (x.a > 0).astype(int))
    return register_model(ws, "churn", model, gates_passed=passed).version


def test_first_deploy_creates_the_endpoint_and_moves_champion(workspace) -> None:
    v1 = _register(workspace)
    rollout = deploy(workspace, "churn-api", f"churn/{v1}")
    assert rollout.status == "promoted" and rollout.baseline_version is None
    assert get_endpoint(workspace, "churn-api").serving_versions == [v1]
    assert resolve(workspace, "churn@champion").version == v1


def test_canary_steps_then_promotes_with_the_alias(workspace) -> None:
    v1, v2 = _register(workspace), _register(workspace)
    deploy(workspace, "e", f"churn/{v1}")
    r = deploy(workspace, "e", f"churn/{v2}", strategy="canary", steps=[0.1, 0.5, 1.0])
    routes = {x["version"]: x["weight"] for x in get_endpoint(workspace, "e").policy["routes"]}
    assert routes == {v1: 0.9, v2: 0.1} and r.status == "running"
    assert resolve(workspace, "churn@champion").version == v1  # not before promotion
    assert advance(workspace, "e").step == 1
    done = advance(workspace, "e", evidence={"decision": "promote"})
    assert done.status == "promoted"
    endpoint = get_endpoint(workspace, "e")
    assert endpoint.serving_versions == [v2] and endpoint.policy["standby"] == [v1]
    assert resolve(workspace, "churn@champion").version == v2
    assert [h.revision for h in traffic_history(workspace, "e")] == [1, 2, 3, 4]


def test_rollback_restores_traffic_and_alias(workspace) -> None:
    v1, v2 = _register(workspace), _register(workspace)
    deploy(workspace, "e", f"churn/{v1}")
    deploy(workspace, "e", f"churn/{v2}", strategy="ab", split=0.3)
    policy = get_endpoint(workspace, "e").policy
    assert policy["sticky"] is True
    r = rollback(workspace, "e", reason="error rate 20%", evidence={"error_rate": 0.2})
    assert r.status == "rolled_back" and r.evidence[-1] == {"error_rate": 0.2}
    assert get_endpoint(workspace, "e").serving_versions == [v1]
    assert resolve(workspace, "churn@champion").version == v1


def test_latest_only_lists_each_endpoints_newest_rollout(workspace) -> None:
    v1, v2, v3 = _register(workspace), _register(workspace), _register(workspace)
    for endpoint in ("a", "b"):
        deploy(workspace, endpoint, f"churn/{v1}")
        deploy(workspace, endpoint, f"churn/{v2}", strategy="canary", steps=[0.5, 1.0])
    rollback(workspace, "a", reason="bad")
    deploy(workspace, "a", f"churn/{v3}", strategy="shadow")
    every = list_rollouts(workspace)
    newest = {e: max(r.id for r in every if r.endpoint == e) for e in ("a", "b")}
    latest = list_rollouts(workspace, latest_only=True)
    assert len(every) > 2 and {r.endpoint: r.id for r in latest} == newest and len(latest) == 2
    assert [r.status for r in list_rollouts(workspace, status="running", latest_only=True)] == ["running", "running"]


def test_shadow_and_blue_green_policies(workspace) -> None:
    v1, v2 = _register(workspace), _register(workspace)
    deploy(workspace, "e", f"churn/{v1}")
    deploy(workspace, "e", f"churn/{v2}", strategy="shadow")
    assert get_endpoint(workspace, "e").policy["shadow"] == [v2]
    rollback(workspace, "e", reason="done comparing")
    deploy(workspace, "e", f"churn/{v2}", strategy="blue-green")
    policy = get_endpoint(workspace, "e").policy
    assert policy["standby"] == [v2] and [r["version"] for r in policy["routes"]] == [v1]
    promote(workspace, "e")
    assert get_endpoint(workspace, "e").policy["standby"] == [v1]


def test_a_promoted_blue_green_rolls_back_while_kept_warm_and_is_released_after(workspace) -> None:
    v1, v2, v3 = _register(workspace), _register(workspace), _register(workspace)
    deploy(workspace, "e", f"churn/{v1}")
    deploy(workspace, "e", f"churn/{v2}", strategy="blue-green", keep_warm_s=30)
    promote(workspace, "e")
    r = rollback(workspace, "e", reason="bad numbers after the switch")  # promoted, v1 still warm
    assert r.status == "rolled_back" and get_endpoint(workspace, "e").serving_versions == [v1]
    assert resolve(workspace, "churn@champion").version == v1
    deploy(workspace, "e", f"churn/{v3}", strategy="blue-green", keep_warm_s=30)
    ended = promote(workspace, "e").ended_at
    assert release_standby(workspace, "e", now=ended + timedelta(seconds=29)) is None
    released = release_standby(workspace, "e", now=ended + timedelta(seconds=30))
    assert released is not None and released.evidence[-1]["released"] is True
    assert get_endpoint(workspace, "e").policy["standby"] == []
    assert release_standby(workspace, "e", now=ended + timedelta(seconds=99)) is None  # once
    with pytest.raises(DeploymentError, match="no longer|kept warm"):
        rollback(workspace, "e", reason="too late")


def test_only_gated_versions_get_traffic_unless_overridden(workspace) -> None:
    v1 = _register(workspace)
    bad = _register(workspace, passed=False)
    deploy(workspace, "e", f"churn/{v1}")
    with pytest.raises(PermissionDenied, match=f"churn/{bad} failed its validation gates"):
        deploy(workspace, "e", f"churn/{bad}", strategy="canary")
    r = deploy(workspace, "e", f"churn/{bad}", strategy="canary", override_reason="hotfix approved by Ana")
    assert r.override_reason == "hotfix approved by Ana"


def test_one_rollout_at_a_time_pause_and_resume(workspace) -> None:
    v1, v2, v3 = _register(workspace), _register(workspace), _register(workspace)
    deploy(workspace, "e", f"churn/{v1}")
    deploy(workspace, "e", f"churn/{v2}", strategy="canary")
    with pytest.raises(DeploymentError, match="has a rollout in progress"):
        deploy(workspace, "e", f"churn/{v3}", strategy="canary")
    assert pause(workspace, "e", reason="weekend").status == "paused"
    with pytest.raises(DeploymentError, match="is paused"):
        advance(workspace, "e")
    assert resume(workspace, "e").status == "running"
    held = record_evidence(workspace, get_rollout(workspace, "e").id, {"decision": "hold", "n": 12})
    assert held.evidence[-1]["decision"] == "hold"


def test_versions_between_answers_who_served_when(workspace) -> None:
    v1, v2 = _register(workspace), _register(workspace)
    t0 = utcnow()
    deploy(workspace, "e", f"churn/{v1}")
    t1 = utcnow()
    deploy(workspace, "e", f"churn/{v2}", strategy="direct")
    t2 = utcnow()
    assert versions_between(workspace, "e", t0 - timedelta(seconds=1), t1) == [v1]
    assert versions_between(workspace, "e", t2, t2 + timedelta(seconds=1)) == [v2]
    assert versions_between(workspace, "e", t0, t2) == [v1, v2]


@pytest.mark.parametrize(
    ("strategy", "options", "message"),
    [
        ("rolling", {}, "strategy 'rolling' is unknown; allowed: direct, canary, blue-green, shadow, ab"),
        ("canary", {"steps": [0.5, 0.2, 1.0]}, "canary steps must rise"),
        ("canary", {"step": [0.5]}, r"unknown option\(s\) step"),
        ("ab", {"split": 1.5}, "ab split must be between 0 and 1"),
        ("shadow", {"shadow_fraction": 0}, r"shadow_fraction must be in \(0, 1\] \(a share of requests\); got 0"),
        ("shadow", {"shadow_fraction": "half"}, r"shadow_fraction must be a number in \(0, 1\]; got 'half'"),
        ("canary", {"shadow_fraction": 0.5}, r"unknown option\(s\) shadow_fraction"),
        ("canary", {"interval_s": -1}, "canary rollout: interval_s must be a number >= 0; got -1"),
        ("canary", {"early_alpha": "low"}, "canary rollout: early_alpha must be a number >= 0"),
    ],
)
def test_bad_rollout_options_name_the_rule(sqlite_workspace, strategy, options, message) -> None:
    v1 = _register(sqlite_workspace)
    with pytest.raises(ValidationError, match=message):
        deploy(sqlite_workspace, "e", f"churn/{v1}", strategy=strategy, **options)


def test_a_shadow_fraction_is_stored_with_the_shadow_in_the_policy(sqlite_workspace) -> None:
    ws = sqlite_workspace
    v1, v2 = _register(ws), _register(ws)
    deploy(ws, "e", f"churn/{v1}")
    assert "shadow_fraction" not in get_endpoint(ws, "e").policy  # only a policy with a shadow has one
    r = deploy(ws, "e", f"churn/{v2}", strategy="shadow", shadow_fraction=0.1)
    policy = get_endpoint(ws, "e").policy
    assert policy["shadow"] == [v2] and policy["shadow_fraction"] == 0.1 and r.config["shadow_fraction"] == 0.1
    rollback(ws, "e", reason="enough")
    assert "shadow_fraction" not in get_endpoint(ws, "e").policy
    with pytest.raises(ValidationError, match="shadow_fraction") as err:
        deploy(ws, "e", f"churn/{v2}", strategy="shadow", shadow_fraction=1.5)
    assert (err.value.field, err.value.rule) == ("shadow_fraction", "range")


def test_repeated_holds_collapse_and_traffic_decisions_outlive_the_cap(sqlite_workspace) -> None:
    ws = sqlite_workspace
    v1, v2 = _register(ws), _register(ws)
    deploy(ws, "e", f"churn/{v1}")
    rid = deploy(ws, "e", f"churn/{v2}", strategy="canary", steps=[0.1, 0.5, 1.0]).id
    advance(ws, "e", evidence={"ts": "t0", "decision": "advance", "state": "advance|0|"})
    first = record_evidence(ws, rid, {"ts": "t1", "decision": "hold", "n": 5, "state": "hold|1|a"}, collapse=True)
    again = record_evidence(ws, rid, {"ts": "t2", "decision": "hold", "n": 9, "state": "hold|1|a"}, collapse=True)
    assert len(again.evidence) == len(first.evidence) == 2  # the same state: the last entry is replaced
    assert again.evidence[-1] == {"ts": "t2", "decision": "hold", "n": 9, "state": "hold|1|a", "first_ts": "t1",
                                  "analyses": 2}
    assert len(record_evidence(ws, rid, {"ts": "t3", "decision": "hold", "state": "hold|1|a"}).evidence) == 3
    for i in range(250):  # every hold says something new: the list is bounded, the oldest holds go first
        last = record_evidence(ws, rid, {"ts": f"h{i}", "decision": "hold", "state": f"hold|1|{i}"}, collapse=True)
    assert len(last.evidence) == 200 and last.evidence[0]["decision"] == "advance"
    assert [e["ts"] for e in last.evidence[-2:]] == ["h248", "h249"]
