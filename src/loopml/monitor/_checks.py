"""The monitor's checks, each estimator-shaped: ``fit(reference)`` then ``score(window)``.

``score`` is the policy: it times the check, turns "cannot run" (no profile,
no labels, no rows) into a *skipped* result with the reason, and records the
parameters; each check implements the mechanism in ``_score``. A check never
crashes a monitor run: a data problem it cannot judge is a skip, not an error.
All work is on whole numpy / pandas columns; no per-row Python.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from loopml.kernel.exceptions import LoopmlError, ValidationError
from loopml.monitor._spec import CHECK_DEFAULTS
from loopml.monitor.drift import DriftDetector, DriftReference, FeatureResult
from loopml.monitor.drift._outliers import outlier_shares
from loopml.monitor.drift._report import _clean

__all__ = [
    "CHECKS",
    "CheckResult",
    "DataDriftCheck",
    "HealthCheck",
    "MonitorCheck",
    "MonitorReference",
    "MonitorWindow",
    "OutliersCheck",
    "PerformanceCheck",
    "PredictionDriftCheck",
    "QualityCheck",
    "SchemaCheck",
    "SegmentsCheck",
    "SkipCheck",
]

#: Log column types (DuckDB) -> the families a reference type accepts.
_ACCEPTS = {
    "numeric": {"float", "integer"},
    "categorical": {"string", "integer", "boolean"},
    "boolean": {"boolean", "integer"},
}
_SIG_TYPES = {"int": "numeric", "float": "numeric", "bool": "boolean", "string": "categorical",
              "category": "categorical", "datetime": None}
HIST_BINS = 20
TOP_CATEGORIES = 12


class SkipCheck(Exception):
    """Raised inside a check: it cannot run on this window (the message says why)."""


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict: ``ok``, ``fail`` or ``skipped`` (with ``reason``), its figures and parameters."""

    name: str
    status: str
    metrics: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (NaN becomes null)."""
        return _clean({"name": self.name, "status": self.status, "reason": self.reason, "metrics": self.metrics,
                       "details": self.details, "params": self.params, "duration_s": self.duration_s})


@dataclass
class MonitorReference:
    """What the checks compare against: the reference profile, the contract and the evaluation baseline."""

    model_ref: str | None = None
    profile: dict[str, Any] | None = None
    features: list[str] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)
    contract: dict[str, Any] | None = None
    prediction_column: str | None = None
    evaluation: dict[str, Any] | None = None
    task: str | None = None
    segment_profiles: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    source: str = "model"
    #: Why there is no profile (unknown model, no profile stored ...), for the skips.
    reason: str | None = None

    @classmethod
    def build(cls, *, profile: dict[str, Any] | None, signature: dict[str, Any] | None = None,
              evaluation: dict[str, Any] | None = None, task: str | None = None, model_ref: str | None = None,
              source: str = "model", reason: str | None = None) -> MonitorReference:
        """Derive features, types and the prediction reference column from a profile and a contract."""
        cols: dict[str, Any] = (profile or {}).get("columns", {})
        target = (signature or {}).get("target") or (evaluation or {}).get("target")
        sig_cols: dict[str, Any] = (signature or {}).get("columns") or {}
        pred_col = "prediction" if "prediction" in cols else (target if target in cols else None)
        if sig_cols:
            features = [c for c in sig_cols if c != target]
        else:
            features = [c for c in cols if c not in (target, "prediction") and not c.startswith("proba_")]
        types: dict[str, str] = {}
        for c in features:
            if c in cols:
                types[c] = cols[c]["type"]
            elif c in sig_cols and _SIG_TYPES.get(sig_cols[c].get("type")):
                types[c] = _SIG_TYPES[sig_cols[c]["type"]]  # type: ignore[assignment]
        features = [c for c in features if c in types]
        if task is None and evaluation:
            task = evaluation.get("task")
        return cls(model_ref=model_ref, profile=profile, features=features, types=types, contract=signature,
                   prediction_column=pred_col, evaluation=evaluation, task=task,
                   segment_profiles=dict((profile or {}).get("segments") or {}), source=source, reason=reason)

    def need_profile(self) -> dict[str, Any]:
        if self.profile is None:
            raise SkipCheck(self.reason or "no reference profile")
        return self.profile


@dataclass
class MonitorWindow:
    """The current window: feature columns by feature name (not ``f_``), ``prediction``, service columns."""

    frame: pd.DataFrame
    start: datetime | None
    end: datetime | None
    n_rows: int
    #: Per feature in the log: its type family (float, integer, string, boolean).
    log_types: dict[str, str] = field(default_factory=dict)
    #: Features present in the log schema but without a value in this window.
    empty_columns: set[str] = field(default_factory=set)
    #: All rows, errors included: ts, latency_ms, status, row.
    service: pd.DataFrame | None = None
    #: Lazily loads predictions joined with their labels: request_id, prediction, label, proba_*, features.
    labels_loader: Callable[[], pd.DataFrame] | None = None
    _labels: pd.DataFrame | None = None

    def labelled(self) -> pd.DataFrame:
        """Rows of the window that have a true label (read once, shared by checks)."""
        if self._labels is None:
            if self.labels_loader is None:
                raise SkipCheck("no feedback source for this window")
            df = self.labels_loader()
            self._labels = df[df["label"].notna()] if "label" in df.columns else df.iloc[0:0]
        return self._labels


# ---------------------------------------------------------------- the base


class MonitorCheck:
    """Base: keyword-only parameters, ``fit`` on the reference, ``score`` a window."""

    name: ClassVar[str] = "check"
    _param_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self._param_names))
        if unknown:
            raise ValidationError(f"{self.name} check: unknown parameter {unknown[0]!r}; allowed: "
                                  f"{', '.join(self._param_names) or 'none'}", field=unknown[0], rule="unknown_key")
        defaults = CHECK_DEFAULTS.get(self.name, {})
        for key in self._param_names:
            setattr(self, key, params.get(key, defaults.get(key)))

    def get_params(self) -> dict[str, Any]:
        """The parameters, recorded with every report."""
        return {k: getattr(self, k) for k in self._param_names}

    def fit(self, reference: MonitorReference) -> MonitorCheck:
        """Keep the reference (no recomputation of the profile: it is parsed once here)."""
        self.reference_ = reference
        self._fit(reference)
        return self

    def _fit(self, reference: MonitorReference) -> None:
        return None

    def score(self, window: MonitorWindow) -> CheckResult:
        """Judge ``window``: a skip with its reason when the check cannot run."""
        t0 = time.perf_counter()
        try:
            if window.n_rows == 0 and self.name != "schema":
                raise SkipCheck("no logged rows in the window")
            status, metrics, details = self._score(window)
            reason = None
        except SkipCheck as exc:
            status, metrics, details, reason = "skipped", {}, {}, str(exc)
        except LoopmlError as exc:  # a data problem the check cannot judge: reported, never fatal
            status, metrics, details, reason = "skipped", {}, {}, f"{type(exc).__name__}: {exc}"
        return CheckResult(self.name, status, metrics, details, self.get_params(), reason,
                           round(time.perf_counter() - t0, 4))

    def _score(self, window: MonitorWindow) -> tuple[str, dict[str, Any], dict[str, Any]]:
        raise NotImplementedError


def _compatible(ref_type: str, log_type: str | None) -> bool:
    return log_type is not None and log_type in _ACCEPTS.get(ref_type, set())


def usable_features(reference: MonitorReference, window: MonitorWindow, wanted: Sequence[str] | None = None
                    ) -> tuple[list[str], dict[str, str]]:
    """Features both sides can compare, and why the others are left out."""
    profile_cols = (reference.profile or {}).get("columns", {})
    usable: list[str] = []
    excluded: dict[str, str] = {}
    for col in wanted if wanted is not None else reference.features:
        if col not in profile_cols:
            excluded[col] = "not in the reference profile"
        elif col not in window.log_types:
            excluded[col] = "missing from the prediction log"
        elif col in window.empty_columns:
            excluded[col] = "no value in the window"
        elif not _compatible(profile_cols[col]["type"], window.log_types[col]):
            excluded[col] = f"type changed: reference {profile_cols[col]['type']}, log {window.log_types[col]}"
        else:
            usable.append(col)
    return usable, excluded


# ----------------------------------------------------------- histograms


def histogram(ref: Mapping[str, Any], values: Any) -> dict[str, Any]:
    """Reference vs current shares on shared bins, for the HTML overlays (reference from the profile grid)."""
    if ref["type"] == "numeric":
        x = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        x = x[np.isfinite(x)]
        q = ref["quantiles"]
        lo, hi = float(q["0.01"]), float(q["0.99"])
        if x.size:  # display range only: quantiles of a strided subsample are plenty (no full sort)
            sub = x[:: max(1, x.size // 50_000)]
            lo, hi = min(lo, float(np.quantile(sub, 0.01))), max(hi, float(np.quantile(sub, 0.99)))
        if not hi > lo:
            hi = lo + 1.0
        edges = np.linspace(lo, hi, HIST_BINS + 1)
        grid = np.asarray(ref["edges"], dtype=np.float64)
        cum_lt = np.cumsum(np.asarray(ref["counts"], dtype=np.float64))[:-1]  # ref rows below each grid edge
        ref_cdf = np.interp(edges, grid, cum_lt, left=0.0, right=float(ref["n"]))
        ref_counts = np.diff(ref_cdf)
        # equal-width bins by arithmetic + bincount: np.histogram with explicit edges sorts the column
        idx = np.clip(((x - lo) * (HIST_BINS / (hi - lo))).astype(np.int64), 0, HIST_BINS - 1)
        cur_counts = np.bincount(idx, minlength=HIST_BINS).astype(np.float64)
        return {"type": "numeric", "edges": edges.tolist(),
                "reference": (ref_counts / max(ref_counts.sum(), 1.0)).tolist(),
                "current": (cur_counts / max(cur_counts.sum(), 1.0)).tolist()}
    cats = list(ref.get("categories", []))[:TOP_CATEGORIES]
    rc = np.asarray(ref.get("counts", [])[:TOP_CATEGORIES], dtype=np.float64)
    total_ref = float(ref["n"]) or 1.0
    s = pd.Series(values).dropna()
    vc = s.value_counts()
    keys = {str(k): int(v) for k, v in vc.items()}
    cur = np.asarray([keys.pop(str(c), 0) for c in cats], dtype=np.float64)
    other_cur = float(sum(keys.values()))
    total_cur = float(len(s)) or 1.0
    return {"type": "categorical", "categories": [str(c) for c in cats] + ["(other)"],
            "reference": (rc / total_ref).tolist() + [max(0.0, 1.0 - float(rc.sum()) / total_ref)],
            "current": (cur / total_cur).tolist() + [other_cur / total_cur]}


def _sub_profile(profile: Mapping[str, Any], columns: Mapping[str, str]) -> dict[str, Any]:
    """A profile holding some columns under new names (e.g. the target as ``prediction``)."""
    return {**{k: v for k, v in profile.items() if k != "columns"},
            "columns": {new: profile["columns"][old] for new, old in columns.items()}}


# ---------------------------------------------------------------- checks


class SchemaCheck(MonitorCheck):
    """Missing, new or retyped feature columns between the reference and the prediction log."""

    name = "schema"

    def _score(self, window: MonitorWindow) -> tuple[str, dict[str, Any], dict[str, Any]]:
        ref = self.reference_
        if not ref.features:
            raise SkipCheck(ref.reason or "the reference names no features (no profile and no signature)")
        missing = [c for c in ref.features if c not in window.log_types or c in window.empty_columns]
        new = [c for c in window.log_types if c not in ref.types]
        retyped = [{"column": c, "reference": ref.types[c], "log": window.log_types[c]} for c in ref.features
                   if c in window.log_types and c not in missing and not _compatible(ref.types[c], window.log_types[c])]
        fail = bool(missing or new or retyped)
        return ("fail" if fail else "ok",
                {"n_missing": len(missing), "n_new": len(new), "n_retyped": len(retyped),
                 "n_reference_columns": len(ref.features)},
                {"missing": missing, "new": new, "retyped": retyped})


class DataDriftCheck(MonitorCheck):
    """Per-feature drift with the automatic test choice, and the dataset rule (share of drifted features)."""

    name = "data_drift"
    _param_names = ("method", "alpha", "min_effect", "correction", "drift_share", "threshold", "columns")

    def _fit(self, reference: MonitorReference) -> None:
        self.drift_reference_ = (DriftReference.from_profile(reference.profile)
                                 if reference.profile is not None else None)

    def _score(self, window: MonitorWindow) -> tuple[str, dict[str, Any], dict[str, Any]]:
        profile = self.reference_.need_profile()
        usable, excluded = usable_features(self.reference_, window, self.columns)
        if not usable:
            raise SkipCheck(f"no feature can be compared: {excluded}" if excluded else "no features")
        det = DriftDetector(method=self.method, alpha=self.alpha, min_effect=self.min_effect,
                            correction=self.correction, drift_share=self.drift_share, threshold=self.threshold,
                            columns=usable, outliers=False)
        det.fit(self.drift_reference_)
        report = det.score({c: window.frame[c] for c in usable})
        hists = {c: histogram(profile["columns"][c], window.frame[c]) for c in usable}
        return ("fail" if report.dataset_drift else "ok",
                {"dataset_drift": report.dataset_drift, "drift_share": report.drift_share,
                 "n_drifted": report.n_drifted, "n_features": report.n_features},
                {"drifted_columns": report.drifted_columns, "per_feature": [r.to_dict() for r in report.per_feature],
                 "excluded": excluded, "detector": report.params, "histograms": hists})


class PredictionDriftCheck(MonitorCheck):
    """The output distribution against the reference's (its ``prediction`` column, else the target's)."""

    name = "prediction_drift"
    _param_names = ("method", "alpha", "min_effect", "threshold")

    def _score(self, window: MonitorWindow) -> tuple[str, dict[str, Any], dict[str, Any]]:
        profile = self.reference_.need_profile()
        col = self.reference_.prediction_column
        if col is None:
            raise SkipCheck("the reference profile has neither a 'prediction' nor the target column")
        if "prediction" not in window.frame.columns or window.frame["prediction"].notna().sum() == 0:
            raise SkipCheck("the window has no logged predictions")
        sub = _sub_profile(profile, {"prediction": col})
        det = DriftDetector(method=self.method, alpha=self.alpha, min_effect=self.min_effect, correction="none",
                            threshold=self.threshold, columns=["prediction"], outliers=False).fit(sub)
        res: FeatureResult = det.score({"prediction": window.frame["prediction"]}).per_feature[0]
        return ("fail" if res.drifted else "ok",
                {"drifted": res.drifted, "effect": res.effect, "p_value": res.p_value, "method": res.method},
                {"result": res.to_dict(), "reference_column": col, "detector": det.params_,
                 "histogram": histogram(sub["columns"]["prediction"], window.frame["prediction"])})


def _contract_rules(reference: MonitorReference) -> dict[str, dict[str, Any]]:
    """Per feature: nullable, min, max, categories, from the contract, else what the profile knows for sure."""
    sig_cols: dict[str, Any] = (reference.contract or {}).get("columns") or {}
    prof_cols: dict[str, Any] = (reference.profile or {}).get("columns") or {}
    rules: dict[str, dict[str, Any]] = {}
    for col in reference.features:
        c = sig_cols.get(col, {})
        p = prof_cols.get(col, {})
        rule: dict[str, Any] = {"nullable": c.get("nullable", True), "min": c.get("min"), "max": c.get("max"),
                                "categories": c.get("categories"), "ref_missing_rate": float(p.get("missing_rate", 0.0))}
        if rule["categories"] is None and p.get("type") == "categorical" and p.get("other_count", 1) == 0:
            rule["categories"] = list(p.get("categories", []))  # the profile saw every category
        rules[col] = rule
    return rules


class QualityCheck(MonitorCheck):
    """Missing rate, out-of-range values and unseen categories per feature, against the contract."""

    name = "quality"
    _param_names = ("max_missing_rate", "max_out_of_range_share", "max_unseen_share")

    def _fit(self, reference: MonitorReference) -> None:
        self.rules_ = _contract_rules(reference)

    def _score(self, window: MonitorWindow) -> tuple[str, dict[str, Any], dict[str, Any]]:
        if not self.rules_:
            raise SkipCheck(self.reference_.reason or "no contract and no profile: nothing to check against")
        rows: list[dict[str, Any]] = []
        n = max(window.n_rows, 1)
        for col, rule in self.rules_.items():
            row: dict[str, Any] = {"column": col, "violations": []}
            if col not in window.frame.columns:
                row.update(missing_rate=1.0, missing_limit=None, out_of_range_share=None, unseen_share=None)
                row["violations"].append("missing_column")
                rows.append(row)
                continue
            s = window.frame[col]
            num = pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)
            if num:
                x = s.to_numpy(dtype=np.float64, na_value=np.nan)
                valid = np.isfinite(x)
            else:
                valid = s.notna().to_numpy()
            n_valid = int(valid.sum())
            miss = (n - n_valid) / n
            limit = (0.0 if not rule["nullable"] else rule["ref_missing_rate"]) + float(self.max_missing_rate)
            row.update(missing_rate=miss, missing_limit=limit)
            if miss > limit:
                row["violations"].append("missing_rate")
            oor = None
            if num and (rule["min"] is not None or rule["max"] is not None):
                bad = np.zeros(x.shape, dtype=bool)
                if rule["min"] is not None:
                    bad |= x < float(rule["min"])
                if rule["max"] is not None:
                    bad |= x > float(rule["max"])
                oor = int(bad.sum()) / max(n_valid, 1)
                row.update(min=rule["min"], max=rule["max"])
                if oor > self.max_out_of_range_share:
                    row["violations"].append("out_of_range")
            row["out_of_range_share"] = oor
            unseen = None
            if rule["categories"] is not None and n_valid:
                cats = pd.Series(rule["categories"])
                vals = s[valid]
                known = vals.isin(cats) | vals.astype(str).isin(cats.astype(str))
                n_unseen = int((~known).sum())
                unseen = n_unseen / n_valid
                if n_unseen:
                    top = vals[~known].astype(str).value_counts().head(5)
                    row["unseen_values"] = {str(k): int(v) for k, v in top.items()}
                if unseen > self.max_unseen_share:
                    row["violations"].append("unseen_categories")
            row["unseen_share"] = unseen
            rows.append(row)
        failing = [r["column"] for r in rows if r["violations"]]
        return ("fail" if failing else "ok",
                {"n_columns": len(rows), "n_failing": len(failing),
                 "max_missing_rate": max((r["missing_rate"] for r in rows), default=0.0)},
                {"columns": rows, "failing_columns": failing})


class OutliersCheck(MonitorCheck):
    """Share of rows with a numeric feature outside the reference's [q0.001, q0.999], above what the reference had."""

    name = "outliers"
    _param_names = ("max_share",)

    def _fit(self, reference: MonitorReference) -> None:
        self.drift_reference_ = (DriftReference.from_profile(reference.profile)
                                 if reference.profile is not None else None)

    def _score(self, window: MonitorWindow) -> tuple[str, dict[str, Any], dict[str, Any]]:
        self.reference_.need_profile()
        assert self.drift_reference_ is not None
        usable, _ = usable_features(self.reference_, window)
        refs = [self.drift_reference_.columns[c] for c in usable if self.drift_reference_.columns[c].type == "numeric"]
        if not refs:
            raise SkipCheck("no numeric feature to check")
        results, row_share = outlier_shares(refs, [window.frame[r.name] for r in refs], window.n_rows)
        expected = 1.0 - math.prod(1.0 - r.outlier_share for r in refs)
        excess = (row_share or 0.0) - expected
        worst = sorted(results, key=lambda r: r.share - r.reference_share, reverse=True)
        return ("fail" if excess > self.max_share else "ok",
                {"row_share": row_share, "expected_row_share": expected, "excess": excess},
                {"per_column": [r.to_dict() for r in worst],
                 "columns_over": [r.column for r in worst if r.share - r.reference_share > self.max_share]})


