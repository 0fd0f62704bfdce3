"""Progressive delivery under faults: a real server, real traffic, the real prediction log and controller.

Each test registers real scikit-learn models (faulty candidates wrap one; see
``faulty_models.py``), serves the endpoint by its traffic policy on a free
loopback port, sends traffic with httpx, and drives the controller by calling
it (``min_seconds=0``, small ``min_requests``): no test sleeps for a step.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from loopml.deploy import (
    deploy,
    get_endpoint,
    get_rollout,
    promote,
    rollback,
    shadow_endpoint_name,
    traffic_history,
)
from loopml.kernel.exceptions import DeploymentError
from loopml.predictions import (
    open_prediction_log,
    query_predictions,
    record_feedback,
)
from loopml.register import register_model, resolve
from loopml.rollout import analyze_rollout, controller_tick
from loopml.testing import ThreadServer, wait_for_predictions

_spec = importlib.util.spec_from_file_location("faulty_models", Path(__file__).with_name("faulty_models.py"))
fm = sys.modules.get("faulty_models")
if fm is None:  # importable by name, so the registry's pickles of its classes load back
    fm = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
    sys.modules["faulty_models"] = fm
    _spec.loader.exec_module(fm)  # type: ignore[union-attr]

ENDPOINT = "churn-api"
FAST = {"min_seconds": 0.0, "interval_s": 0.0}


class Rig:
    """A workspace with v1 on ``churn-api``, a server routing by its policy, and a traffic source."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.base = fm.fit(0)
        self.v1 = self.register(self.base)
        deploy(ws, ENDPOINT, f"churn/{self.v1}")
        self.rows, self.labels = fm.make_rows(4000, seed=42)
        self.records = self.rows.astype(object).where(self.rows.notna(), None).to_dict("records")
        self.server: Any = None
        self.log: Any = None
        self.sent = 0

    def register(self, estimator: Any) -> int:
        return register_model(self.ws, "churn", estimator, signature=fm.SIGNATURE, task="classification",
                              gates_passed=True).version

    # ------------------------------------------------------------ server

    def start(self) -> Rig:
        from loopml.serve import create_app

        self.log = open_prediction_log(self.ws, flush_interval_s=0.05, roll_interval_s=0.1)
        app = create_app(ENDPOINT, workspace=self.ws, sink=self.log,
                         settings={"poll_interval_s": 0.05, "max_batch_wait_ms": 0})
        self.router = app.endpoints[ENDPOINT].router
        self.endpoint = app.endpoints[ENDPOINT]
        self.server = ThreadServer(app).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()  # the app's shutdown closes the log: nothing submitted is lost
            self.server = None

    def sync(self) -> int:
        """Wait until the server routes by the stored policy; its revision."""
        want = get_endpoint(self.ws, ENDPOINT).revision
        deadline = time.monotonic() + 10
        while self.router.table.revision != want:
            assert time.monotonic() < deadline, "the server did not pick up the policy"
            time.sleep(0.02)
        return want

    def traffic(self, n: int, *, threads: int = 2, keys: list[str] | None = None) -> list[dict[str, Any]]:
        """``n`` single-row requests; what each client saw (status, answering version, request id, true label)."""
        start, self.sent = self.sent, self.sent + n
        out: list[dict[str, Any]] = []
        lock = threading.Lock()

        def worker(idx: list[int]) -> None:
            with httpx.Client(base_url=self.server.url, timeout=30) as client:
                for i in idx:
                    j = i % len(self.records)
                    headers = {"X-Request-ID": f"q{i}"}
                    if keys:
                        headers["X-Request-Key"] = keys[i % len(keys)]
                    r = client.post("/invocations", json={"dataframe_records": [self.records[j]]}, headers=headers)
                    seen = {"rid": f"q{i}", "status": r.status_code, "version": int(r.headers["x-model-version"]),
                            "label": int(self.labels[j]), "key": headers.get("X-Request-Key")}
                    with lock:
                        out.append(seen)

        idx = list(range(start, start + n))
        pool = [threading.Thread(target=worker, args=(idx[k::threads],)) for k in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        self.log.flush()
        return out

    def wait_for_shadow(self, done: Callable[[int, int], bool]) -> None:
        """Until ``done(rows the shadow logged, copies it dropped)``: its worker process starts, scores and logs."""
        wait_for_predictions(self.ws, shadow_endpoint_name(ENDPOINT),
                             lambda logged: done(logged, self.endpoint.batcher.shadow_dropped))

    def row(self, rid: str) -> dict[str, Any]:
        """The record request ``rid`` sent."""
        return self.records[int(rid[1:]) % len(self.records)]

    def tick(self) -> str:
        decisions = controller_tick(self.ws)
        assert len(decisions) == 1, decisions
        self.last = decisions[0]
        return decisions[0].action

    def revisions(self) -> list[int]:
        return [h.revision for h in traffic_history(self.ws, ENDPOINT)]


@pytest.fixture
def rig(sqlite_workspace: Any) -> Iterator[Rig]:
    r = Rig(sqlite_workspace)
    yield r
    r.stop()


def test_a_canary_raising_on_a_fifth_of_requests_is_rolled_back(rig: Rig) -> None:
    v2 = rig.register(fm.RaisesOnAFifth(rig.base))
    deploy(rig.ws, ENDPOINT, f"churn/{v2}", strategy="canary", steps=[0.25, 1.0], min_requests=40, **FAST)
    rig.start().sync()
    seen = rig.traffic(280)
    failed = [s for s in seen if s["status"] != 200]
    assert failed and {s["version"] for s in failed} == {v2}  # errors only from the canary share
    assert {s["status"] for s in failed} == {500}
    canary = [s for s in seen if s["version"] == v2]
    crashing = {s["rid"] for s in canary if rig.row(s["rid"])["visits"] % 5 == 0}  # the candidate's fault
    assert {s["rid"] for s in failed} == crashing  # exactly those requests, whatever batch each landed in
    assert rig.tick() == "rollback", rig.last.reason
    r = get_rollout(rig.ws, ENDPOINT)
    assert r.status == "rolled_back" and "error_rate breached" in r.evidence[-1]["reason"]
    rig.sync()
    after = rig.traffic(60)
    assert {(s["status"], s["version"]) for s in after} == {(200, rig.v1)}  # no error past the rollback
    assert resolve(rig.ws, "churn@champion").version == rig.v1


def test_the_scheduler_rolls_back_a_failing_canary_long_before_its_sample_and_hold(rig: Rig) -> None:
    from loopml.scheduler import Scheduler

    v2 = rig.register(fm.RaisesOnAFifth(rig.base))
    # A step would wait for 10 000 candidate requests and an hour: only a conclusive early breach acts here.
    deploy(rig.ws, ENDPOINT, f"churn/{v2}", strategy="canary", steps=[0.25, 1.0], min_requests=10_000,
           min_seconds=3600.0)
    rig.start().sync()
    sched = Scheduler(rig.ws, holder="test", tick_s=60.0, execute_runs=False, rollout_tick_s=0.05)
    thread = threading.Thread(target=sched.run_forever, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        seen: list[dict[str, Any]] = []
        while get_rollout(rig.ws, ENDPOINT).status == "running":  # live traffic until the scheduler acts
            assert time.monotonic() < deadline, "the scheduler did not roll the failing canary back"
            seen += rig.traffic(20)
    finally:
        sched.stop()
        thread.join(timeout=10)
    r = get_rollout(rig.ws, ENDPOINT)
    assert r.status == "rolled_back" and "error_rate breached" in r.evidence[-1]["reason"]
    [error] = [s for s in r.evidence[-1]["signals"] if s["name"] == "error_rate"]
    assert error["extra"] == {"early": True} and error["n_candidate"] < 10_000 and error["p_value"] < 0.001
    assert {s["version"] for s in seen if s["status"] != 200} == {v2}
    rig.sync()
    assert {(s["status"], s["version"]) for s in rig.traffic(40)} == {(200, rig.v1)}


def test_between_full_analyses_a_quick_look_only_rolls_back_and_only_on_conclusive_evidence(rig: Rig) -> None:
    healthy = rig.register(fm.fit(0))  # behaves like v1
    deploy(rig.ws, ENDPOINT, f"churn/{healthy}", strategy="canary", steps=[0.5, 1.0], min_requests=30,
           min_seconds=0.0, interval_s=3600.0)
    rig.start().sync()
    assert rig.tick() == "hold"  # the first look is a full analysis: no data yet
    evidence = get_rollout(rig.ws, ENDPOINT).evidence
    rig.traffic(200)
    assert rig.tick() == "skip" and "quick look" in rig.last.reason  # a full analysis would advance: not a quick one
    assert get_rollout(rig.ws, ENDPOINT).evidence == evidence  # nothing stored, no traffic change
    assert analyze_rollout(rig.ws, get_rollout(rig.ws, ENDPOINT), force=True).action == "advance"
    assert get_rollout(rig.ws, ENDPOINT).status == "promoted"
    rig.stop()  # a new server for the next rollout, started on the stored policy
    failing = rig.register(fm.RaisesOnAFifth(rig.base))
    deploy(rig.ws, ENDPOINT, f"churn/{failing}", strategy="canary", steps=[0.5, 1.0], min_requests=30,
           min_seconds=0.0, interval_s=3600.0)
    rig.start().sync()
    assert rig.tick() == "hold"
    rig.traffic(200)
    assert rig.tick() == "rollback", rig.last.reason  # within the hour: the evidence is conclusive
    r = get_rollout(rig.ws, ENDPOINT)
    assert r.status == "rolled_back" and r.evidence[-1]["look"] == "quick"
    assert "error_rate breached" in r.evidence[-1]["reason"] and "quick look" in r.evidence[-1]["reason"]
    assert get_endpoint(rig.ws, ENDPOINT).serving_versions == [healthy]


def test_a_five_times_slower_candidate_is_rolled_back_on_latency(rig: Rig) -> None:
    # 0.1 s more per call: >= 5x the baseline's request latency on loopback, and still > 1.5x at p95 when a
    # loaded 2-core machine stretches the baseline's p95 to 100+ ms (0.02 s did not hold there).
    v2 = rig.register(fm.Slow(rig.base, delay_s=0.1))
    deploy(rig.ws, ENDPOINT, f"churn/{v2}", strategy="canary", steps=[0.5, 1.0], min_requests=30, **FAST)
    rig.start().sync()
    seen = rig.traffic(100, threads=1)
    assert {s["status"] for s in seen} == {200}
    assert rig.tick() == "rollback", rig.last.reason
    reason = get_rollout(rig.ws, ENDPOINT).evidence[-1]["reason"]
    assert "latency_p95 breached" in reason and "error_rate" not in reason
    assert get_endpoint(rig.ws, ENDPOINT).serving_versions == [rig.v1]


def test_worse_accuracy_is_held_until_labels_arrive_then_rolled_back(rig: Rig) -> None:
    v2 = rig.register(fm.WorseOnTwoFifths(rig.base))
    deploy(rig.ws, ENDPOINT, f"churn/{v2}", strategy="canary", steps=[0.5, 1.0], min_requests=30,
           metric="accuracy", min_labels=40, **FAST)
    rig.start().sync()
    seen = rig.traffic(200)
    by_version = {v: [s for s in seen if s["version"] == v] for v in (rig.v1, v2)}
    assert all(len(x) >= 60 for x in by_version.values())
    early = by_version[rig.v1][:20] + by_version[v2][:20]  # labels trickle in
    record_feedback(rig.ws, ENDPOINT, [{"request_id": s["rid"], "label": s["label"]} for s in early])
    revision = rig.revisions()[-1]
    assert rig.tick() == "hold"
    r = get_rollout(rig.ws, ENDPOINT)
    assert r.status == "running" and "metric_accuracy" in r.evidence[-1]["reason"]
    assert rig.revisions()[-1] == revision  # held: no traffic change
    late = by_version[rig.v1][20:] + by_version[v2][20:]
    record_feedback(rig.ws, ENDPOINT, [{"request_id": s["rid"], "label": s["label"]} for s in late])
    assert rig.tick() == "rollback"
    assert "metric_accuracy breached" in get_rollout(rig.ws, ENDPOINT).evidence[-1]["reason"]
    assert get_endpoint(rig.ws, ENDPOINT).serving_versions == [rig.v1]


@pytest.mark.slow
def test_a_healthy_canary_is_promoted_to_all_traffic_and_champion(rig: Rig) -> None:
    v2 = rig.register(fm.fit(1, max_iter=15))
    deploy(rig.ws, ENDPOINT, f"churn/{v2}", strategy="canary", steps=[0.25, 0.5, 1.0], min_requests=30, **FAST)
    rig.start().sync()
    rig.traffic(200)
    assert rig.tick() == "advance", rig.last.reason
    assert get_rollout(rig.ws, ENDPOINT).step == 1
    rig.sync()
    seen = rig.traffic(120)
    assert {s["version"] for s in seen} == {rig.v1, v2}
    assert rig.tick() == "advance", rig.last.reason  # past the last step: the advance promotes
    assert get_rollout(rig.ws, ENDPOINT).status == "promoted"
    assert resolve(rig.ws, "churn@champion").version == v2
    endpoint = get_endpoint(rig.ws, ENDPOINT)
    assert endpoint.serving_versions == [v2] and endpoint.policy["standby"] == [rig.v1]
    rig.sync()
    assert {(s["status"], s["version"]) for s in rig.traffic(40)} == {(200, v2)}
    assert [m.version for m in rig.router.standby_models()] == [rig.v1]  # kept warm for a rollback


@pytest.mark.slow
def test_a_controller_and_server_restart_mid_rollout_resume_without_flapping(rig: Rig) -> None:
    v2 = rig.register(fm.fit(0))  # behaves like v1: only the restart is under test
    deploy(rig.ws, ENDPOINT, f"churn/{v2}", strategy="canary", steps=[0.25, 0.5, 1.0], min_requests=30,
           min_seconds=0.0, interval_s=60.0)
    rig.start().sync()
    rig.traffic(200)
    assert rig.tick() == "advance", rig.last.reason
    history = rig.revisions()
    # The controller is killed after deciding; a new one starts at once: it reads the stored state.
    assert rig.tick() == "skip"
    # The server restarts mid-step: it comes back on the stored policy, not on an older one.
    rig.stop()
    rig.start()
    assert rig.router.table.revision == history[-1]
    assert {m.version: w for m, w in zip(rig.router.models(), (0.5, 0.5), strict=True)} == {rig.v1: 0.5, v2: 0.5}
    forced = analyze_rollout(rig.ws, get_rollout(rig.ws, ENDPOINT), force=True)
    assert forced.action == "hold"  # the new step has no data yet: hold, never step back
    assert rig.revisions() == history
    rig.traffic(120)
    final = analyze_rollout(rig.ws, get_rollout(rig.ws, ENDPOINT), force=True)
    assert final.action == "advance" and get_rollout(rig.ws, ENDPOINT).status == "promoted", final.reason
    reasons = [h.reason for h in traffic_history(rig.ws, ENDPOINT)]
    assert reasons[1:] == ["canary rollout 2 started", "canary step 1", "final step passed"]


def test_shadow_answers_are_logged_apart_and_never_returned(rig: Rig) -> None:
    v2 = rig.register(fm.fit(1, max_iter=15))
    deploy(rig.ws, ENDPOINT, f"churn/{v2}", strategy="shadow", min_requests=30, **FAST)
    rig.start().sync()
    seen = rig.traffic(80)
    assert {(s["status"], s["version"]) for s in seen} == {(200, rig.v1)}
    shadow = shadow_endpoint_name(ENDPOINT)
    # Under pressure the shadow drops copies (bounded queue) rather than slow the endpoint:
    # every request is either logged by the shadow or counted as dropped.
    rig.wait_for_shadow(lambda logged, dropped: logged + dropped >= 80)
    assert rig.endpoint.batcher.shadow_worker.starts == 1  # scored and logged in the shadow worker process
    logged = query_predictions(rig.ws, shadow, columns=["request_id", "model_version", "status"])
    assert set(logged["model_version"]) == {v2} and set(logged["request_id"]) <= {s["rid"] for s in seen}
    assert len(logged) + rig.endpoint.batcher.shadow_dropped == 80 and len(logged) >= 40
    assert set(query_predictions(rig.ws, ENDPOINT, columns=["model_version"])["model_version"]) == {rig.v1}
    decision = controller_tick(rig.ws)[0]
    assert decision.action == "hold" and "promote manually" in decision.reason, decision
    assert next(s for s in decision.signals if s["name"] == "error_rate")["n_candidate"] == len(logged)
    promote(rig.ws, ENDPOINT, reason="shadow looked fine")
    rig.sync()
    assert {s["version"] for s in rig.traffic(20)} == {v2}


def test_a_sampled_shadow_scores_a_share_of_the_requests(rig: Rig) -> None:
    v2 = rig.register(fm.fit(1, max_iter=15))
    deploy(rig.ws, ENDPOINT, f"churn/{v2}", strategy="shadow", shadow_fraction=0.5, min_requests=10, **FAST)
    rig.start().sync()
    assert rig.router.table.shadow_fraction == 0.5
    seen = rig.traffic(120)
    assert {(s["status"], s["version"]) for s in seen} == {(200, rig.v1)}
    shadow = shadow_endpoint_name(ENDPOINT)
    router = rig.router
    rig.wait_for_shadow(lambda logged, dropped: logged + dropped > 0)
    logged = query_predictions(rig.ws, shadow, columns=["request_id", "model_version"])
    assert set(logged["model_version"]) <= {v2} and set(logged["request_id"]) <= {s["rid"] for s in seen}
    # Whole batches are sampled at 50% (drawn as each is answered): some were copied, some not, never all.
    assert router.shadow_batches > 0 and router.shadow_skipped_batches > 0
    assert 0 < len(logged) + rig.endpoint.batcher.shadow_dropped < 120


def test_ab_assignment_is_sticky_by_request_key(rig: Rig) -> None:
    v2 = rig.register(fm.fit(1, max_iter=15))
    deploy(rig.ws, ENDPOINT, f"churn/{v2}", strategy="ab", split=0.5, **FAST)
    rig.start().sync()
    keys = [f"user-{i}" for i in range(30)]
    seen = rig.traffic(150, keys=keys)
    by_key: dict[str, set[int]] = {}
    for s in seen:
        by_key.setdefault(s["key"], set()).add(s["version"])
    assert all(len(v) == 1 for v in by_key.values())  # the same key always gets the same version
    assert set().union(*by_key.values()) == {rig.v1, v2}
    assert rig.tick() == "hold"  # A/B waits for its metric; it never promotes on its own (auto=False)
    assert np.isclose(get_endpoint(rig.ws, ENDPOINT).policy["routes"][1]["weight"], 0.5)


def test_a_blue_green_candidate_that_cannot_score_is_never_switched_to(rig: Rig) -> None:
    v2 = rig.register(fm.RaisesAlways(rig.base))  # loads and verifies fine: only scoring rows finds it
    deploy(rig.ws, ENDPOINT, f"churn/{v2}", strategy="blue-green", **FAST)
    rig.start().sync()
    assert rig.router.standby_models() == () and v2 in rig.router.unhealthy  # not kept warm
    assert {(s["status"], s["version"]) for s in rig.traffic(30)} == {(200, rig.v1)}
    report = next(e for e in get_rollout(rig.ws, ENDPOINT).evidence if e.get("kind") == "health_check")
    assert report["status"] == "breach" and "cannot score anything" in report["detail"]  # the server's verdict
    assert rig.tick() == "rollback", rig.last.reason
    r = get_rollout(rig.ws, ENDPOINT)
    assert r.status == "rolled_back" and "standby_health breached" in r.evidence[-1]["reason"]
    assert get_endpoint(rig.ws, ENDPOINT).serving_versions == [rig.v1]
    assert resolve(rig.ws, "churn@champion").version == rig.v1
    # A person promotes it anyway: the server re-checks it and keeps answering with v1; clients see no error.
    deploy(rig.ws, ENDPOINT, f"churn/{v2}", strategy="blue-green", **FAST)
    rig.sync()
    promote(rig.ws, ENDPOINT, reason="forced")
    deadline = time.monotonic() + 10
    while "failed its health check" not in (rig.router.last_error or ""):
        assert time.monotonic() < deadline, "the server did not refuse the unhealthy version"
        time.sleep(0.02)
    assert {(s["status"], s["version"]) for s in rig.traffic(30)} == {(200, rig.v1)}
    rollback(rig.ws, ENDPOINT, reason="undo the forced promotion")  # the promoted rollout, baseline still warm
    rig.sync()
    assert rig.router.last_error is None and [m.version for m in rig.router.models()] == [rig.v1]


def test_a_wrong_shaped_blue_green_candidate_is_rolled_back(rig: Rig) -> None:
    v2 = rig.register(fm.WrongShape(rig.base))
    deploy(rig.ws, ENDPOINT, f"churn/{v2}", strategy="blue-green", **FAST)
    assert rig.tick() == "rollback", rig.last.reason  # the controller's own check, no server needed to see it
    assert "shape" in get_rollout(rig.ws, ENDPOINT).evidence[-1]["reason"]


def test_a_healthy_blue_green_candidate_is_switched_kept_warm_then_released(rig: Rig) -> None:
    v2 = rig.register(fm.fit(1, max_iter=15))
    deploy(rig.ws, ENDPOINT, f"churn/{v2}", strategy="blue-green", keep_warm_s=60.0, **FAST)
    assert rig.tick() == "hold" and "no serving process" in rig.last.reason  # no server has warmed it yet
    rig.start().sync()
    assert [m.version for m in rig.router.standby_models()] == [v2]
    assert {(s["status"], s["version"]) for s in rig.traffic(20)} == {(200, rig.v1)}
    assert rig.tick() == "promote", rig.last.reason
    health = next(s for s in rig.last.signals if s["name"] == "standby_health")
    assert health["status"] == "ok" and "answered 3 probe rows" in health["detail"]
    assert resolve(rig.ws, "churn@champion").version == v2
    rig.sync()
    assert {(s["status"], s["version"]) for s in rig.traffic(20)} == {(200, v2)}
    ended = get_rollout(rig.ws, ENDPOINT).ended_at
    assert controller_tick(rig.ws, now=ended + timedelta(seconds=59)) == []  # inside the window: still warm
    assert get_endpoint(rig.ws, ENDPOINT).policy["standby"] == [rig.v1]
    assert [m.version for m in rig.router.standby_models()] == [rig.v1] and rig.v1 in rig.router.table.loaded
    [released] = controller_tick(rig.ws, now=ended + timedelta(seconds=61))
    assert released.action == "release", released
    assert controller_tick(rig.ws, now=ended + timedelta(seconds=120)) == []  # once
    assert get_endpoint(rig.ws, ENDPOINT).policy["standby"] == []
    assert "released" in (traffic_history(rig.ws, ENDPOINT)[-1].reason or "")
    rig.sync()
    assert rig.router.standby_models() == () and rig.v1 not in rig.router.table.loaded  # unloaded
    assert {(s["status"], s["version"]) for s in rig.traffic(20)} == {(200, v2)}
    with pytest.raises(DeploymentError, match="kept warm"):
        rollback(rig.ws, ENDPOINT, reason="too late")
