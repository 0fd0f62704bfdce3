"""Turning user columns (pandas, numpy, lists) into plain numpy arrays, once.

Both the reference profile and the current window go through these helpers so
that a column is typed, cleaned and counted the same way on both sides: a
numeric value that is NaN or +-inf is *missing* (as Evidently does), a
categorical key is a JSON-safe Python scalar (``int``, ``float``, ``str``,
``bool``) so that profiles round-trip through JSON and still match.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from loopml.kernel.exceptions import ValidationError

__all__ = [
    "COLUMN_TYPES",
    "category_counts",
    "column_names",
    "get_column",
    "infer_type",
    "json_key",
    "numeric_values",
    "row_count",
]

#: The column types a profile knows.
COLUMN_TYPES = ("numeric", "categorical", "boolean")

# Integer codes in [0, _BINCOUNT_LIMIT) are counted with bincount (no sort, no hash).
_BINCOUNT_LIMIT = 1 << 20


def column_names(data: Any) -> list[str]:
    """Column names of a DataFrame or a mapping of name -> values."""
    if isinstance(data, pd.DataFrame):
        return [str(c) for c in data.columns]
    if isinstance(data, Mapping):
        return [str(c) for c in data]
    raise ValidationError(
        f"expected a pandas DataFrame or a mapping of column name -> values, got {type(data).__name__}",
        field="data",
        rule="type",
    )


def get_column(data: Any, name: str) -> Any:
    """One column, as the caller stored it (Series or array-like)."""
    return data[name]


def row_count(data: Any) -> int:
    """Rows of a frame or of the first column of a mapping (0 when it has no columns)."""
    if isinstance(data, pd.DataFrame):
        return int(len(data))
    for values in data.values():
        return int(len(values))
    return 0


def infer_type(values: Any, name: str) -> str:
    """numeric / categorical / boolean from the dtype; anything else is refused."""
    dtype = values.dtype if hasattr(values, "dtype") else np.asarray(values).dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype) or dtype == object:
        return "categorical"
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return "numeric"
    raise ValidationError(
        f"column '{name}' has dtype {dtype}, which drift detection does not support; "
        "supported: numeric, boolean, categorical (string/object/category); "
        "leave it out with columns=[...] or cast it",
        field=name,
        rule="unsupported_dtype",
    )


def numeric_values(values: Any, name: str) -> tuple[np.ndarray, int]:
    """(finite float64 values, number of missing) — NaN, None and +-inf count as missing."""
    if isinstance(values, pd.Series):
        if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == object:
            arr = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        arr = np.asarray(values)
        if arr.dtype.kind not in "fiub":
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise ValidationError(
                    f"column '{name}' is numeric in the reference but its current values are not numbers",
                    field=name,
                    rule="type_mismatch",
                ) from exc
    if arr.dtype.kind in "iub":
        return arr.astype(np.float64, copy=False), 0
    arr = arr.astype(np.float64, copy=False)
    finite = np.isfinite(arr)
    n_bad = int(arr.size - np.count_nonzero(finite))
    return (arr if n_bad == 0 else arr[finite]), n_bad


def json_key(value: Any) -> int | float | str | bool:
    """A category key as a JSON-safe Python scalar (numpy scalars unwrapped)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return int(f) if f.is_integer() else f
    if isinstance(value, str):
        return value
    return str(value)


def category_counts(values: Any) -> tuple[list[int | float | str | bool], np.ndarray, int]:
    """(keys, counts, n_missing) of a categorical or boolean column, keys JSON-safe, counts int64.

    Integer codes go through ``bincount``; everything else through pandas'
    hash-based ``value_counts``; no per-row Python.
    """
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        n_missing = int(np.count_nonzero(codes < 0))
        counts = np.bincount(codes[codes >= 0], minlength=len(values.cat.categories))
        keep = counts > 0
        keys = [json_key(k) for k, kp in zip(values.cat.categories, keep, strict=True) if kp]
        return keys, counts[keep].astype(np.int64), n_missing
    arr = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if arr.dtype.kind in "iu" and arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo >= 0 and hi < _BINCOUNT_LIMIT:
            counts = np.bincount(arr, minlength=hi + 1)
            idx = np.flatnonzero(counts)
            return [int(i) for i in idx], counts[idx].astype(np.int64), 0
    if arr.dtype.kind == "b":
        n_true = int(np.count_nonzero(arr))
        keys_b: list[int | float | str | bool] = []
        cnts = []
        if arr.size - n_true:
            keys_b.append(False)
            cnts.append(arr.size - n_true)
        if n_true:
            keys_b.append(True)
            cnts.append(n_true)
        return keys_b, np.asarray(cnts, dtype=np.int64), 0
    series = values if isinstance(values, pd.Series) else pd.Series(arr)
    vc = series.value_counts(dropna=True, sort=False)
    n_missing = int(len(series) - int(vc.sum()))
    return [json_key(k) for k in vc.index], vc.to_numpy(dtype=np.int64), n_missing


def ensure_columns(requested: Sequence[str] | None, available: Sequence[str], where: str) -> list[str]:
    """The requested columns, each checked to exist in ``available``."""
    if requested is None:
        return list(available)
    missing = [c for c in requested if c not in available]
    if missing:
        raise ValidationError(
            f"column '{missing[0]}' is not in the {where}; known columns: "
            + ", ".join(f"'{c}'" for c in list(available)[:20]),
            field=missing[0],
            rule="unknown_column",
        )
    return list(requested)
