"""The shadow worker: a real server whose shadow versions score and log in a process of their own.

Real parts throughout: a SQLite workspace with registered scikit-learn models,
a shadow policy from ``loopml.deploy``, the prediction log, a uvicorn server on
a loopback port, httpx clients, and the worker as a child process.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from loopml.deploy import deploy, shadow_endpoint_name
from loopml.kernel.exceptions import ValidationError
from loopml.predictions import open_prediction_log, query_predictions
from loopml.register import load_model, register_model
from loopml.serve import ServeConfig, create_app
from loopml.serve._jobs import Job
from loopml.serve._router import ServedModel
from loopml.serve._shadow import Copy
from loopml.serve._shadow_worker import _Models, _pack, _unpack
from loopml.serve._validation import Frame
from loopml.testing import ThreadServer, wait_for_predictions

FEATURES = ["age", "income", "visits"]
SIGNATURE = {"version": 1, "columns": {"age": {"type": "float"}, "income": {"type": "float"},
                                       "visits": {"type": "float"}}}
ENDPOINT = "churn-api"
SHADOW = shadow_endpoint_name(ENDPOINT)


def _rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.uniform(18, 90, n).round(1), "income": rng.normal(50, 15, n).round(2),
                         "visits": rng.integers(0, 30, n).astype(np.float64)})


def _fit(seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    x = _rows(400, seed)
    y = ((x["age"] > 50) ^ (x["visits"] > 14)).astype(int)
    return HistGradientBoostingClassifier(max_iter=15, random_state=seed).fit(x, y)


class ShadowRig:
    """v1 answers ``churn-api``; v2 is its shadow; a server with the prediction log routes by the policy."""

    def __init__(self, ws: Any, **settings: Any) -> None:
        self.ws = ws
        self.v1 = register_model(ws, "churn", _fit(0), signature=SIGNATURE, task="classification",
                                 gates_passed=True).version
        self.v2 = register_model(ws, "churn", _fit(1), signature=SIGNATURE, task="classification",
                                 gates_passed=True).version
        deploy(ws, ENDPOINT, f"churn/{self.v1}")
        deploy(ws, ENDPOINT, f"churn/{self.v2}", strategy="shadow", min_requests=10_000)
        self.log = open_prediction_log(ws, flush_interval_s=0.05, roll_interval_s=0.1)
        self.app = create_app(ENDPOINT, workspace=ws, sink=self.log,
                              settings={"poll_interval_s": 0.05, "max_batch_wait_ms": 0, "shadow_window_ms": 20,
                                        **settings})
        self.endpoint = self.app.endpoints[ENDPOINT]
        self.server = ThreadServer(self.app).start()
        self.sent: dict[str, pd.DataFrame] = {}

    def traffic(self, n: int, *, seed: int, threads: int = 2) -> None:
        """``n`` requests of 1-3 rows from ``threads`` clients (so batches and windows hold several)."""
        frames = [_rows(1 + i % 3, seed * 10_000 + i) for i in range(n)]

        def client(idx: range) -> None:
            with httpx.Client(base_url=self.server.url, timeout=30) as http:
                for i in idx:
                    rid = f"s{seed}-{i}"
                    r = http.post("/invocations", json={"dataframe_split": frames[i].to_dict("split")},
                                  headers={"X-Request-ID": rid})
                    assert r.status_code == 200 and int(r.headers["x-model-version"]) == self.v1, r.text
                    self.sent[rid] = frames[i]

        pool = [threading.Thread(target=client, args=(range(k, n, threads),)) for k in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()

    def wait_for_shadow(self, done: Callable[[int, int], bool]) -> None:
        """Until ``done(rows the shadow logged, copies it dropped)``."""
        wait_for_predictions(self.ws, SHADOW, lambda logged: done(logged, self.endpoint.batcher.shadow_dropped))

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def rig(sqlite_workspace: Any) -> Any:
    rigs: list[ShadowRig] = []

    def make(**settings: Any) -> ShadowRig:
        rigs.append(ShadowRig(sqlite_workspace, **settings))
        return rigs[-1]

    yield make
    for r in rigs:
        r.stop()


def _expected_proba(rig: ShadowRig, version: int, rids: list[str]) -> dict[str, np.ndarray]:
    est = load_model(rig.ws, f"churn/{version}").estimator
    return {rid: est.predict_proba(rig.sent[rid][FEATURES]) for rid in rids}


def test_a_worker_process_scores_and_logs_a_shadow_of_every_request(rig: Any) -> None:
    r = rig()
    worker = r.endpoint.batcher.shadow_worker
    assert worker is not None and worker.pid is None  # started on the first window, not before
    r.traffic(60, seed=1)
    rows = sum(len(f) for f in r.sent.values())
    r.wait_for_shadow(lambda logged, dropped: logged + dropped >= rows)
    pid = worker.pid
    assert pid is not None and pid != os.getpid() and worker.starts == 1
    r.stop()  # the worker logs what it has, closes its log and exits; the server waits for it
    assert worker.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert r.endpoint.batcher.shadow_dropped == 0
    logged = query_predictions(r.ws, SHADOW)
    assert set(logged["model_version"]) == {r.v2} and set(logged["status"]) == {200}
    assert sorted(set(logged["request_id"])) == sorted(r.sent) and len(logged) == rows
    # Every row's inputs and outputs come back to the request that sent them (the window's packing keeps order).
    expected = _expected_proba(r, r.v2, sorted(r.sent))
    for rid, part in logged.groupby("request_id"):
        part = part.sort_values("row")
        np.testing.assert_array_equal(part[[f"f_{c}" for c in FEATURES]].to_numpy(), r.sent[rid].to_numpy())
        got = np.column_stack([part["proba_0"], part["proba_1"]])
        np.testing.assert_allclose(got, expected[rid])
    assert (logged["latency_ms"] >= 0).all()
    answers = query_predictions(r.ws, ENDPOINT, columns=["model_version"])
    assert set(answers["model_version"]) == {r.v1} and len(answers) == rows


def test_a_worker_that_dies_is_started_again_and_answers_never_stop(rig: Any) -> None:
    r = rig()
    worker = r.endpoint.batcher.shadow_worker
    worker.restart_after_s = 0.2
    r.traffic(20, seed=1)
    first = sum(len(f) for f in r.sent.values())
    r.wait_for_shadow(lambda logged, dropped: logged + dropped >= first)
    os.kill(worker.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while worker._proc is not None and worker._proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    # Every request is answered while the worker is down and while it comes back.
    r.traffic(40, seed=2)
    time.sleep(0.3)
    r.traffic(40, seed=3)
    total = sum(len(f) for f in r.sent.values())
    r.wait_for_shadow(lambda logged, dropped: logged + dropped >= total)
    assert worker.starts == 2
    logged = query_predictions(r.ws, SHADOW, columns=["request_id"])
    later = {rid for rid in logged["request_id"] if rid.startswith("s3-")}
    assert len(later) == 40  # after the restart every copy is scored again
    assert len(logged) + r.endpoint.batcher.shadow_dropped == total  # none lost uncounted


def test_with_shadow_process_off_the_servers_thread_scores_the_shadow(rig: Any) -> None:
    r = rig(shadow_process=False)
    assert r.endpoint.batcher.shadow_worker is None and r.endpoint.batcher.shadow_lane is not None
    r.traffic(10, seed=1)
    rows = sum(len(f) for f in r.sent.values())
    r.wait_for_shadow(lambda logged, dropped: logged + dropped >= rows)
    assert set(query_predictions(r.ws, SHADOW, columns=["model_version"])["model_version"]) == {r.v2}


def test_a_loader_that_cannot_cross_to_a_process_keeps_the_shadow_on_the_thread(
        sqlite_workspace: Any, caplog: pytest.LogCaptureFixture) -> None:
    from loopml.serve._policy import PolicyRouter

    ws = sqlite_workspace
    v1 = register_model(ws, "churn", _fit(0), signature=SIGNATURE, task="classification", gates_passed=True).version
    v2 = register_model(ws, "churn", _fit(1), signature=SIGNATURE, task="classification", gates_passed=True).version
    deploy(ws, ENDPOINT, f"churn/{v1}")
    deploy(ws, ENDPOINT, f"churn/{v2}", strategy="shadow")
    router = PolicyRouter.for_endpoint(ws, ENDPOINT)
    router.loader = lambda model, version: load_model(ws, f"{model}/{version}")  # a closure does not pickle
    log = open_prediction_log(ws)
    app = create_app({ENDPOINT: router}, workspace=ws, sink=log)
    with caplog.at_level(logging.WARNING, logger="loopml.serve"), ThreadServer(app):
        assert app.endpoints[ENDPOINT].batcher.shadow_worker is None
        assert app.endpoints[ENDPOINT].batcher.shadow_lane is not None
    assert "shadows score on the server's thread, not in a worker process" in caplog.text


def test_shadow_process_must_be_a_boolean() -> None:
    with pytest.raises(ValidationError, match="serve setting shadow_process must be true or false, got 'yes'") as err:
        ServeConfig.coerce({"shadow_process": "yes"})
    assert (err.value.field, err.value.rule) == ("shadow_process", "type")


class _Model:
    def __init__(self, name: str, version: int, names: list[str]) -> None:
        self.name, self.version = name, version
        self.contract = type("C", (), {"names": names})()


def test_a_window_crosses_the_pipe_with_its_rows_ids_and_clocks_in_order() -> None:
    """The packing on its own: one matrix when every request is a numeric matrix, the frames otherwise."""
    shadow = _Model("churn", 2, FEATURES)
    answered = _Model("churn", 1, FEATURES)
    mats = [np.arange(3.0 * n).reshape(n, 3) + 100 * i for i, n in enumerate((1, 2, 3))]
    jobs = [Job(answered, Frame(len(m), matrix=m), f"r{i}", 10.0 + i, 1e9 + i, None)  # type: ignore[arg-type]
            for i, m in enumerate(mats)]
    copies = [Copy((shadow,), jobs[:2], 5.0, 3, 0.0), Copy((shadow,), jobs[2:], 6.0, 3, 0.0)]  # type: ignore[arg-type]
    window = _pack(copies)
    assert window["frames"] is None and window["matrix"].shape == (6, 3)
    models = _Models(lambda name, version: None)
    models._loaded[("churn", 2)] = shadow  # type: ignore[assignment]
    back = _unpack(window, models)
    assert [(c.t_batch, c.rows, len(c.jobs)) for c in back] == [(5.0, 3, 2), (6.0, 3, 1)]
    got = [j for c in back for j in c.jobs]
    assert [(j.request_id, j.t0, j.ts) for j in got] == [(f"r{i}", 10.0 + i, 1e9 + i) for i in range(3)]
    for j, m in zip(got, mats, strict=True):
        np.testing.assert_array_equal(j.frame.matrix, m)
        assert j.served.contract.names == FEATURES and back[0].shadows == (shadow,)
    # Requests with named columns (a categorical feature) travel as their frames.
    cols = Frame(1, columns={"plan": np.array(["pro"], dtype=object)})
    mixed = _pack([Copy((shadow,), [Job(answered, cols, "c0", 1.0, 2.0, None)], 3.0, 1, 0.0)])  # type: ignore[arg-type]
    assert mixed["matrix"] is None
    (copy,) = _unpack(mixed, models)
    assert copy.jobs[0].frame.columns["plan"].tolist() == ["pro"]
    # A shadow version that cannot be loaded there drops its copies (logged), never the window.
    assert _unpack(_pack([Copy((_Model("gone", 9, FEATURES),), jobs[:1], 1.0, 1, 0.0)]), models) == []  # type: ignore[arg-type]


def test_a_served_model_from_the_registry_is_what_the_worker_loads(sqlite_workspace: Any) -> None:
    """The router's loader pickles (the workspace crosses as its settings) and loads the same version back."""
    import pickle

    from loopml.serve._policy import PolicyRouter

    ws = sqlite_workspace
    v1 = register_model(ws, "churn", _fit(0), signature=SIGNATURE, task="classification", gates_passed=True).version
    deploy(ws, ENDPOINT, f"churn/{v1}")
    load = pickle.loads(pickle.dumps(PolicyRouter.for_endpoint(ws, ENDPOINT).loader))
    served = ServedModel(load("churn", v1))
    rows = _rows(5, 3)
    np.testing.assert_allclose(served.estimator.predict_proba(rows), _fit(0).predict_proba(rows))


