"""``evaluate``: a model's metrics on a frame, overall and per slice."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pandas is imported where a frame is handled: reading a stored record must not pay for it
    import pandas as pd

from loopml.evaluate._metrics import (
    METRICS,
    TASKS,
    check_metric,
    classification_metrics,
    regression_metrics,
)
from loopml.kernel.exceptions import NotFoundError, ValidationError

__all__ = ["MISSING_LABEL", "Evaluation", "SliceMetrics", "evaluate", "slice_labels"]

MISSING_LABEL = "<missing>"
# Numeric columns with at most this many distinct values are sliced by value.
_MAX_DISCRETE = 10


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def _ordered(values: Mapping[str, float]) -> dict[str, float]:
    """Metrics in catalogue order, so reports read the same every time."""
    return {name: values[name] for name in METRICS if name in values}


@dataclass(frozen=True)
class SliceMetrics:
    """The metrics of the rows where ``column`` has ``label``; ``skipped`` says why any are absent."""

    column: str
    label: str
    n_rows: int
    metrics: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "column": self.column,
            "label": self.label,
            "n_rows": self.n_rows,
            "metrics": _jsonable(self.metrics),
            "skipped": dict(self.skipped),
        }


@dataclass(frozen=True)
class Evaluation:
    """Metrics of one model on one frame: overall, and per slice of each named column.

    ``data_digest`` fingerprints the evaluated frame, so a comparison of a
    candidate with a champion can check both saw the same rows.
    """

    task: str
    target: str
    n_rows: int
    metrics: dict[str, float]
    skipped: dict[str, str] = field(default_factory=dict)
    slices: dict[str, tuple[SliceMetrics, ...]] = field(default_factory=dict)
    classes: tuple[Any, ...] | None = None
    positive_label: Any = None
    min_slice_size: int = 10
    data_digest: str | None = None

    def _slice(self, column: str) -> tuple[SliceMetrics, ...]:
        if column not in self.slices:
            known = ", ".join(self.slices) or "none"
            raise NotFoundError(f"no slices of column {column!r} were evaluated; sliced columns: {known}")
        return self.slices[column]

    def slice_metrics(self, column: str) -> tuple[SliceMetrics, ...]:
        """Every slice of ``column`` (including skipped ones)."""
        return self._slice(column)

    def slice_values(self, column: str, metric: str) -> dict[str, float]:
        """``metric`` per slice label of ``column``, for slices where it was computed."""
        check_metric(metric, self.task)
        return {s.label: s.metrics[metric] for s in self._slice(column) if metric in s.metrics}

    def slice_skips(self, column: str, metric: str) -> dict[str, str]:
        """Why ``metric`` is absent, per slice label of ``column``."""
        check_metric(metric, self.task)
        return {s.label: s.skipped[metric] for s in self._slice(column) if metric in s.skipped}

    def metric(self, name: str, slice: str | tuple[str, str] | None = None) -> float:  # noqa: A002
        """One metric value, overall or for one slice (``"season=summer"`` or ``("season", "summer")``).

        Raises:
            ValidationError: an unknown metric name, or one of the other task.
            NotFoundError: an unknown slice, or a metric skipped there (with its reason).
        """
        check_metric(name, self.task)
        if slice is None:
            if name not in self.metrics:
                reason = self.skipped.get(name, "not computed")
                raise NotFoundError(f"metric {name!r} was not computed: {reason}")
            return self.metrics[name]
        if isinstance(slice, str):
            if "=" not in slice:
                raise ValidationError(
                    f"slice {slice!r} must be 'column=label' (e.g. 'season=summer')", field="slice", rule="format"
                )
            column, label = slice.split("=", 1)
        else:
            column, label = slice
        for s in self._slice(column):
            if s.label == label:
                if name not in s.metrics:
                    raise NotFoundError(
                        f"metric {name!r} was not computed for slice {column}={label}: "
                        f"{s.skipped.get(name, 'not computed')}"
                    )
                return s.metrics[name]
        labels = ", ".join(s.label for s in self._slice(column))
        raise NotFoundError(f"column {column!r} has no slice {label!r}; slices: {labels}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (NaN and infinities become null)."""
        return {
            "task": self.task,
            "target": self.target,
            "n_rows": self.n_rows,
            "metrics": _jsonable(self.metrics),
            "skipped": dict(self.skipped),
            "slices": {col: [s.to_dict() for s in parts] for col, parts in self.slices.items()},
            "classes": None if self.classes is None else _jsonable(list(self.classes)),
            "positive_label": _jsonable(self.positive_label),
            "min_slice_size": self.min_slice_size,
            "data_digest": self.data_digest,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        """The inverse of :meth:`to_dict` (e.g. an evaluation stored on a model version)."""
        try:
            return cls(
                task=data["task"],
                target=data["target"],
                n_rows=int(data["n_rows"]),
                metrics={k: float(v) for k, v in data["metrics"].items() if v is not None},
                skipped=dict(data.get("skipped", {})),
                slices={
                    col: tuple(
                        SliceMetrics(
                            column=s["column"],
                            label=s["label"],
                            n_rows=int(s["n_rows"]),
                            metrics={k: float(v) for k, v in s["metrics"].items() if v is not None},
                            skipped=dict(s.get("skipped", {})),
                        )
                        for s in parts
                    )
                    for col, parts in data.get("slices", {}).items()
                },
                classes=None if data.get("classes") is None else tuple(data["classes"]),
                positive_label=data.get("positive_label"),
                min_slice_size=int(data.get("min_slice_size", 10)),
                data_digest=data.get("data_digest"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValidationError(
                f"not an evaluation record: {type(exc).__name__}: {exc}", field="evaluation", rule="format"
            ) from exc


def _digest(df: pd.DataFrame) -> str:
    """A fingerprint of the frame's columns, index and values."""
    import pandas as pd

    h = hashlib.sha256("\x1f".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes())
    return h.hexdigest()[:32]


def _fmt(value: float, digits: int) -> str:
    return f"{value:.{digits}g}"


def _bin_labels(edges: np.ndarray) -> list[str]:
    """Readable interval labels ``[a, b]``, ``(b, c]`` ... precise enough to be distinct."""
    for digits in range(3, 13):
        labels = [
            f"{'[' if i == 0 else '('}{_fmt(lo, digits)}, {_fmt(hi, digits)}]"
            for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True))
        ]
        if len(set(labels)) == len(labels):
            return labels
    return labels


def _value_label(value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def slice_labels(column: pd.Series, bins: int = 4) -> tuple[pd.Series, list[str]]:
    """A label per row and the labels in display order.

    Numeric columns with more than 10 distinct values fall into ``bins``
    quantile bins (``"[0.5, 3.2]"``, ``"(3.2, 7.9]"``, ...); anything else is
    sliced by value. Missing values form their own slice, ``<missing>``.
    """
    import pandas as pd

    s = column
    missing = s.isna()
    numeric = pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)
    if numeric and s.nunique() > _MAX_DISCRETE:
        values = s.astype(float)
        edges = np.unique(np.nanquantile(values.to_numpy(), np.linspace(0, 1, bins + 1)))
        names = _bin_labels(edges)
        codes = pd.cut(values, edges, include_lowest=True, labels=False)
        labels = pd.Series(
            [MISSING_LABEL if pd.isna(c) else names[int(c)] for c in codes], index=s.index, dtype=object
        )
        order = [n for n in names if (labels == n).any()]
    else:
        labels = pd.Series(
            [MISSING_LABEL if m else _value_label(v) for v, m in zip(s, missing, strict=True)],
            index=s.index,
            dtype=object,
        )
        present = s[~missing]
        # Categorical columns keep their declared order; others sort by value.
        if isinstance(s.dtype, pd.CategoricalDtype):
            uniques = [c for c in s.cat.categories if (present == c).any()]
        else:
            try:
                uniques = sorted(pd.unique(present))
            except TypeError:  # mixed types
                uniques = sorted(pd.unique(present), key=str)
        order = list(dict.fromkeys(_value_label(v) for v in uniques))
    if missing.any():
        order.append(MISSING_LABEL)
    return labels, order


def _features(model: Any, df: pd.DataFrame, target: str) -> pd.DataFrame:
    """The columns the model was fitted on (by ``features`` or ``feature_names_in_``)."""
    names = getattr(model, "features", None)
    if names is None:
        names = getattr(model, "feature_names_in_", None)
    if names is None:
        return df.drop(columns=[target])
    names = [str(n) for n in names]
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise ValidationError(
            f"the frame lacks the model's feature columns {missing!r}", field="df", rule="column"
        )
    return df[names]


def _positive(classes: Sequence[Any], positive_label: Any) -> Any:
    if len(classes) != 2:
        return None
    if positive_label is None:
        return classes[1]
    if positive_label not in list(classes):
        raise ValidationError(
            f"positive_label {positive_label!r} is not a class; classes: {list(classes)!r}",
            field="positive_label",
            rule="choice",
        )
    return positive_label


def evaluate(
    model: Any,
    df: pd.DataFrame,
    *,
    target: str,
    task: str,
    slices: Sequence[str] = (),
    positive_label: Any = None,
    min_slice_size: int = 10,
    bins: int = 4,
) -> Evaluation:
    """Metrics of ``model`` on ``df``, overall and per slice of each column in ``slices``.

    ``model`` is anything with ``predict`` (and ``predict_proba`` for AUC and
    log loss): a fitted scikit-learn estimator or pipeline, or a
    ``TrainedModel``. The binary positive class defaults to the second of the
    model's classes (1, True, "yes" ...). A slice smaller than
    ``min_slice_size`` rows gets no metrics, only a skip reason.

    Raises:
        ValidationError: an unknown task, a missing column, a missing target
            value, or a positive label that is not a class.
    """
    import pandas as pd

    if task not in TASKS:
        raise ValidationError(f"task {task!r} is unknown; allowed: {', '.join(TASKS)}", field="task", rule="choice")
    if not isinstance(df, pd.DataFrame) or len(df) == 0:
        raise ValidationError("evaluate needs a non-empty pandas DataFrame", field="df", rule="non_empty")
    if isinstance(slices, str):
        slices = [slices]
    for col in (target, *slices):
        if col not in df.columns:
            what = "target" if col == target else "slice column"
            raise ValidationError(
                f"{what} {col!r} is not a column; columns: {', '.join(map(str, df.columns))}",
                field="target" if col == target else "slices",
                rule="column",
            )
    if not isinstance(min_slice_size, int) or min_slice_size < 1:
        raise ValidationError(
            f"min_slice_size must be a positive integer; got {min_slice_size!r}", field="min_slice_size", rule="range"
        )
    if not isinstance(bins, int) or bins < 1:
        raise ValidationError(f"bins must be a positive integer; got {bins!r}", field="bins", rule="range")
    y_series = df[target]
    if y_series.isna().any():
        raise ValidationError(
            f"target {target!r} has {int(y_series.isna().sum())} missing values; drop those rows first",
            field="target",
            rule="not_null",
        )
    X = _features(model, df, target)
    y = y_series.to_numpy()
    pred = np.asarray(model.predict(X))
    classes: tuple[Any, ...] | None = None
    positive = None
    proba = None
    proba_missing = ""
    if task == "classification":
        found = getattr(model, "classes_", None)
        raw = list(found) if found is not None else sorted(set(y.tolist()) | set(pred.tolist()), key=str)
        classes = tuple(c.item() if isinstance(c, np.generic) else c for c in raw)
        positive = _positive(classes, positive_label)
        if hasattr(model, "predict_proba") and found is not None:
            proba = np.asarray(model.predict_proba(X))
        else:
            proba_missing = "the model has no predict_proba (or no classes_)"

    def compute(mask: np.ndarray | None) -> tuple[dict[str, float], dict[str, str]]:
        yy, pp = (y, pred) if mask is None else (y[mask], pred[mask])
        if task == "regression":
            values, skipped = regression_metrics(yy.astype(float), pp.astype(float))
        else:
            pr = None if proba is None else (proba if mask is None else proba[mask])
            values, skipped = classification_metrics(yy, pp, pr, classes or (), positive, proba_missing)
        return _ordered(values), {k: skipped[k] for k in METRICS if k in skipped}

    overall, overall_skipped = compute(None)
    sliced: dict[str, tuple[SliceMetrics, ...]] = {}
    for col in dict.fromkeys(slices):
        labels, order = slice_labels(df[col], bins)
        parts = []
        for label in order:
            mask = (labels == label).to_numpy()
            n = int(mask.sum())
            if n < min_slice_size:
                reason = f"only {n} rows, fewer than min_slice_size={min_slice_size}"
                names = [k for k in METRICS if k in overall or k in overall_skipped]
                parts.append(SliceMetrics(col, label, n, {}, {k: reason for k in names}))
                continue
            values, skipped = compute(mask)
            parts.append(SliceMetrics(col, label, n, values, skipped))
        sliced[col] = tuple(parts)
    return Evaluation(
        task=task,
        target=target,
        n_rows=len(df),
        metrics=overall,
        skipped=overall_skipped,
        slices=sliced,
        classes=classes,
        positive_label=positive,
        min_slice_size=min_slice_size,
        data_digest=_digest(df),
    )
