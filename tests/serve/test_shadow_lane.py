"""The shadow lane: copies collected for a window, one model call per shadow version, bounded, flushed on close."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import numpy as np
import pytest

from loopml.kernel.config import load_settings
from loopml.kernel.exceptions import ValidationError
from loopml.serve import ServeConfig, create_app
from loopml.serve._batcher import Job, MicroBatcher
from loopml.serve._router import ServedModel
from loopml.serve._validation import Frame
from loopml.testing import ThreadServer
from tests.serve.conftest import SIGNATURE, FakeRecord, RecordingSink, StandInModel, training_frame
from tests.serve.test_policy_router import ROW, FakeStore, _policy, _wait

NUMERIC = ["age", "income", "visits"]
NUMERIC_SIGNATURE = {"version": 1, "columns": {n: SIGNATURE["columns"][n] for n in NUMERIC}}
NEVER = 60_000.0  # a window no test waits out: whatever is scored was flushed by max rows or by close()


class CountingClassifier:
    """A fitted classifier that records the rows of each ``predict_proba`` call; ``gate`` holds calls until set."""

    def __init__(self, estimator: Any, *, gate: threading.Event | None = None, broken: bool = False,
                 delay_s: float = 0.0) -> None:
        self.estimator = estimator
        self.classes_ = estimator.classes_
        self.n_features_in_ = estimator.n_features_in_
        if hasattr(estimator, "feature_names_in_"):
            self.feature_names_in_ = estimator.feature_names_in_
        self.calls: list[int] = []
        self.entered = threading.Event()
        self.gate = gate
        self.broken = broken
        self.delay_s = delay_s

    def predict_proba(self, x: Any) -> np.ndarray:
        self.calls.append(len(x))
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(30), "the test never opened the gate"
        if self.broken:
            raise RuntimeError("this version cannot score")
        time.sleep(self.delay_s)
        return self.estimator.predict_proba(x)


class BatchSink(RecordingSink):
    """A sink that also takes columnar batches, as the prediction log does."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[dict[str, Any]] = []

    def submit_batch(self, batch: dict[str, Any]) -> None:
        self.batches.append(batch)

    def shadow_batches(self) -> list[dict[str, Any]]:
        return [b for b in self.batches if b["endpoint"] == "ep.shadow"]


@pytest.fixture(scope="module")
def numeric() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame, y = training_frame()
    return HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(frame[NUMERIC].to_numpy(), y)


def _served(estimator: Any, version: int) -> ServedModel:
    return ServedModel(StandInModel("churn", version, estimator, NUMERIC_SIGNATURE, "classification",
                                    FakeRecord(version, f"sha256:{version}")))


def _frame(rows: int, seed: int) -> Frame:
    rng = np.random.default_rng(seed)
    return Frame(rows, matrix=np.column_stack([rng.uniform(18, 90, rows), rng.normal(50, 15, rows),
                                               rng.integers(0, 30, rows).astype(np.float64)]))


def _answer_one_by_one(batcher: MicroBatcher, primary: ServedModel, frames: list[Frame], *,
                       before_close: Any = None) -> list[Any]:
    """Each request answered before the next is sent (so each is its own batch), then ``before_close``, then close."""

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        batcher.start()
        results = []
        for i, frame in enumerate(frames):
            job = Job(primary, frame, f"r-{i}", time.perf_counter(), time.time(), loop.create_future())
            results.append(await batcher.submit(job))
        if before_close is not None:
            await asyncio.to_thread(before_close)
        await batcher.close()
        return results

    return asyncio.run(main())


def _batcher(shadows: list[ServedModel], sink: Any, **settings: Any) -> MicroBatcher:
    return MicroBatcher("ep", max_batch_size=1024, max_batch_wait_ms=0, max_queue=64, sink=sink,
                        shadow=lambda: shadows, **settings)