# ------------------------------------------------------------- performance


def _align(y: pd.Series, pred: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions as comparable arrays (numbers when both are numeric, else text)."""
    if pd.api.types.is_numeric_dtype(y.dtype) and pd.api.types.is_numeric_dtype(pred.dtype):
        return y.to_numpy(dtype=np.float64), pred.to_numpy(dtype=np.float64)
    def text(s: pd.Series) -> np.ndarray:
        if pd.api.types.is_float_dtype(s.dtype) and (s.dropna() % 1 == 0).all():
            s = s.astype("Int64")
        return s.astype(str).to_numpy()
    return text(y), text(pred)


def infer_task(reference: MonitorReference, labels: pd.Series) -> str:
    if reference.task in ("classification", "regression"):
        return reference.task
    if pd.api.types.is_float_dtype(labels.dtype) and labels.nunique() > 20:
        return "regression"
    return "classification"


def window_metrics(df: pd.DataFrame, task: str, positive: Any = None) -> dict[str, float]:
    """The model's metrics on labelled rows (``label``, ``prediction``, ``proba_<class>``)."""
    from sklearn import metrics as m

    y, pred = _align(df["label"], df["prediction"])
    if task == "regression":
        out = {"mae": float(m.mean_absolute_error(y, pred)), "rmse": float(np.sqrt(m.mean_squared_error(y, pred)))}
        if len(y) >= 2:
            out["r2"] = float(m.r2_score(y, pred))
        return out
    out = {"accuracy": float(np.mean(y == pred))}
    classes = sorted(set(y.tolist()) | set(pred.tolist()), key=str)
    if len(classes) <= 2:
        pos = positive if positive is not None else (classes[-1] if classes else None)
        if len(y) and not isinstance(pos, type(y[0])):
            try:
                pos = type(y[0])(pos)
            except (TypeError, ValueError):
                pass
        kw: dict[str, Any] = {"average": "binary", "pos_label": pos, "zero_division": 0.0}
        try:
            out.update(precision=float(m.precision_score(y, pred, **kw)), recall=float(m.recall_score(y, pred, **kw)),
                       f1=float(m.f1_score(y, pred, **kw)))
        except ValueError:
            pass
        pcol = f"proba_{pos}" if f"proba_{pos}" in df.columns else None
        if pcol is None and isinstance(pos, float) and pos.is_integer() and f"proba_{int(pos)}" in df.columns:
            pcol = f"proba_{int(pos)}"
        if pcol is not None and len(set(y.tolist())) == 2:
            p = df[pcol].to_numpy(dtype=np.float64)
            ok = np.isfinite(p)
            if ok.all():
                out["roc_auc"] = float(m.roc_auc_score(y == pos, p))
    else:
        kw = {"average": "macro", "zero_division": 0.0}
        out.update(precision=float(m.precision_score(y, pred, **kw)), recall=float(m.recall_score(y, pred, **kw)),
                   f1=float(m.f1_score(y, pred, **kw)))
    return out


def _drop(metric: str, baseline: float, current: float) -> float:
    """How much worse ``current`` is than ``baseline`` (positive = worse), whatever the metric's direction."""
    from loopml.evaluate import higher_is_better

    return baseline - current if higher_is_better(metric) else current - baseline


class PerformanceCheck(MonitorCheck):
    """The model's metric on the window's labelled rows against its evaluation baseline (concept drift)."""

    name = "performance"
    _param_names = ("metric", "max_drop", "min_labels")

    def _score(self, window: MonitorWindow) -> tuple[str, dict[str, Any], dict[str, Any]]:
        lab = window.labelled()
        n_lab = len(lab)
        if n_lab < self.min_labels:
            raise SkipCheck(f"only {n_lab} labelled rows in the window; the check needs min_labels={self.min_labels}")
        ref = self.reference_
        task = infer_task(ref, lab["label"])
        metric = self.metric or ("accuracy" if task == "classification" else "rmse")
        positive = (ref.evaluation or {}).get("positive_label")
        values = window_metrics(lab, task, positive)
        if metric not in values:
            raise SkipCheck(f"metric {metric!r} cannot be computed on this window (task {task}); "
                            f"computed: {', '.join(values)}")
        baseline = ((ref.evaluation or {}).get("metrics") or {}).get(metric)
        metrics: dict[str, Any] = {"metric": metric, "value": values[metric], "baseline": baseline,
                                   "n_labelled": n_lab, "n_rows": window.n_rows,
                                   "label_coverage": n_lab / max(window.n_rows, 1)}
        details = {"metrics": values, "task": task, "baseline_metrics": (ref.evaluation or {}).get("metrics")}
        if baseline is None:
            details["note"] = f"the model version has no evaluation baseline for {metric!r}; no drop computed"
            return "ok", metrics, details
        drop = _drop(metric, float(baseline), values[metric])
        metrics["drop"] = drop
        return ("fail" if drop > self.max_drop else "ok"), metrics, details


class SegmentsCheck(MonitorCheck):
    """Drift and performance per value of named columns (top segments with at least ``min_rows`` rows).

    A segment is compared with its own reference profile when the reference has
    one (``profile["segments"][column][value]``, or a pinned-window reference),
    else with the overall reference, which the details say.
    """

    name = "segments"
    _param_names = ("columns", "min_rows", "max_segments", "metric", "max_drop", "min_labels", "drift_share", "alpha")

    def _score(self, window: MonitorWindow) -> tuple[str, dict[str, Any], dict[str, Any]]:
        ref = self.reference_
        profile = ref.need_profile()
        overall = DriftReference.from_profile(profile)
        usable_all, _ = usable_features(ref, window)
        try:
            lab = window.labelled()
        except SkipCheck:
            lab = None
        task = infer_task(ref, lab["label"]) if lab is not None and len(lab) else None
        metric = self.metric or ("accuracy" if task == "classification" else "rmse")
        baseline = ((ref.evaluation or {}).get("metrics") or {}).get(metric)
        out: list[dict[str, Any]] = []
        missing_cols: list[str] = []
        for col in self.columns:
            if col not in window.frame.columns:
                missing_cols.append(col)
                continue
            key = window.frame[col].astype(str)
            counts = key.value_counts()
            ref_col = profile["columns"].get(col, {})
            ref_share = {}
            if ref_col.get("type") in ("categorical", "boolean"):
                ref_share = {str(k): c / max(ref_col["n"], 1) for k, c in
                             zip(ref_col["categories"], ref_col["counts"], strict=False)}
            feats = [c for c in usable_all if c != col]
            for value, n_seg in counts.head(self.max_segments).items():
                seg: dict[str, Any] = {"column": col, "value": value, "n_rows": int(n_seg),
                                       "share": int(n_seg) / window.n_rows, "reference_share": ref_share.get(value)}
                if n_seg < self.min_rows:
                    seg["drift_skipped"] = f"{int(n_seg)} rows < min_rows={self.min_rows}"
                elif feats:
                    own = ref.segment_profiles.get(col, {}).get(value)
                    seg_ref = DriftReference.from_profile(own) if own else overall
                    seg["reference"] = "segment" if own else "overall"
                    mask = (key == value).to_numpy()
                    det = DriftDetector(alpha=self.alpha, drift_share=self.drift_share,
                                        columns=[c for c in feats if c in seg_ref.columns], outliers=False)
                    try:
                        rep = det.fit(seg_ref).score({c: window.frame[c][mask] for c in det.columns})  # type: ignore[union-attr]
                        seg.update(dataset_drift=rep.dataset_drift, drift_share=rep.drift_share,
                                   drifted_columns=rep.drifted_columns)
                    except LoopmlError as exc:
                        seg["drift_skipped"] = str(exc)
                if lab is not None and col in lab.columns:
                    sl = lab[lab[col].astype(str) == value]
                    seg["n_labelled"] = len(sl)
                    if len(sl) >= self.min_labels and task is not None:
                        vals = window_metrics(sl, task, (ref.evaluation or {}).get("positive_label"))
                        if metric in vals:
                            seg["metric"], seg["metric_value"] = metric, vals[metric]
                            if baseline is not None:
                                seg["drop"] = _drop(metric, float(baseline), vals[metric])
                    else:
                        seg["performance_skipped"] = f"{len(sl)} labelled rows < min_labels={self.min_labels}"
                seg["fail_on"] = [why for why, failed in (("drift", bool(seg.get("dataset_drift"))),
                                                          ("performance", seg.get("drop", 0.0) > self.max_drop))
                                  if failed]
                seg["fail"] = bool(seg["fail_on"])
                out.append(seg)
        if not out:
            raise SkipCheck(f"segment columns not in the window: {', '.join(missing_cols)}")
        failing = [f"{s['column']}={s['value']}" for s in out if s["fail"]]
        return ("fail" if failing else "ok",
                {"n_segments": len(out), "n_failing": len(failing)},
                {"segments": out, "failing": failing, "missing_columns": missing_cols,
                 # A segment the model gets wrong is the service degrading, not the data moving.
                 "degraded": any("performance" in s["fail_on"] for s in out)})


class HealthCheck(MonitorCheck):
    """Latency percentiles, error rate and throughput from the prediction log (per request)."""

    name = "health"
    _param_names = ("latency_p95_max_ms", "error_rate_max")

    def _score(self, window: MonitorWindow) -> tuple[str, dict[str, Any], dict[str, Any]]:
        svc = window.service
        if svc is None or len(svc) == 0:
            raise SkipCheck("no logged requests in the window")
        first = svc["row"].to_numpy() == 0 if "row" in svc.columns else np.ones(len(svc), dtype=bool)
        lat = svc["latency_ms"].to_numpy(dtype=np.float64, na_value=np.nan)[first]
        lat = lat[np.isfinite(lat)]
        status = svc["status"].to_numpy(dtype=np.float64, na_value=np.nan)[first]
        n_req = int(first.sum())
        n_err = int(np.count_nonzero(status >= 400))
        ts = svc["ts"]
        t_lo, t_hi = ts.min(), ts.max()
        start = window.start or t_lo
        end = window.end or t_hi
        minutes = max((end - start).total_seconds() / 60.0, 1.0 / 60.0)
        minute_idx = ((ts - t_lo).dt.total_seconds().to_numpy() // 60).astype(np.int64)
        peak = int(np.bincount(minute_idx).max()) if len(minute_idx) else 0
        p50, p95, p99 = (np.percentile(lat, [50, 95, 99]).tolist() if lat.size else [None, None, None])
        metrics = {"n_requests": n_req, "n_rows": len(svc), "n_errors": n_err,
                   "error_rate": n_err / max(n_req, 1), "latency_p50_ms": p50, "latency_p95_ms": p95,
                   "latency_p99_ms": p99, "latency_mean_ms": float(lat.mean()) if lat.size else None,
                   "throughput_per_min": len(svc) / minutes, "peak_rows_per_min": peak}
        breaches = []
        if self.latency_p95_max_ms is not None and p95 is not None and p95 > self.latency_p95_max_ms:
            breaches.append(f"latency p95 {p95:.1f} ms > {self.latency_p95_max_ms} ms")
        if metrics["error_rate"] > self.error_rate_max:
            breaches.append(f"error rate {metrics['error_rate']:.2%} > {self.error_rate_max:.2%}")
        return ("fail" if breaches else "ok"), metrics, {"breaches": breaches}


#: Check name -> class.
CHECKS: dict[str, type[MonitorCheck]] = {
    c.name: c for c in (SchemaCheck, DataDriftCheck, PredictionDriftCheck, QualityCheck, OutliersCheck,
                        PerformanceCheck, SegmentsCheck, HealthCheck)
}
