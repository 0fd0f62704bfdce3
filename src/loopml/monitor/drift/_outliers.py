"""Outliers: current values outside the reference's [q0.001, q0.999] range.

By construction about 0.2% of reference values fall outside; a window with
many more has a new tail or a broken feature pipeline even when the bulk of
the distribution (what the drift tests weigh) did not move. The overall share
counts the rows with at least one numeric feature outside its range, so it is
computed on the aligned raw columns, not on per-column summaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from loopml.monitor.drift._refprofile import ColumnReference
from loopml.monitor.drift._report import OutlierResult

__all__ = ["outlier_shares"]


def _as_float(values: Any) -> np.ndarray:
    if isinstance(values, pd.Series):
        if values.dtype == object or isinstance(values.dtype, pd.CategoricalDtype):
            values = pd.to_numeric(values, errors="coerce")
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64)


def outlier_shares(
    refs: Sequence[ColumnReference], columns: Sequence[Any], n_rows: int
) -> tuple[list[OutlierResult], float | None]:
    """Per numeric column, the share of finite current values outside its bounds; plus the row share.

    ``columns`` holds the raw current columns in the order of ``refs``. The
    row share is ``None`` when no column is numeric.
    """
    results: list[OutlierResult] = []
    any_row: np.ndarray | None = None
    for ref, raw in zip(refs, columns, strict=True):
        if ref.type != "numeric" or ref.outlier_bounds is None:
            continue
        lo, hi = ref.outlier_bounds
        x = _as_float(raw)
        out = (x < lo) | (x > hi)  # NaN compares False: missing is not an outlier
        n_valid = int(np.count_nonzero(np.isfinite(x)))
        results.append(OutlierResult(column=ref.name, share=int(np.count_nonzero(out)) / max(n_valid, 1),
                                     reference_share=ref.outlier_share, lower=lo, upper=hi, n_current=n_valid))
        any_row = out if any_row is None else np.logical_or(any_row, out, out=any_row)
    if any_row is None or n_rows == 0:
        return results, None
    return results, int(np.count_nonzero(any_row)) / n_rows