def test_a_full_window_is_scored_at_once_in_one_call_per_shadow_version(numeric: Any) -> None:
    v2, v3 = CountingClassifier(numeric), CountingClassifier(numeric)
    sink = BatchSink()
    batcher = _batcher([_served(v2, 2), _served(v3, 3)], sink, shadow_window_ms=NEVER, shadow_max_rows=12)
    frames = [_frame(1 + i % 2, seed=i) for i in range(8)]  # 12 rows in 8 requests

    def scored_long_before_the_window_ends() -> None:
        _wait(lambda: len(sink.shadow_batches()) == 2)

    results = _answer_one_by_one(batcher, _served(numeric, 1), frames, before_close=scored_long_before_the_window_ends)
    assert all(r.error is None for r in results)
    assert v2.calls == [12] and v3.calls == [12]  # 8 answered batches, one model call per shadow version
    by_version = {b["model_version"]: b for b in sink.shadow_batches()}
    assert sorted(by_version) == [2, 3]
    batch = by_version[2]
    assert list(batch["request_id"]) == [f"r-{i}" for i in range(8) for _ in range(1 + i % 2)]
    assert batch["row"].tolist() == [r for i in range(8) for r in range(1 + i % 2)]
    stacked = np.concatenate([f.matrix for f in frames])
    np.testing.assert_array_equal(batch["inputs"].matrix, stacked)
    np.testing.assert_allclose(batch["outputs"]["predict_proba"], numeric.predict_proba(stacked))
    assert (batch["latency_ms"] >= 0).all() and batch["status"] == 200
    assert [b["model_version"] for b in sink.batches if b["endpoint"] == "ep"] == [1] * 8  # answers logged as before


def test_a_request_is_charged_its_batchs_share_of_the_coalesced_call(numeric: Any) -> None:
    """Shadow latency stays comparable with the answers': not the whole window's call for every request."""
    slow = CountingClassifier(numeric, delay_s=0.24)
    sink = BatchSink()
    batcher = _batcher([_served(slow, 2)], sink, shadow_window_ms=NEVER, shadow_max_rows=12)
    frames = [_frame(1 + i % 2, seed=i) for i in range(8)]  # 12 rows: 1-row and 2-row batches
    _answer_one_by_one(batcher, _served(numeric, 1), frames,
                       before_close=lambda: _wait(lambda: sink.shadow_batches()))
    assert slow.calls == [12]
    (batch,) = sink.shadow_batches()
    per_request = {rid: ms for rid, ms in zip(batch["request_id"], batch["latency_ms"], strict=True)}
    one_row = [per_request[f"r-{i}"] for i in range(0, 8, 2)]
    two_rows = [per_request[f"r-{i}"] for i in range(1, 8, 2)]
    assert max(per_request.values()) < 120  # the call took >= 240 ms; a 2-row batch's share is 2/12 of it
    assert min(one_row) >= 240 / 12 and min(two_rows) >= 2 * 240 / 12
    assert np.mean(two_rows) > 1.5 * np.mean(one_row)


def test_close_scores_the_copies_still_waiting_without_waiting_out_the_window(numeric: Any) -> None:
    shadow = CountingClassifier(numeric)
    sink = BatchSink()
    batcher = _batcher([_served(shadow, 2)], sink, shadow_window_ms=NEVER)
    waiting: list[int] = []
    started = time.monotonic()
    _answer_one_by_one(batcher, _served(numeric, 1), [_frame(1, seed=i) for i in range(5)],
                       before_close=lambda: waiting.extend(shadow.calls))
    assert time.monotonic() - started < NEVER / 2000  # close() did not sit out the 60 s window
    assert waiting == [] and shadow.calls == [5]
    (batch,) = sink.shadow_batches()
    assert list(batch["request_id"]) == [f"r-{i}" for i in range(5)] and batch["model_version"] == 2


def test_the_waiting_rows_are_bounded_and_the_dropped_requests_counted(numeric: Any) -> None:
    gate = threading.Event()
    shadow = CountingClassifier(numeric, gate=gate)
    sink = BatchSink()
    # No window: the first copy is scored at once and holds the lane; 4 x 2 rows may wait behind it.
    batcher = _batcher([_served(shadow, 2)], sink, shadow_window_ms=0, shadow_max_rows=2)
    assert batcher.shadow_lane is not None and batcher.shadow_lane.max_waiting_rows == 8

    async def main() -> None:
        loop = asyncio.get_running_loop()
        batcher.start()
        primary = _served(numeric, 1)
        for i in range(13):
            await batcher.submit(Job(primary, _frame(1, seed=i), f"r-{i}", time.perf_counter(), time.time(),
                                     loop.create_future()))
            if i == 0:
                assert await asyncio.to_thread(shadow.entered.wait, 10)
        assert batcher.shadow_dropped == 4  # 1 scoring + 8 waiting; the last 4 copies were dropped
        gate.set()
        await batcher.close()

    asyncio.run(main())
    assert shadow.calls == [1, 2, 2, 2, 2]  # a call takes at most shadow_max_rows rows
    logged = [rid for b in sink.shadow_batches() for rid in b["request_id"]]
    assert logged == [f"r-{i}" for i in range(9)] and batcher.shadow_dropped == 4


