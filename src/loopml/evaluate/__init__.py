"""Evaluation: metrics of a model overall and per slice, fairness gaps between slices.

Names resolve lazily (:mod:`loopml.kernel.lazy`): the metric catalogue
(``METRICS``, checked when a recipe's gates are parsed) loads without numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.kernel.lazy import lazy_exports

#: public name -> private module that defines it
_HOMES: dict[str, str] = {
    "MISSING_LABEL": "loopml.evaluate._evaluation",
    "Evaluation": "loopml.evaluate._evaluation",
    "SliceMetrics": "loopml.evaluate._evaluation",
    "evaluate": "loopml.evaluate._evaluation",
    "slice_labels": "loopml.evaluate._evaluation",
    "FairnessGap": "loopml.evaluate._fairness",
    "fairness": "loopml.evaluate._fairness",
    "METRICS": "loopml.evaluate._metrics",
    "MetricInfo": "loopml.evaluate._metrics",
    "check_metric": "loopml.evaluate._metrics",
    "higher_is_better": "loopml.evaluate._metrics",
    "metrics_for": "loopml.evaluate._metrics",
}

__all__ = [
    "METRICS",
    "MISSING_LABEL",
    "Evaluation",
    "FairnessGap",
    "MetricInfo",
    "SliceMetrics",
    "check_metric",
    "evaluate",
    "fairness",
    "higher_is_better",
    "metrics_for",
    "slice_labels",
]

__getattr__, __dir__ = lazy_exports(__name__, _HOMES)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from loopml.evaluate._evaluation import MISSING_LABEL, Evaluation, SliceMetrics, evaluate, slice_labels
    from loopml.evaluate._fairness import FairnessGap, fairness
    from loopml.evaluate._metrics import METRICS, MetricInfo, check_metric, higher_is_better, metrics_for
