"""Evaluation: metrics of a model overall and per slice, fairness gaps between slices."""

from loopml.evaluate._evaluation import MISSING_LABEL, Evaluation, SliceMetrics, evaluate, slice_labels
from loopml.evaluate._fairness import FairnessGap, fairness
from loopml.evaluate._metrics import METRICS, MetricInfo, check_metric, higher_is_better, metrics_for

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
