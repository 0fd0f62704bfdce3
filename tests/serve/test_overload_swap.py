"""Overload (503 + Retry-After) and hot swap (alias moves, zero failed requests)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pytest

from loopml.serve import AliasRouter, create_app
from tests.serve.conftest import ROWS_OK, SIGNATURE, FakeRecord, StandInModel

ROW = ROWS_OK[0]


class GatedClassifier:
    """A classifier that holds every call until the test opens the gate (no timing in the test)."""

    classes_ = np.array([0, 1])
    n_features_in_ = 2

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.gate = threading.Event()

    def predict_proba(self, x: Any) -> np.ndarray:
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        return np.tile([0.25, 0.75], (len(x), 1))


def _wait(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_overload_answers_503_with_retry_after_at_once(serve: Any) -> None:
    model = GatedClassifier()
    app = create_app(StandInModel("slow", 1, model, None, "classification"), settings={"max_queue": 2, "max_batch_size": 1})
    srv = serve(app)
    queue = app.endpoints["slow"].batcher.queue
    body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}]}
    with httpx.Client(base_url=srv.url, timeout=30, limits=httpx.Limits(max_connections=16)) as client, \
            ThreadPoolExecutor(3) as pool:
        def one(_: int = 0) -> httpx.Response:
            return client.post("/v2/models/slow/infer", json=body)

        held = [pool.submit(one)]
        assert model.entered.wait(10)  # the model is busy with the first request ...
        held += [pool.submit(one) for _ in range(2)]
        _wait(lambda: len(queue) == 2)  # ... and the queue is full
        # While the model still holds its call, more requests are turned away: 503 at once, never a wait.
        rejected = [one() for _ in range(3)]
        assert not model.gate.is_set() and all(f.running() for f in held)
        assert all(r.status_code == 503 for r in rejected)
        assert all(r.headers["retry-after"] == "1" and r.json()["rule"] == "overloaded" for r in rejected)
        model.gate.set()
        assert [f.result().status_code for f in held] == [200, 200, 200]  # what was queued is served
        assert one().status_code == 200  # and it recovers
        assert 'status="503"' in client.get("/metrics").text


def test_hot_swap_alias_move_without_failed_requests(trained: tuple[Any, Any], serve: Any) -> None:
    models = {1: StandInModel("churn", 1, trained[0], SIGNATURE, "classification", FakeRecord(1, "sha256:a")),
              2: StandInModel("churn", 2, trained[1], SIGNATURE, "classification", FakeRecord(2, "sha256:b"))}
    alias = {"version": 1}

    def load(token: Any) -> StandInModel:
        time.sleep(0.3)  # loading takes a while: the old version keeps answering meanwhile
        return models[token]

    router = AliasRouter(lambda: alias["version"], load, poll_interval_s=0.05)
    srv = serve(create_app(router))
    seen: list[list[tuple[int, int]]] = [[], [], []]  # per client, in order
    stop = threading.Event()

    def traffic(mine: list[tuple[int, int]]) -> None:
        with httpx.Client(base_url=srv.url, timeout=10) as client:
            while not stop.is_set():
                r = client.post("/invocations", json={"dataframe_records": [dict(zip(FEATS, ROW, strict=True))]})
                mine.append((r.status_code, r.json().get("model_version")))

    threads = [threading.Thread(target=traffic, args=(mine,)) for mine in seen]
    for t in threads:
        t.start()
    try:
        _wait(lambda: all(len(mine) >= 2 for mine in seen))  # every client got answers from version 1
        alias["version"] = 2
        # Every client goes on to get answers from version 2 (the load takes 0.3 s: v1 answers meanwhile).
        _wait(lambda: all(sum(v == 2 for _, v in mine) >= 2 for mine in seen))
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert router.current.version == 2 and router.swaps == 1
    assert {code for mine in seen for code, _ in mine} == {200}
    for mine in seen:
        versions = [v for _, v in mine]
        assert versions[0] == 1 and versions[-1] == 2
        assert versions == sorted(versions)  # no client ever went back to version 1 after the switch
    assert httpx.get(srv.url + "/v2/models/churn").json()["versions"] == ["2"]
    assert 'loopml_serve_model_info{endpoint="churn",model_name="churn",model_version="2"} 1.0' in \
        httpx.get(srv.url + "/metrics").text


def test_hot_swap_keeps_serving_when_the_new_version_fails_to_load(trained: tuple[Any, Any], serve: Any) -> None:
    alias = {"version": 1}

    def load(token: Any) -> StandInModel:
        if token == 2:
            raise OSError("artifact store unreachable")
        return StandInModel("churn", 1, trained[0], SIGNATURE, "classification")

    router = AliasRouter(lambda: alias["version"], load, poll_interval_s=0.05)
    srv = serve(create_app(router))
    alias["version"] = 2
    _wait(lambda: router.last_error is not None)  # the poller tried to load version 2
    assert router.current.version == 1 and "unreachable" in (router.last_error or "")
    r = httpx.post(srv.url + "/invocations", json={"inputs": [ROW]})
    assert r.status_code == 200 and r.json()["model_version"] == 1


FEATS = ["age", "income", "visits", "plan"]


def test_hot_swap_with_the_real_registry(sqlite_workspace: Any, trained: tuple[Any, Any], serve: Any) -> None:
    register = pytest.importorskip("loopml.register")
    if not hasattr(register, "register_model") or not hasattr(register, "set_alias"):
        pytest.skip("loopml.register has no register_model/set_alias yet")
    ws = sqlite_workspace
    register.register_model(ws, "churn", trained[0], signature=SIGNATURE, task="classification", aliases=["champion"])
    register.register_model(ws, "churn", trained[1], signature=SIGNATURE, task="classification")
    app = create_app("churn@champion", workspace=ws, settings={"poll_interval_s": 0.1})
    srv = serve(app)
    with httpx.Client(base_url=srv.url, timeout=10) as client:
        assert client.post("/invocations", json={"inputs": [ROW]}).json()["model_version"] == 1
        register.set_alias(ws, "churn", "champion", 2)
        deadline = time.monotonic() + 10
        version = 1
        while version != 2 and time.monotonic() < deadline:
            r = client.post("/invocations", json={"inputs": [ROW]})
            assert r.status_code == 200
            version = r.json()["model_version"]
        assert version == 2
        fixed = serve(create_app("churn/1", workspace=ws))
        assert httpx.post(fixed.url + "/v2/models/churn/versions/1/infer", json={"inputs": [
            {"name": n, "shape": [1], "datatype": "BYTES" if n == "plan" else "FP64", "data": [v]}
            for n, v in zip(FEATS, ROW, strict=True)]}).status_code == 200
