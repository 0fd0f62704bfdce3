"""The metric catalogue: names, tasks, directions, and their formulas with skip reasons.

A metric that cannot be computed on some rows is *skipped with a reason*
(one class only, no probabilities, too few rows), never reported as 0 or NaN:
a gate must be able to tell "bad" from "not measurable".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.kernel.exceptions import ValidationError

if TYPE_CHECKING:  # numpy loads with the formulas, not with the catalogue (gates read METRICS)
    import numpy as np

__all__ = ["METRICS", "MetricInfo", "check_metric", "higher_is_better", "metrics_for"]


@dataclass(frozen=True)
class MetricInfo:
    """A metric's task, direction and whether it needs class probabilities."""

    name: str
    task: str
    higher_is_better: bool
    needs_proba: bool = False


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("accuracy", "classification", True),
        MetricInfo("precision", "classification", True),
        MetricInfo("recall", "classification", True),
        MetricInfo("f1", "classification", True),
        MetricInfo("roc_auc", "classification", True, needs_proba=True),
        MetricInfo("log_loss", "classification", False, needs_proba=True),
        MetricInfo("mae", "regression", False),
        MetricInfo("rmse", "regression", False),
        MetricInfo("r2", "regression", True),
    )
}
TASKS: tuple[str, ...] = ("classification", "regression")


def metrics_for(task: str) -> tuple[str, ...]:
    """The metric names computed for ``task``."""
    return tuple(name for name, info in METRICS.items() if info.task == task)


def check_metric(name: str, task: str | None = None, *, field: str = "metric") -> MetricInfo:
    """The :class:`MetricInfo` of ``name``; an error names the allowed ones."""
    info = METRICS.get(name)
    if info is None:
        raise ValidationError(
            f"metric {name!r} is unknown; allowed: {', '.join(METRICS)}", field=field, rule="choice"
        )
    if task is not None and info.task != task:
        raise ValidationError(
            f"metric {name!r} is a {info.task} metric, but this is {task}; "
            f"allowed: {', '.join(metrics_for(task))}",
            field=field,
            rule="task",
        )
    return info


def higher_is_better(name: str) -> bool:
    """True for scores (auc, accuracy, f1, r2), False for losses (log_loss, mae, rmse)."""
    return check_metric(name).higher_is_better


def _label(value: Any) -> str:
    import numpy as np

    return repr(value.item() if isinstance(value, np.generic) else value)


def classification_metrics(
    y: np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray | None,
    classes: Sequence[Any],
    positive: Any,
    proba_missing: str,
) -> tuple[dict[str, float], dict[str, str]]:
    """Classification metrics of one set of rows: (values, skip reasons)."""
    import numpy as np
    from sklearn import metrics as m

    values: dict[str, float] = {"accuracy": float(m.accuracy_score(y, pred))}
    skipped: dict[str, str] = {}
    present = set(np.unique(y).tolist())
    binary = len(classes) == 2
    if binary:
        has_true = bool(np.any(y == positive))
        has_pred = bool(np.any(pred == positive))
        kw: dict[str, Any] = {"average": "binary", "pos_label": positive, "zero_division": 0.0}
        if has_pred:
            values["precision"] = float(m.precision_score(y, pred, **kw))
        else:
            skipped["precision"] = f"no row is predicted as the positive label {_label(positive)}"
        if has_true:
            values["recall"] = float(m.recall_score(y, pred, **kw))
        else:
            skipped["recall"] = f"no row has the positive label {_label(positive)}"
        if has_true or has_pred:
            values["f1"] = float(m.f1_score(y, pred, **kw))
        else:
            skipped["f1"] = f"no row has or is predicted as the positive label {_label(positive)}"
    else:
        kw = {"average": "macro", "zero_division": 0.0}
        values["precision"] = float(m.precision_score(y, pred, **kw))
        values["recall"] = float(m.recall_score(y, pred, **kw))
        values["f1"] = float(m.f1_score(y, pred, **kw))

    unseen = sorted(map(str, present - set(np.asarray(classes).tolist())))
    if proba is None:
        skipped["roc_auc"] = skipped["log_loss"] = proba_missing
    elif unseen:
        skipped["roc_auc"] = skipped["log_loss"] = (
            f"labels the model never saw in training: {', '.join(unseen)}"
        )
    else:
        values["log_loss"] = float(m.log_loss(y, proba, labels=list(classes)))
        if binary:
            if len(present) < 2:
                skipped["roc_auc"] = f"needs both classes; these rows hold only {_label(next(iter(present)))}"
            else:
                column = list(classes).index(positive)
                values["roc_auc"] = float(m.roc_auc_score(y == positive, proba[:, column]))
        else:
            missing = [c for c in classes if c not in present]
            if missing:
                skipped["roc_auc"] = (
                    f"one-vs-rest AUC needs every class; missing: {', '.join(_label(c) for c in missing)}"
                )
            else:
                values["roc_auc"] = float(
                    m.roc_auc_score(y, proba, multi_class="ovr", labels=list(classes))
                )
    return values, skipped


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> tuple[dict[str, float], dict[str, str]]:
    """Regression metrics of one set of rows: (values, skip reasons)."""
    import numpy as np
    from sklearn import metrics as m

    values = {
        "mae": float(m.mean_absolute_error(y, pred)),
        "rmse": float(np.sqrt(m.mean_squared_error(y, pred))),
    }
    skipped: dict[str, str] = {}
    if len(y) < 2:
        skipped["r2"] = "needs at least 2 rows"
    else:
        values["r2"] = float(m.r2_score(y, pred))
    return values, skipped
