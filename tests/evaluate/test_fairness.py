"""fairness: the spread of a metric across the slices of a sensitive column."""

from __future__ import annotations

import pytest

from loopml.evaluate import Evaluation, SliceMetrics, fairness
from loopml.kernel.exceptions import NotFoundError, ValidationError


def _evaluation() -> Evaluation:
    seasons = (
        SliceMetrics("season", "summer", 40, {"recall": 0.9, "accuracy": 0.8}),
        SliceMetrics("season", "winter", 35, {"recall": 0.75, "accuracy": 0.8}),
        SliceMetrics("season", "spring", 4, {}, {"recall": "only 4 rows, fewer than min_slice_size=10"}),
    )
    return Evaluation("classification", "y", 79, {"recall": 0.83}, slices={"season": seasons})


def test_gap_is_max_minus_min_over_evaluated_slices() -> None:
    gap = fairness(_evaluation(), "season", "recall")
    assert gap.gap == pytest.approx(0.15)
    assert gap.ratio == pytest.approx(0.75 / 0.9)
    assert (gap.highest, gap.lowest) == ("summer", "winter")
    assert gap.skipped == {"spring": "only 4 rows, fewer than min_slice_size=10"}
    assert fairness(_evaluation(), "season", "accuracy").gap == 0.0


def test_gap_needs_two_slices() -> None:
    ev = Evaluation(
        "classification", "y", 40, {}, slices={"season": (SliceMetrics("season", "summer", 40, {"recall": 0.9}),)}
    )
    gap = fairness(ev, "season", "recall")
    assert gap.gap is None
    assert gap.reason == "needs recall on at least 2 slices of 'season'; it was computed on 1"


def test_unknown_column_or_metric() -> None:
    with pytest.raises(NotFoundError, match=r"no slices of column 'region' were evaluated; sliced columns: season"):
        fairness(_evaluation(), "region", "recall")
    with pytest.raises(ValidationError, match=r"metric 'mae' is a regression metric, but this is classification"):
        fairness(_evaluation(), "season", "mae")
