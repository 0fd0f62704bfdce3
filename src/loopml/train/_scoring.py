"""The validation metric a search optimises (the same names as ``loopml.evaluate``).

Train sits below evaluate in the layers, so the few formulas a search needs
live here too; ``loopml.evaluate`` is the full report (slices, skips).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from loopml.kernel.exceptions import ValidationError

__all__ = ["SEARCH_METRICS", "metric_direction", "score"]

# name -> (task, direction)
SEARCH_METRICS: dict[str, tuple[str, str]] = {
    "accuracy": ("classification", "maximize"),
    "f1": ("classification", "maximize"),
    "precision": ("classification", "maximize"),
    "recall": ("classification", "maximize"),
    "roc_auc": ("classification", "maximize"),
    "log_loss": ("classification", "minimize"),
    "mae": ("regression", "minimize"),
    "rmse": ("regression", "minimize"),
    "r2": ("regression", "maximize"),
}


def metric_direction(metric: str) -> str:
    """``"maximize"`` or ``"minimize"`` for a known metric name."""
    if metric not in SEARCH_METRICS:
        raise ValidationError(
            f"metric {metric!r} is unknown; allowed: {', '.join(SEARCH_METRICS)}",
            field="metric",
            rule="choice",
        )
    return SEARCH_METRICS[metric][1]


def check_metric(metric: str, task: str) -> None:
    """The metric exists and fits the task."""
    metric_direction(metric)
    metric_task = SEARCH_METRICS[metric][0]
    if metric_task != task:
        allowed = [m for m, (t, _) in SEARCH_METRICS.items() if t == task]
        raise ValidationError(
            f"metric {metric!r} is a {metric_task} metric but the task is {task}; "
            f"allowed: {', '.join(allowed)}",
            field="metric",
            rule="task",
        )


def score(model: Any, df: pd.DataFrame, target: str, metric: str, positive_label: Any = None) -> float:
    """``metric`` of a ``TrainedModel`` on ``df`` (binary: positive = the second class by default)."""
    from sklearn import metrics as m

    y = df[target].to_numpy()
    classes = None if model.classes is None else list(model.classes)
    binary = classes is not None and len(classes) == 2
    if binary and positive_label is not None:
        if positive_label not in classes:  # type: ignore[operator]
            raise ValidationError(
                f"positive_label {positive_label!r} is not a class; classes: {classes!r}",
                field="positive_label",
                rule="choice",
            )
        # Put the positive class second; the proba column follows it.
        classes = [c for c in classes if c != positive_label] + [positive_label]  # type: ignore[union-attr]
    if metric in ("roc_auc", "log_loss"):
        proba = model.predict_proba(df)
        if metric == "log_loss":
            return float(m.log_loss(y, proba, labels=list(model.classes)))
        if binary:
            column = list(model.classes).index(classes[1])  # type: ignore[index]
            return float(m.roc_auc_score(y == classes[1], proba[:, column]))
        return float(m.roc_auc_score(y, proba, multi_class="ovr", labels=classes))
    pred = model.predict(df)
    fns: dict[str, Callable[[], float]] = {
        "accuracy": lambda: m.accuracy_score(y, pred),
        "mae": lambda: m.mean_absolute_error(y, pred),
        "rmse": lambda: float(np.sqrt(m.mean_squared_error(y, pred))),
        "r2": lambda: m.r2_score(y, pred),
    }
    if metric in fns:
        return float(fns[metric]())
    kw: dict[str, Any] = {"zero_division": 0.0}
    if binary:
        kw.update(average="binary", pos_label=classes[1])  # type: ignore[index]
    else:
        kw.update(average="macro")
    fn = {"f1": m.f1_score, "precision": m.precision_score, "recall": m.recall_score}[metric]
    return float(fn(y, pred, **kw))
