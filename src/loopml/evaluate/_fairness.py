"""Fairness as the spread of one metric across the slices of a sensitive column."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loopml.evaluate._evaluation import Evaluation
from loopml.evaluate._metrics import check_metric

__all__ = ["FairnessGap", "fairness"]


@dataclass(frozen=True)
class FairnessGap:
    """The largest difference (and the ratio lowest/highest) of ``metric`` between slices.

    ``gap`` is None, with ``reason``, when fewer than two slices have the
    metric (too small, or a single class); skipped slices are in ``skipped``.
    """

    column: str
    metric: str
    gap: float | None
    ratio: float | None
    highest: str | None
    lowest: str | None
    values: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "column": self.column,
            "metric": self.metric,
            "gap": self.gap,
            "ratio": self.ratio,
            "highest": self.highest,
            "lowest": self.lowest,
            "values": dict(self.values),
            "skipped": dict(self.skipped),
            "reason": self.reason,
        }


def fairness(evaluation: Evaluation, sensitive: str, metric: str) -> FairnessGap:
    """How far apart ``metric`` lies across the slices of ``sensitive`` (max - min).

    ``sensitive`` must be one of the columns ``evaluate`` sliced on.

    Raises:
        ValidationError: an unknown metric, or one of the other task.
        NotFoundError: ``sensitive`` was not sliced.
    """
    check_metric(metric, evaluation.task)
    values = evaluation.slice_values(sensitive, metric)
    skipped = evaluation.slice_skips(sensitive, metric)
    if len(values) < 2:
        return FairnessGap(
            sensitive,
            metric,
            None,
            None,
            None,
            None,
            values,
            skipped,
            reason=f"needs {metric} on at least 2 slices of {sensitive!r}; it was computed on {len(values)}",
        )
    highest = max(values, key=values.__getitem__)
    lowest = min(values, key=values.__getitem__)
    hi, lo = values[highest], values[lowest]
    ratio = (lo / hi) if hi > 0 and lo >= 0 else None
    return FairnessGap(sensitive, metric, hi - lo, ratio, highest, lowest, values, skipped)
