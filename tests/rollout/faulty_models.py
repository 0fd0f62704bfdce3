"""Faulty candidates for the rollout fault tests, and a real server harness.

The estimators wrap a real fitted scikit-learn classifier and are picklable
(the registry stores them with joblib), so they go through the same
register -> load -> serve path as any model. Their faults are deterministic
in the row's content (``visits`` is uniform on 0..29), so a request fails or
not whatever batch it lands in.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

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


def make_rows(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows the signature accepts and their true label (a rule the models learn)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "age": rng.uniform(18, 90, n).round(1),
        "income": np.where(rng.random(n) < 0.1, np.nan, rng.normal(50, 15, n).round(2)),
        "visits": rng.integers(0, 30, n).astype(np.float64),
        "plan": pd.Categorical(rng.choice(["basic", "pro", "team"], n), categories=["basic", "pro", "team"]),
    })
    y = ((frame["age"] > 50) ^ (frame["plan"] == "pro")).astype(int).to_numpy()
    return frame, y


def fit(seed: int, max_iter: int = 20) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame, y = make_rows(600, seed)
    return HistGradientBoostingClassifier(max_iter=max_iter, random_state=seed).fit(frame, y)


class Wrapped:
    """Delegates to a fitted classifier, exposing what serving reads (``classes_``, feature names)."""

    def __init__(self, base: Any) -> None:
        self.base = base
        self.classes_ = base.classes_
        self.feature_names_in_ = base.feature_names_in_
        self.n_features_in_ = base.n_features_in_

    def predict_proba(self, x: Any) -> np.ndarray:
        return self.base.predict_proba(x)

    def predict(self, x: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(axis=1)]


class RaisesOnAFifth(Wrapped):
    """Raises on rows whose ``visits`` is a multiple of 5: 20% of single-row requests."""

    def predict_proba(self, x: Any) -> np.ndarray:
        if (np.asarray(x["visits"], dtype=float) % 5 == 0).any():
            raise ValueError("candidate crashed on this input")
        return self.base.predict_proba(x)


class Slow(Wrapped):
    """Sleeps ``delay_s`` per call (the fault test uses 0.1 s: many times the baseline's request latency)."""

    def __init__(self, base: Any, delay_s: float) -> None:
        super().__init__(base)
        self.delay_s = delay_s

    def predict_proba(self, x: Any) -> np.ndarray:
        time.sleep(self.delay_s)
        return self.base.predict_proba(x)


class WorseOnTwoFifths(Wrapped):
    """Answers the wrong class on 40% of rows (``visits % 5 in {0, 1}``); same output distribution."""

    def predict_proba(self, x: Any) -> np.ndarray:
        proba = np.array(self.base.predict_proba(x))
        flip = np.isin(np.asarray(x["visits"], dtype=float) % 5, (0, 1))
        proba[flip] = proba[flip][:, ::-1]
        return proba




class RaisesAlways(Wrapped):
    """Loads and hash-checks like any model, then raises on every row: only scoring rows finds it."""

    def predict_proba(self, x: Any) -> np.ndarray:
        raise RuntimeError("candidate cannot score anything")


class WrongShape(Wrapped):
    """Answers one probability row per batch, whatever the number of rows."""

    def predict_proba(self, x: Any) -> np.ndarray:
        return self.base.predict_proba(x)[:1]
