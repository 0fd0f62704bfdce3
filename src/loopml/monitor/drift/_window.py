"""One pass over a current-window column, aligned with its reference column.

Every test of a column reads the same :class:`ColumnWindow`, so a window is
binned once however many tests look at it: numeric values are counted in the
reference's fine quantile cells (one sort, then a ``searchsorted`` of the edges), with
the exact mass beyond the reference range kept for Wasserstein; categorical
values are counted per reference category, unseen ones pooled as "other".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from loopml.kernel.exceptions import ValidationError
from loopml.monitor.drift._columns import category_counts, numeric_values
from loopml.monitor.drift._refprofile import ColumnReference

__all__ = ["ColumnWindow", "summarize_window"]


@dataclass
class ColumnWindow:
    """A current-window column reduced to what the tests need."""

    name: str
    n: int
    n_missing: int
    values: np.ndarray | None = None  # finite numeric values (numeric columns)
    bin_counts: np.ndarray | None = None  # counts in the reference cells (numeric)
    left_tail: float = 0.0  # sum of (ref_min - x) over x below the reference minimum
    right_tail: float = 0.0  # sum of (x - ref_max) over x above the reference maximum
    counts: np.ndarray | None = None  # per reference category + "other" (categorical)
    keys: list[Any] | None = None  # distinct current keys (categorical)
    key_counts: np.ndarray | None = None
    n_new_keys: int = 0  # distinct current keys absent from the reference categories
    new_counts: np.ndarray | None = None  # counts of those keys, one cell each

    @property
    def missing_rate(self) -> float:
        """Share of current rows that were missing."""
        total = self.n + self.n_missing
        return self.n_missing / total if total else 0.0

    @cached_property
    def unique_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct numeric values and their counts (a sort; only for discrete columns)."""
        assert self.values is not None
        return np.unique(self.values, return_counts=True)


def summarize_window(ref: ColumnReference, raw: Any) -> ColumnWindow:
    """Reduce one current column against its reference column.

    Raises:
        ValidationError: the column has no usable value (rule ``all_missing``).
    """
    if ref.type == "numeric":
        vals, n_missing = numeric_values(raw, ref.name)
        if vals.size == 0:
            raise ValidationError(
                f"column '{ref.name}' has no finite value in the current window (all {n_missing} missing)",
                field=ref.name, rule="all_missing",
            )
        assert ref.edges is not None
        m = ref.edges.size
        # Sort the window once: the cell counts are then m binary searches (not one per value),
        # the tails are slices, and the tests that sort again (KS, W1, unique counts) get sorted input.
        vals = np.sort(vals)
        below_edge = np.searchsorted(vals, ref.edges, side="left")  # values strictly below each edge
        bins = np.diff(below_edge, prepend=0, append=vals.size)
        left = right = 0.0
        if bins[0]:
            left = float(np.sum(ref.edges[0] - vals[: below_edge[0]]))
        if bins[m] > 0 and vals[-1] > ref.edges[-1]:
            above = vals[np.searchsorted(vals, ref.edges[-1], side="right"):]
            right = float(np.sum(above - ref.edges[-1]))
        return ColumnWindow(ref.name, int(vals.size), n_missing, values=vals, bin_counts=bins,
                            left_tail=left, right_tail=right)
    keys, kcounts, n_missing = category_counts(raw)
    if ref.type == "boolean":
        keys = [bool(k) if isinstance(k, (bool, int, np.bool_)) else k for k in keys]
    n = int(kcounts.sum())
    if n == 0:
        raise ValidationError(
            f"column '{ref.name}' has no value in the current window (all {n_missing} missing)",
            field=ref.name, rule="all_missing",
        )
    k = len(ref.categories)
    counts = np.zeros(k + 1, dtype=np.int64)
    new: list[int] = []
    for key, c in zip(keys, kcounts.tolist(), strict=True):
        i = ref.index.get(key)
        if i is None:
            counts[k] += c
            new.append(c)
        else:
            counts[i] += c
    return ColumnWindow(ref.name, n, n_missing, counts=counts, keys=keys, key_counts=kcounts,
                        n_new_keys=len(new), new_counts=np.asarray(new, dtype=np.int64))
