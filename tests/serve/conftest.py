"""Fixtures for the serving tests: a small trained model and a real uvicorn server in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.testing import ThreadServer

SIGNATURE = {
    "version": 1,
    "columns": {
        "age": {"type": "float", "nullable": False, "min": 0.0, "max": 120.0},
        "income": {"type": "float", "nullable": True},
        "visits": {"type": "int", "nullable": False, "min": 0},
        "plan": {"type": "category", "nullable": False, "categories": ["basic", "pro", "team"], "unseen": "reject"},
    },
    "target": "churn",
}
FEATURES = ["age", "income", "visits", "plan"]


@dataclass(frozen=True)
class FakeRecord:
    version: int
    artifact_digest: str


@dataclass(frozen=True)
class StandInModel:
    """The shape of ``loopml.register.LoadedModel`` (tests only)."""

    name: str
    version: int
    estimator: Any
    signature: dict[str, Any] | None
    task: str | None
    record: Any = field(default=None)


def training_frame(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "age": rng.uniform(18, 90, n),
        "income": np.where(rng.random(n) < 0.1, np.nan, rng.normal(50, 15, n)),
        "visits": rng.integers(0, 30, n).astype(np.float64),
        "plan": pd.Categorical(rng.choice(["basic", "pro", "team"], n), categories=["basic", "pro", "team"]),
    })
    y = ((frame["age"] > 50) ^ (frame["plan"] == "pro")).astype(int).to_numpy()
    return frame, y


@pytest.fixture(scope="session")
def trained() -> tuple[Any, Any]:
    """Two HistGradientBoosting classifiers (v1, v2) on a frame with a categorical column."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame, y = training_frame()
    v1 = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(frame, y)
    v2 = HistGradientBoostingClassifier(max_iter=10, random_state=1).fit(frame, y)
    return v1, v2


@pytest.fixture
def model(trained: tuple[Any, Any]) -> StandInModel:
    return StandInModel("churn", 1, trained[0], SIGNATURE, "classification", FakeRecord(1, "sha256:v1"))


class SlowClassifier:
    """A classifier that takes ``delay`` seconds per call (overload and drain tests)."""

    classes_ = np.array([0, 1])
    n_features_in_ = 2

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls = 0

    def predict_proba(self, x: Any) -> np.ndarray:
        self.calls += 1
        time.sleep(self.delay)
        n = len(x)
        return np.tile([0.25, 0.75], (n, 1))


class RecordingSink:
    """A PredictionSink that keeps records in memory."""

    def __init__(self) -> None:
        self.records: list[Any] = []
        self.closed = False
        self._lock = threading.Lock()

    def submit(self, records: list[Any]) -> None:
        with self._lock:
            self.records.extend(records)

    def close(self) -> None:
        self.closed = True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def serve() -> Iterator[Callable[..., ThreadServer]]:
    """``serve(app)`` starts a real server; all are stopped after the test."""
    started: list[ThreadServer] = []

    def start(app: Any) -> ThreadServer:
        server = ThreadServer(app).__enter__()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.__exit__()


ROWS_OK = [[34.0, 51.5, 3, "pro"], [71.0, None, 12, "basic"]]