def test_a_broken_shadow_is_logged_as_failing_and_never_touches_answers(numeric: Any) -> None:
    broken, good = CountingClassifier(numeric, broken=True), CountingClassifier(numeric)
    sink = BatchSink()
    other = ServedModel(StandInModel("churn", 4, CountingClassifier(numeric), {"version": 1, "columns": {
        n: {"type": "float"} for n in ("a", "b", "c")}}, "classification"))
    batcher = _batcher([_served(broken, 2), other, _served(good, 3)], sink, shadow_window_ms=NEVER)
    results = _answer_one_by_one(batcher, _served(numeric, 1), [_frame(1, seed=i) for i in range(3)])
    assert all(r.error is None and r.proba.shape == (1, 2) for r in results)
    failed = [r for r in sink.records if r.endpoint == "ep.shadow"]
    assert [(r.request_id, r.model_version, r.status) for r in failed] == [(f"r-{i}", 2, 500) for i in range(3)]
    assert "this version cannot score" in (failed[0].error or "")
    # The version parsed for other features is skipped; the good one still scores the window in one call.
    assert [b["model_version"] for b in sink.shadow_batches()] == [3] and good.calls == [3]
    assert other.estimator.calls == []


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("shadow_window_ms", -1.0, r"serve setting shadow_window_ms must be >= 0, got -1.0"),
    ("shadow_window_ms", float("nan"), r"serve setting shadow_window_ms must be >= 0, got nan"),
    ("shadow_max_rows", 0, r"serve setting shadow_max_rows must be >= 1, got 0"),
])
def test_bad_shadow_lane_settings_name_the_field_and_rule(setting: str, value: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as err:
        ServeConfig.coerce({setting: value})
    assert (err.value.field, err.value.rule) == (setting, "min")


def test_shadow_lane_settings_come_from_the_env_like_other_serve_settings(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch, model: Any) -> None:
    monkeypatch.setenv("LOOPML_SERVE__SHADOW_WINDOW_MS", "250")
    monkeypatch.setenv("LOOPML_SERVE__SHADOW_MAX_ROWS", "64")
    serve_settings = load_settings(tmp_path).serve
    assert (serve_settings.shadow_window_ms, serve_settings.shadow_max_rows) == (250.0, 64)
    app = create_app(model, settings=serve_settings.model_dump())  # as `loopml serve` passes them
    config = app.endpoints["churn"].config
    assert (config.shadow_window_ms, config.shadow_max_rows) == (250.0, 64)
    assert (ServeConfig().shadow_window_ms, ServeConfig().shadow_max_rows) == (100.0, 4096)


def test_the_server_flushes_its_shadow_lane_on_shutdown(trained: tuple[Any, Any]) -> None:
    store = FakeStore(trained, _policy([(1, 1.0)], shadow=[3]))
    shadow = CountingClassifier(trained[0])
    store.estimators[3] = shadow
    sink = RecordingSink()
    app = create_app({"churn-api": store.router(poll_interval_s=0.05)}, sink=sink,
                     settings={"shadow_window_ms": NEVER})
    with ThreadServer(app) as srv, httpx.Client(base_url=srv.url, timeout=10) as client:
        for i in range(5):
            r = client.post("/invocations", json={"dataframe_records": [ROW]}, headers={"X-Request-ID": f"req-{i}"})
            assert r.status_code == 200 and r.headers["x-model-version"] == "1"
        assert shadow.calls == []  # still in the window
    assert shadow.calls == [5]  # shutdown scored the window in one call
    shadowed = [r for r in sink.records if r.endpoint == "churn-api.shadow"]
    assert [(r.request_id, r.model_version, r.status) for r in shadowed] == [(f"req-{i}", 3, 200) for i in range(5)]
    assert sink.closed