class _Hangs:
    """A classifier whose calls never return; it touches ``LOOPML_TEST_MARKER`` as a call begins."""

    classes_ = np.array([0, 1])

    def predict_proba(self, x: Any) -> np.ndarray:
        from pathlib import Path

        Path(os.environ["LOOPML_TEST_MARKER"]).touch()
        time.sleep(3600)
        raise AssertionError("unreachable")


def _hanging_version(name: str, version: int) -> Any:
    from tests.serve.conftest import StandInModel

    return StandInModel(name, version, _Hangs(), SIGNATURE, "classification")


class _NoSink:
    def submit(self, records: Any) -> None: ...

    def close(self) -> None: ...


def test_close_kills_a_worker_that_hangs_instead_of_waiting_forever(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from loopml.serve._shadow_worker import ShadowWorker, ShadowWorkerSpec

    marker = tmp_path / "called"
    monkeypatch.setenv("LOOPML_TEST_MARKER", str(marker))  # the worker inherits the environment
    worker = ShadowWorker(ShadowWorkerSpec("ep", "ep.shadow", _hanging_version, _NoSink))
    shadow = _Model("churn", 2, FEATURES)
    jobs = [Job(_Model("churn", 1, FEATURES), Frame(1, matrix=np.ones((1, 3))), "r0", 1.0, 2.0, None)]  # type: ignore[arg-type]
    assert worker.ship([Copy((shadow,), jobs, 1.0, 1, 0.0)])  # type: ignore[arg-type]
    deadline = time.monotonic() + 60
    while not marker.exists():  # the worker started, loaded the version and is inside its call
        assert time.monotonic() < deadline, "the worker never called the model"
        time.sleep(0.05)
    proc = worker._proc
    started = time.monotonic()
    worker.close(timeout=1.0)
    assert time.monotonic() - started < 10
    assert proc is not None and proc.returncode == -signal.SIGKILL and worker.pid is None


def test_a_closed_worker_takes_no_window_and_starts_no_process() -> None:
    """A window the shadow thread still ships after shutdown began must not start a worker nobody will stop."""
    from loopml.serve._shadow_worker import ShadowWorker, ShadowWorkerSpec

    worker = ShadowWorker(ShadowWorkerSpec("ep", "ep.shadow", _hanging_version, _NoSink))
    worker.close()
    jobs = [Job(_Model("churn", 1, FEATURES), Frame(1, matrix=np.ones((1, 3))), "r0", 1.0, 2.0, None)]  # type: ignore[arg-type]
    assert not worker.ship([Copy((_Model("churn", 2, FEATURES),), jobs, 1.0, 1, 0.0)])  # type: ignore[arg-type]
    assert worker.starts == 0 and worker.pid is None
