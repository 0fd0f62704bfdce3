"""A candidate that turns faulty on cue, for the breach-to-rollback bench (importable by the server).

``FailsOnCue`` wraps a fitted classifier and raises on rows whose ``visits`` is
a multiple of ``every`` (``every=5``: a fifth of single-row requests; ``1``:
all of them) once ``flag_path`` exists (or from the start when it is None),
so the bench knows when the breach began.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np


class FailsOnCue:
    def __init__(self, base: Any, *, every: int = 5, flag_path: str | None = None) -> None:
        self.base, self.every, self.flag_path = base, every, flag_path
        self.classes_ = base.classes_
        self.feature_names_in_ = base.feature_names_in_
        self.n_features_in_ = base.n_features_in_

    def predict_proba(self, x: Any) -> np.ndarray:
        if self.flag_path is None or os.path.exists(self.flag_path):
            if (np.asarray(x["visits"], dtype=float) % self.every == 0).any():
                raise ValueError("candidate crashed on this input")
        return self.base.predict_proba(x)

    def predict(self, x: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(axis=1)]
