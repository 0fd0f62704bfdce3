"""PolicyRouter: routing by a versioned traffic policy, loads before switching, shadows off the response path."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from loopml.serve import ModelRouter, create_app
from loopml.serve._policy import PolicyRouter, sticky_bucket
from tests.serve.conftest import (
    FEATURES,
    ROWS_OK,
    SIGNATURE,
    FakeRecord,
    RecordingSink,
    StandInModel,
)

ROW = dict(zip(FEATURES, ROWS_OK[0], strict=True))


def _policy(routes: list[tuple[int, float]], *, standby: list[int] | None = None, shadow: list[int] | None = None,
            sticky: bool = False, shadow_fraction: float | None = None) -> dict[str, Any]:
    policy = {"model": "churn", "routes": [{"version": v, "weight": w, "role": "baseline" if i == 0 else "candidate"}
                                           for i, (v, w) in enumerate(routes)],
              "standby": standby or [], "shadow": shadow or [], "sticky": sticky}
    if shadow_fraction is not None:
        policy["shadow_fraction"] = shadow_fraction
    return policy


class FakeStore:
    """Stands in for the endpoints table: a revision and a policy, and a log of loads."""

    def __init__(self, trained: tuple[Any, Any], policy: dict[str, Any]) -> None:
        self.revision, self.policy = 1, policy
        self.loads: list[int] = []
        self.revision_reads = 0
        self.fail: set[int] = set()
        self.estimators = {1: trained[0], 2: trained[1], 3: trained[0]}

    def set(self, policy: dict[str, Any]) -> None:
        self.revision, self.policy = self.revision + 1, policy

    def fetch_revision(self) -> int:
        self.revision_reads += 1
        return self.revision

    def fetch_policy(self) -> tuple[int, dict[str, Any]]:
        return self.revision, self.policy

    def load(self, model: str, version: int) -> StandInModel:
        if version in self.fail:
            raise RuntimeError(f"version {version} is corrupt")
        self.loads.append(version)
        return StandInModel(model, version, self.estimators[version], SIGNATURE, "classification",
                            FakeRecord(version, f"sha256:{version}"))

    def router(self, **options: Any) -> PolicyRouter:
        return PolicyRouter("churn-api", self.fetch_revision, self.fetch_policy, self.load, **options)


def test_weights_split_traffic_and_shadows_never_answer(trained: tuple[Any, Any]) -> None:
    store = FakeStore(trained, _policy([(1, 0.8), (2, 0.2)], shadow=[3]))
    router = store.router()
    assert isinstance(router, ModelRouter)
    router._random = random.Random(0).random  # a fixed draw sequence: the share below is not left to chance
    counts = Counter(router.route(f"r{i}").version for i in range(5000))
    assert set(counts) == {1, 2} and 0.15 < counts[2] / 5000 < 0.25
    assert [m.version for m in router.shadow_models()] == [3]
    assert [m.version for m in router.models()] == [1, 2]


def test_a_weighted_split_draws_once_per_batch_once_the_server_reports_batches(trained: tuple[Any, Any]) -> None:
    store = FakeStore(trained, _policy([(1, 0.8), (2, 0.2)]))
    router = store.router()
    router._random = random.Random(1).random
    epochs = []
    for _ in range(2000):
        router.next_batch()  # a batch was formed: the requests routed until the next one share a batch
        versions = {router.route(f"r{i}").version for i in range(5)}
        assert len(versions) == 1  # one version per batch: one model call
        epochs.append(versions.pop())
    assert 0.17 < epochs.count(2) / len(epochs) < 0.23  # the weight still holds, per batch and so per request
    # A policy change inside a batch applies at once: the held draw belongs to the old table.
    store.set(_policy([(2, 1.0)]))
    assert router.refresh() is True and router.route("late").version == 2
    # Sticky (A/B) routing stays per key whatever the batches.
    sticky = FakeStore(trained, _policy([(1, 0.5), (2, 0.5)], sticky=True)).router()
    sticky.next_batch()
    assert {sticky.route(f"user-{i}").version for i in range(50)} == {1, 2}
    assert all(sticky.route(f"user-{i}").version == sticky.route(f"user-{i}").version for i in range(50))


def test_a_sampled_shadow_scores_whole_batches_at_its_fraction(trained: tuple[Any, Any]) -> None:
    store = FakeStore(trained, _policy([(1, 1.0)], shadow=[3], shadow_fraction=0.25))
    router = store.router()
    router._random = random.Random(2).random
    picked = [router.shadow_for_batch() for _ in range(4000)]
    copied = sum(bool(p) for p in picked)
    assert {tuple(m.version for m in p) for p in picked} == {(), (3,)}
    assert 0.22 < copied / 4000 < 0.28 and router.shadow_batches == copied
    assert router.shadow_skipped_batches == 4000 - copied
    assert [m.version for m in router.shadow_models()] == [3]  # the listing is not sampled
    store.set(_policy([(1, 1.0)], shadow=[3]))  # no fraction stored (older policies): every batch
    assert router.refresh() is True and all(router.shadow_for_batch() for _ in range(100))


class _Counting:
    """A fitted classifier that counts its model calls and takes a few ms per call (so requests queue)."""

    def __init__(self, base: Any, delay_s: float = 0.004) -> None:
        self.base, self.delay_s, self.calls = base, delay_s, 0
        self.classes_, self.feature_names_in_ = base.classes_, base.feature_names_in_

    def predict_proba(self, x: Any) -> Any:
        self.calls += 1
        time.sleep(self.delay_s)
        return self.base.predict_proba(x)


@pytest.mark.parametrize("sticky", [False, True], ids=["canary", "ab-sticky"])
def test_a_split_scores_each_micro_batch_in_one_model_call(trained: tuple[Any, Any], serve: Any,
                                                           sticky: bool) -> None:
    # A canary draws once per batch; a sticky A/B split routes per key, so its batches form per version instead.
    store = FakeStore(trained, _policy([(1, 0.7), (2, 0.3)], sticky=sticky))
    store.estimators = {1: _Counting(trained[0]), 2: _Counting(trained[1])}
    router = store.router()
    app = create_app({"churn-api": router}, sink=RecordingSink())
    srv = serve(app)
    seen: list[tuple[str, str]] = []

    def client(worker: int, n: int) -> None:
        with httpx.Client(base_url=srv.url, timeout=10) as c:
            for i in range(n):
                key = f"user-{worker}-{i}"
                r = c.post("/invocations", json={"dataframe_records": [ROW]}, headers={"X-Request-Key": key})
                assert r.status_code == 200
                seen.append((key, r.headers["x-model-version"]))

    threads = [threading.Thread(target=client, args=(w, 25)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    series = app.m_batch_reqs.series[("churn-api",)]
    batches, single = int(series[-1]), int(series[0])
    calls = store.estimators[1].calls + store.estimators[2].calls
    assert len(seen) == 200 and {v for _, v in seen} == {"1", "2"}
    assert batches - single > 0  # requests did share batches, so a per-request version would have split them
    assert calls == batches  # and yet no batch took two model calls
    if sticky:  # every request still got its key's version
        assert all(router.route(key).version_str == v for key, v in seen)


def test_sticky_routing_keeps_a_key_on_one_version(trained: tuple[Any, Any]) -> None:
    store = FakeStore(trained, _policy([(1, 0.5), (2, 0.5)], sticky=True))
    router = store.router()
    first = {f"user-{i}": router.route(f"user-{i}").version for i in range(400)}
    assert all(router.route(k).version == v for k, v in first.items() for _ in range(3))
    share = sum(v == 2 for v in first.values()) / len(first)
    assert 0.4 < share < 0.6
    assert sticky_bucket("user-1") == sticky_bucket("user-1") and 0 <= sticky_bucket("x") < 1


def test_every_named_version_is_loaded_before_the_switch_and_reused_after(trained: tuple[Any, Any]) -> None:
    store = FakeStore(trained, _policy([(1, 1.0)]))
    router = store.router()
    before = router.table
    store.set(_policy([(1, 1.0)], standby=[2], shadow=[3]))  # blue-green standby + a shadow
    table = router.check()
    assert table is not None and router.table is before  # loaded, not yet switched
    assert store.loads == [1, 2, 3]
    router.switch(table)
    assert [m.version for m in router.standby_models()] == [2] and router.swaps == 1
    store.set(_policy([(2, 1.0)], standby=[1]))  # the atomic blue-green switch
    assert router.refresh() is True
    assert store.loads == [1, 2, 3]  # nothing reloaded: the standby was warm
    assert router.route("any").version == 2 and router.pick("1") is not None and router.pick("3") is None
    assert router.refresh() is False  # same revision: one cheap read, nothing else


def test_a_failed_load_keeps_the_old_policy_serving(trained: tuple[Any, Any]) -> None:
    store = FakeStore(trained, _policy([(1, 1.0)]))
    router = store.router()
    store.fail.add(2)
    store.set(_policy([(1, 0.5), (2, 0.5)]))
    assert router.refresh() is False
    assert router.table.revision == 1 and "version 2 is corrupt" in (router.last_error or "")
    store.fail.clear()
    assert router.refresh() is True and router.last_error is None and router.table.revision == 2


class _Broken:
    """A fitted classifier that loads fine and raises on every row."""

    def __init__(self, base: Any) -> None:
        self.classes_, self.feature_names_in_ = base.classes_, base.feature_names_in_

    def predict_proba(self, x: Any) -> Any:
        raise ValueError("cannot score")


def test_a_standby_is_health_checked_on_rows_where_it_is_loaded(trained: tuple[Any, Any]) -> None:
    store = FakeStore(trained, _policy([(1, 1.0)]))
    store.estimators[2] = _Broken(trained[1])
    verdicts: list[tuple[int, str]] = []
    router = store.router(on_health=lambda v, h: verdicts.append((v, h.status)))
    store.set(_policy([(1, 1.0)], standby=[2]))
    assert router.refresh() is True  # the revision applies, without the unhealthy standby
    assert router.standby_models() == () and "cannot score" in router.unhealthy[2] and verdicts == [(2, "breach")]
    store.set(_policy([(2, 1.0)], standby=[1]))  # switching to it anyway: re-checked, refused
    assert router.refresh() is False and router.table.revision == 2
    assert "failed its health check" in (router.last_error or "") and router.route("k").version == 1
    store.estimators[2] = trained[1]  # fixed (e.g. a transient fault): the re-check passes, the switch happens
    assert router.refresh() is True and router.route("k").version == 2 and not router.unhealthy
    assert verdicts == [(2, "breach"), (2, "breach"), (2, "ok")]


def test_poll_runs_off_the_event_loop(trained: tuple[Any, Any]) -> None:
    store = FakeStore(trained, _policy([(1, 1.0)]))
    router = store.router(poll_interval_s=0.01)
    loop_thread: list[bool] = []

    def fetch_revision() -> int:
        try:
            asyncio.get_running_loop()
            loop_thread.append(True)
        except RuntimeError:
            loop_thread.append(False)
        return store.revision

    router._fetch_revision = fetch_revision
    store.set(_policy([(2, 1.0)]))
    assert asyncio.run(router.poll_once()) is True
    assert loop_thread == [False] and router.route("k").version == 2


def test_request_key_from_the_payload(trained: tuple[Any, Any]) -> None:
    router = FakeStore(trained, _policy([(1, 1.0)])).router(key_field="user_id")
    assert router.key_from_payload({"dataframe_records": [{"user_id": 7, "age": 3}]}) == "7"
    assert router.key_from_payload({"dataframe_split": {"columns": ["a", "user_id"], "data": [[1, "u9"]]}}) == "u9"
    assert router.key_from_payload({"inputs": [{"name": "user_id", "shape": [1], "datatype": "BYTES",
                                                "data": ["u3"]}]}) == "u3"
    assert router.key_from_payload({"parameters": {"user_id": "p"}, "inputs": []}) == "p"
    assert router.key_from_payload({"instances": [[1, 2]]}) is None


def _wait(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def test_server_routes_by_policy_and_logs_shadow_answers_apart(trained: tuple[Any, Any], serve: Any) -> None:
    store = FakeStore(trained, _policy([(1, 0.5), (2, 0.5)], shadow=[3], sticky=True))
    sink = RecordingSink()
    app = create_app({"churn-api": store.router(poll_interval_s=0.05)}, sink=sink)
    srv = serve(app)
    answered: dict[str, str] = {}
    with httpx.Client(base_url=srv.url, timeout=10) as client:
        for i in range(60):
            key = f"user-{i % 20}"
            r = client.post("/invocations", json={"dataframe_records": [ROW]},
                            headers={"X-Request-Key": key, "X-Request-ID": f"req-{i}"})
            assert r.status_code == 200
            version = r.headers["x-model-version"]
            assert answered.setdefault(key, version) == version  # sticky
            assert version != "3"  # the shadow never answers
        assert set(answered.values()) == {"1", "2"}
        pinned = client.post("/v2/models/churn-api/versions/2/infer", json={"inputs": [
            {"name": n, "shape": [1], "datatype": "BYTES" if n == "plan" else "FP64", "data": [v]}
            for n, v in ROW.items()]})
        assert pinned.status_code == 200 and pinned.json()["model_version"] == "2"
        assert client.post("/v2/models/churn-api/versions/3/infer", json={"inputs": []}).status_code == 404
        # The shadow's queue is bounded: under load a copy is dropped (and counted), never queued forever.
        batcher = app.endpoints["churn-api"].batcher

        def shadowed() -> int:
            return sum(r.endpoint == "churn-api.shadow" for r in sink.records)

        _wait(lambda: shadowed() + batcher.shadow_dropped >= 61)
        shadow = [r for r in sink.records if r.endpoint == "churn-api.shadow"]
        main = [r for r in sink.records if r.endpoint == "churn-api" and r.status == 200]
        assert {r.model_version for r in shadow} == {3} and {r.model_version for r in main} == {1, 2}
        assert {r.request_id for r in shadow} <= {f"req-{i}" for i in range(60)} | {None} | {
            r.request_id for r in main}
        assert len(shadow) + batcher.shadow_dropped == 61 and len(shadow) >= 30
        metrics = client.get("/metrics").text
        assert f'loopml_serve_shadow_dropped_total{{endpoint="churn-api"}} {float(batcher.shadow_dropped)!r}' in metrics
        assert "# TYPE loopml_serve_shadow_dropped_total counter" in metrics
        # A policy change is picked up by the poller without a restart.
        store.set(_policy([(3, 1.0)], standby=[1]))
        _wait(lambda: client.post("/invocations", json={"dataframe_records": [ROW]}).headers["x-model-version"] == "3")
        assert client.get("/v2/models/churn-api").json()["versions"] == ["3"]


def test_serving_an_endpoint_name_follows_deploy(sqlite_workspace: Any, trained: tuple[Any, Any], serve: Any) -> None:
    from loopml.deploy import deploy, get_endpoint, shadow_endpoint_name
    from loopml.register import register_model
    from loopml.rollout import shadow_endpoint
    ws = sqlite_workspace
    for est in trained:
        register_model(ws, "churn", est, signature=SIGNATURE, gates_passed=True)
    deploy(ws, "churn-api", "churn/1")
    app = create_app("churn-api", workspace=ws, settings={"poll_interval_s": 0.05})
    router = app.endpoints["churn-api"].router
    assert isinstance(router, PolicyRouter) and router.route("x").version == 1
    srv = serve(app)
    deploy(ws, "churn-api", "churn/2", strategy="canary", steps=[0.5, 1.0])
    _wait(lambda: router.table.revision == get_endpoint(ws, "churn-api").revision)
    with httpx.Client(base_url=srv.url, timeout=10) as client:
        seen = {client.post("/invocations", json={"dataframe_records": [ROW]}).json()["model_version"]
                for _ in range(40)}
    assert seen == {1, 2}
    assert shadow_endpoint("e") == shadow_endpoint_name("e") == "e.shadow"
