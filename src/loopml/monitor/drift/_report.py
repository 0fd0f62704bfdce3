"""What a drift check returns: per-feature results and the dataset report.

Both are plain dataclasses whose ``to_dict()`` is JSON-safe (NaN becomes
``None``), because reports are stored in the metadata store and served by the
REST API as they are.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["DriftReport", "FeatureResult", "OutlierResult"]


def _clean(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become None, containers are walked."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


@dataclass(frozen=True)
class FeatureResult:
    """The verdict on one column: which test, its numbers and the decision.

    ``p_value`` is ``None`` for distance methods (Wasserstein, Jensen-Shannon,
    PSI), which decide on ``effect >= threshold``; p-value methods decide on
    ``p_adjusted < alpha`` (``p_value`` before any correction) and, in loopml's
    default mode, ``effect >= min_effect``.
    """

    column: str
    type: str
    method: str
    statistic: float
    p_value: float | None
    effect: float
    effect_name: str
    drifted: bool
    n_reference: int
    n_current: int
    threshold: float
    min_effect: float = 0.0
    p_adjusted: float | None = None
    missing_reference: float = 0.0
    missing_current: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every field."""
        return _clean(asdict(self))  # type: ignore[no-any-return]


@dataclass(frozen=True)
class OutlierResult:
    """Share of current values outside the reference's [q0.001, q0.999] range."""

    column: str
    share: float
    reference_share: float
    lower: float
    upper: float
    n_current: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every field."""
        return _clean(asdict(self))  # type: ignore[no-any-return]


@dataclass(frozen=True)
class DriftReport:
    """Dataset-level drift: per-feature verdicts, the share rule, outliers, prediction drift."""

    per_feature: list[FeatureResult]
    dataset_drift: bool
    drift_share: float
    n_drifted: int
    n_features: int
    n_current_rows: int
    params: dict[str, Any]
    prediction: FeatureResult | None = None
    outliers: list[OutlierResult] = field(default_factory=list)
    outlier_share: float | None = None

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the features judged drifted."""
        return [r.column for r in self.per_feature if r.drifted]

    def feature(self, column: str) -> FeatureResult:
        """The result of one column (KeyError if it was not checked)."""
        for r in self.per_feature:
            if r.column == column:
                return r
        raise KeyError(column)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (the shape stored as a monitor report)."""
        return _clean(
            {
                "dataset_drift": self.dataset_drift,
                "drift_share": self.drift_share,
                "n_drifted": self.n_drifted,
                "n_features": self.n_features,
                "n_current_rows": self.n_current_rows,
                "params": self.params,
                "per_feature": [r.to_dict() for r in self.per_feature],
                "prediction": None if self.prediction is None else self.prediction.to_dict(),
                "outliers": [o.to_dict() for o in self.outliers],
                "outlier_share": self.outlier_share,
            }
        )

    def to_frame(self) -> Any:
        """Per-feature results as a pandas DataFrame (one row per column)."""
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.per_feature])
