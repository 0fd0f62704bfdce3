"""The dataset-level drift detector: fit on a reference profile, score current windows.

``DriftDetector.score`` is the policy (validate, choose a test per column,
correct across columns, apply the effect floor and the share rule); the tests
in ``_stattests`` are the mechanism. Prediction drift is the same machinery on
the output column, reported apart from the features so the share rule stays a
statement about inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from loopml.kernel.exceptions import MonitorError, ValidationError
from loopml.monitor.drift._columns import column_names, ensure_columns, get_column, row_count
from loopml.monitor.drift._evidently import evidently_method, evidently_score
from loopml.monitor.drift._outliers import outlier_shares
from loopml.monitor.drift._refprofile import ColumnReference, DriftReference, profile_frame
from loopml.monitor.drift._report import DriftReport, FeatureResult
from loopml.monitor.drift._selection import CORRECTIONS, adjust_pvalues, auto_method, check_methods
from loopml.monitor.drift._stattests import TESTS, DriftTest, _PValueTest
from loopml.monitor.drift._window import summarize_window

__all__ = ["DEFAULT_MIN_EFFECT", "DriftDetector"]

#: Default effect floor in loopml's modes (normalized Wasserstein / JS distance).
DEFAULT_MIN_EFFECT = 0.02


def _number(value: object, name: str, low: float, high: float, *, open_low: bool = False) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = (v > low if open_low else v >= low) and v <= high
    if not ok:
        bracket = "(" if open_low else "["
        raise ValidationError(f"{name} must be a number in {bracket}{low}, {high}], got {value!r}",
                              field=name, rule="range")
    return float(value)  # type: ignore[arg-type]


class DriftDetector:
    """Data and prediction drift of a current window against a reference profile.

    Args:
        method: "auto" (loopml's table, see ``_selection``), "evidently"
            (Evidently's DataDriftPreset defaults, see ``_evidently``), one
            test name for every column ("ks", "chisquare", "z",
            "wasserstein", "jensenshannon", "psi"), or a mapping column ->
            test name (other columns: "auto").
        alpha: significance level of the p-value tests.
        min_effect: effect floor for p-value tests; default 0.02 (0 in the
            Evidently mode).
        correction: "bh", "holm", "bonferroni" or "none" across features;
            default "bh" ("none" in the Evidently mode).
        drift_share: dataset drift when the share of drifted features is at
            least this.
        threshold: drift threshold of the distance methods.
        columns: features to check (default: every reference column but the
            prediction column).
        prediction_column: model output column, checked as prediction drift.
        types: per-column type overrides when fitting on a frame.
        outliers: also report the outlier shares of numeric features.
    """

    def __init__(
        self,
        *,
        method: str | Mapping[str, str] = "auto",
        alpha: float = 0.05,
        min_effect: float | None = None,
        correction: str | None = None,
        drift_share: float = 0.5,
        threshold: float = 0.1,
        columns: Sequence[str] | None = None,
        prediction_column: str | None = None,
        types: Mapping[str, str] | None = None,
        outliers: bool = True,
    ) -> None:
        self.method = method
        self.alpha = alpha
        self.min_effect = min_effect
        self.correction = correction
        self.drift_share = drift_share
        self.threshold = threshold
        self.columns = columns
        self.prediction_column = prediction_column
        self.types = types
        self.outliers = outliers

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, for the registry and the audit log."""
        return {k: getattr(self, k) for k in (
            "method", "alpha", "min_effect", "correction", "drift_share", "threshold", "columns",
            "prediction_column", "types", "outliers")}

    def _resolve_params(self) -> dict[str, Any]:
        method = check_methods(self.method)
        evidently = method == "evidently"
        correction = self.correction if self.correction is not None else ("none" if evidently else "bh")
        if correction not in CORRECTIONS:
            raise ValidationError(f"unknown correction {correction!r}; allowed: {', '.join(CORRECTIONS)}",
                                  field="correction", rule="allowed_values")
        min_effect = self.min_effect if self.min_effect is not None else (0.0 if evidently else DEFAULT_MIN_EFFECT)
        return {
            "method": method,
            "alpha": _number(self.alpha, "alpha", 0.0, 1.0, open_low=True),
            "min_effect": _number(min_effect, "min_effect", 0.0, float("inf")),
            "correction": correction,
            "drift_share": _number(self.drift_share, "drift_share", 0.0, 1.0),
            "threshold": _number(self.threshold, "threshold", 0.0, float("inf")),
        }

    def fit(self, reference: Any) -> DriftDetector:
        """Learn the reference: a profile dict, a DriftReference, or a frame (profiled now)."""
        params = self._resolve_params()
        if isinstance(reference, DriftReference):
            ref = reference
        elif isinstance(reference, Mapping) and "format" in reference and "columns" in reference:
            ref = DriftReference.from_profile(reference)
        else:
            wanted = None
            if self.columns is not None:
                wanted = list(self.columns) + ([self.prediction_column] if self.prediction_column else [])
            ref = DriftReference.from_profile(profile_frame(reference, columns=wanted, types=self.types))
        available = [c for c in ref.columns if c != self.prediction_column]
        features = ensure_columns(self.columns, available, "reference profile")
        if self.prediction_column is not None:
            ensure_columns([self.prediction_column], list(ref.columns), "reference profile")
        if isinstance(params["method"], dict):
            ensure_columns(list(params["method"]), list(ref.columns), "reference profile")
        for col in features + ([self.prediction_column] if self.prediction_column else []):
            name = self._method_for(params["method"], col)
            if name not in ("auto", "evidently"):
                self._make_test(name, params).check_applies(ref.columns[col])
        self.reference_ = ref
        self.feature_names_ = features
        self.params_ = params
        return self

    @staticmethod
    def _method_for(method: str | dict[str, str], column: str) -> str:
        return method.get(column, "auto") if isinstance(method, dict) else method

    def _make_test(self, name: str, params: Mapping[str, Any]) -> DriftTest:
        cls = TESTS[name]
        if issubclass(cls, _PValueTest):
            return cls(alpha=params["alpha"], min_effect=params["min_effect"])
        return cls(threshold=params["threshold"])  # type: ignore[call-arg]

    def _score_column(self, ref: ColumnReference, raw: Any) -> FeatureResult:
        params = self.params_
        win = summarize_window(ref, raw)
        name = self._method_for(params["method"], ref.name)
        if name == "evidently":
            return evidently_score(evidently_method(ref, win), ref, win)
        if name == "auto":
            name = auto_method(ref, win)
        return self._make_test(name, params)._evaluate(ref, win)

    def _correct(self, results: list[FeatureResult]) -> list[FeatureResult]:
        params = self.params_
        idx = [i for i, r in enumerate(results) if r.p_value is not None and params["method"] != "evidently"]
        if not idx:
            return results
        adj = adjust_pvalues(np.array([results[i].p_value for i in idx], dtype=np.float64), params["correction"])
        out = list(results)
        for i, pa in zip(idx, adj.tolist(), strict=True):
            r = results[i]
            out[i] = replace(r, p_adjusted=pa, drifted=bool(pa < params["alpha"] and r.effect >= params["min_effect"]))
        return out

    def score(self, current: Any) -> DriftReport:
        """Compare a current window (DataFrame or mapping of columns) with the reference.

        Raises:
            MonitorError: the detector is not fitted.
            ValidationError: an empty window, a reference column missing from
                it, or a column with no usable value.
        """
        ref: DriftReference | None = getattr(self, "reference_", None)
        if ref is None:
            raise MonitorError("DriftDetector is not fitted; call fit(reference) first")
        names = column_names(current)
        n_rows = row_count(current)
        if n_rows == 0:
            raise ValidationError("the current window has no rows", field="current", rule="empty_window")
        needed = self.feature_names_ + ([self.prediction_column] if self.prediction_column else [])
        for col in needed:
            if col not in names:
                raise ValidationError(
                    f"column '{col}' is in the reference profile but missing from the current window",
                    field=col, rule="missing_column",
                )
        refs = [ref.columns[c] for c in self.feature_names_]
        raws = [get_column(current, c) for c in self.feature_names_]
        results = self._correct([self._score_column(r, x) for r, x in zip(refs, raws, strict=True)])
        prediction = None
        if self.prediction_column is not None:
            prediction = self._score_column(ref.columns[self.prediction_column],
                                            get_column(current, self.prediction_column))
        n_drifted = sum(r.drifted for r in results)
        share = n_drifted / len(results) if results else 0.0
        outliers, outlier_share = outlier_shares(refs, raws, n_rows) if self.outliers else ([], None)
        return DriftReport(
            per_feature=results,
            dataset_drift=bool(results) and share >= self.params_["drift_share"],
            drift_share=share,
            n_drifted=n_drifted,
            n_features=len(results),
            n_current_rows=n_rows,
            params={**self.params_, "method": self.params_["method"], "columns": list(self.feature_names_),
                    "prediction_column": self.prediction_column},
            prediction=prediction,
            outliers=outliers,
            outlier_share=outlier_share,
        )
