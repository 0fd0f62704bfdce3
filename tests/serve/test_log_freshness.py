"""The server's prediction log end to end: a numeric model's batches reach the log in columns, readable at once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from loopml.predictions import PredictionLog, count_predictions, query_predictions
from tests.serve.conftest import FakeRecord, StandInModel

NUMERIC = {
    "version": 1,
    "columns": {"a": {"type": "float", "nullable": False}, "b": {"type": "float", "nullable": False}},
    "target": "y",
}


@pytest.fixture(scope="module")
def numeric_model() -> StandInModel:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    est = LogisticRegression().fit(x, (x[:, 0] + x[:, 1] > 0).astype(int))
    return StandInModel("num", 1, est, NUMERIC, "classification", FakeRecord(1, "sha256:n1"))


def wait_for(condition: Any, deadline_s: float) -> Any:
    """Poll ``condition`` until it returns something other than None, or the deadline passes (then None)."""
    end = time.monotonic() + deadline_s
    while True:
        value = condition()
        if value is not None or time.monotonic() > end:
            return value
        time.sleep(0.05)


def test_an_answered_request_is_queryable_before_its_parquet_exists(
        numeric_model: Any, serve: Any, tmp_path: Path) -> None:
    from loopml.serve import create_app

    root = tmp_path / "log"
    # Parquet every hour: only the journal (written every flush interval) can make the row visible in time.
    plog = PredictionLog(root, flush_interval_s=1.0, roll_interval_s=3600)
    try:
        srv = serve(create_app(numeric_model, sink=plog))
        r = httpx.post(srv.url + "/invocations", json={"inputs": [[0.5, 1.0], [-2.0, 0.1]]}, timeout=10)
        assert r.status_code == 200
        rid = r.headers["x-request-id"]

        def logged() -> Any:
            try:
                frame = query_predictions(root, "num")
            except LookupError:  # nothing logged for the endpoint yet
                return None
            rows = frame[frame["request_id"] == rid]
            return rows if len(rows) == 2 else None

        rows = wait_for(logged, deadline_s=5.0)
        assert rows is not None, "the answered request never became readable through query_predictions"
        assert not list(root.glob("endpoint=*/**/*.parquet"))  # it came from the journal
        assert sorted(rows["row"]) == [0, 1] and set(rows["model_version"]) == {1}
        got = rows.sort_values("row")
        assert got["f_a"].tolist() == [0.5, -2.0] and got["f_b"].tolist() == [1.0, 0.1]
        want = numeric_model.estimator.predict_proba(np.array([[0.5, 1.0], [-2.0, 0.1]]))
        assert np.allclose(got[["proba_0", "proba_1"]].to_numpy(), want)
    finally:
        plog.close()


def test_concurrent_batches_are_logged_once_each_with_their_rows(
        numeric_model: Any, serve: Any, tmp_path: Path) -> None:
    from loopml.serve import create_app

    root = tmp_path / "log"
    plog = PredictionLog(root, flush_interval_s=0.05, roll_interval_s=3600)
    srv = serve(create_app(numeric_model, sink=plog, settings={"max_batch_size": 64, "max_batch_wait_ms": 20}))
    bodies = [{"inputs": [[float(i), float(k)] for k in range(1 + i % 3)]} for i in range(60)]
    with httpx.Client(base_url=srv.url, timeout=20) as client, ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda b: client.post("/invocations", json=b), bodies))
    assert {a.status_code for a in answers} == {200}
    plog.close()
    frame = query_predictions(root, "num")
    assert len(frame) == sum(len(b["inputs"]) for b in bodies) == count_predictions(root, "num")
    for body, answer in zip(bodies, answers, strict=True):
        rows = frame[frame["request_id"] == answer.headers["x-request-id"]].sort_values("row")
        assert rows["row"].tolist() == list(range(len(body["inputs"])))
        assert rows["f_b"].tolist() == [row[1] for row in body["inputs"]]
        assert (rows["f_a"] == body["inputs"][0][0]).all()
