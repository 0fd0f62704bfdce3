"""Overload (503 + Retry-After) and hot swap (alias moves, zero failed requests)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from loopml.serve import AliasRouter, create_app
from tests.serve.conftest import ROWS_OK, SIGNATURE, FakeRecord, SlowClassifier, StandInModel

ROW = ROWS_OK[0]


def test_overload_answers_503_with_retry_after_at_once(serve: Any) -> None:
    slow = StandInModel("slow", 1, SlowClassifier(0.4), None, "classification")
    srv = serve(create_app(slow, settings={"max_queue": 2, "max_batch_size": 1}))
    with httpx.Client(base_url=srv.url, timeout=30, limits=httpx.Limits(max_connections=16)) as client:
        def one(_: int) -> httpx.Response:
            return client.post("/v2/models/slow/infer", json={"inputs": [
                {"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}]})

        with ThreadPoolExecutor(10) as pool:
            responses = list(pool.map(one, range(10)))
        codes = sorted(r.status_code for r in responses)
        assert codes.count(200) >= 3 and 503 in codes
        rejected = [r for r in responses if r.status_code == 503]
        assert all(r.headers["retry-after"] == "1" and r.json()["rule"] == "overloaded" for r in rejected)
        assert all(r.elapsed.total_seconds() < 0.4 for r in rejected)  # rejected at once, not after a wait
        assert one(0).status_code == 200  # and it recovers
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
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(base_url=srv.url, timeout=10) as client:
            while not stop.is_set():
                r = client.post("/invocations", json={"dataframe_records": [dict(zip(FEATS, ROW, strict=True))]})
                seen.append((r.status_code, r.json().get("model_version")))

    threads = [threading.Thread(target=traffic) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.4)
    alias["version"] = 2
    deadline = time.monotonic() + 10
    while router.current.version != 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert router.current.version == 2 and router.swaps == 1
    assert {code for code, _ in seen} == {200}
    versions = [v for _, v in seen]
    assert 1 in versions and versions[-1] == 2
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
    time.sleep(0.3)
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
