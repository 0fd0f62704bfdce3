"""The reference profile: what a monitor keeps of the training data, as plain JSON.

It is computed once, at training time, and stored with the model version; a
monitor later compares a current window against it without the raw data.
Per numeric column it keeps a fine quantile grid whose *edges are reference
order statistics* with the exact reference count in each cell (enough for a
full-size binned chi-square test, PSI / Jensen-Shannon on reference-quantile
bins and the Wasserstein distance to ~1e-3), its moments, the outlier bounds
and a seeded random sample (the whole column when it is small, so KS is exact
there). Per categorical or boolean column it keeps the top-K category counts
plus an "other" count. One sort per numeric column, one bincount or hash per
categorical column; no per-row Python.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loopml.kernel.exceptions import ValidationError
from loopml.monitor.drift._columns import (
    COLUMN_TYPES,
    category_counts,
    column_names,
    ensure_columns,
    get_column,
    infer_type,
    numeric_values,
    row_count,
)

__all__ = ["PROFILE_FORMAT", "PROFILE_VERSION", "ColumnReference", "DriftReference", "profile_frame"]

PROFILE_FORMAT = "loopml.drift.profile"
PROFILE_VERSION = 1
#: Quantile levels kept as a readable summary (the fine grid is separate).
SUMMARY_LEVELS = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
OUTLIER_LEVELS = (0.001, 0.999)


def _quantile_sorted(s: np.ndarray, q: float) -> float:
    """Linear-interpolated quantile of an already sorted array (numpy's default method)."""
    pos = q * (s.size - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, s.size - 1)
    return float(s[lo] + (s[hi] - s[lo]) * (pos - lo))


def _numeric_profile(
    values: np.ndarray, n_missing: int, name: str, *, resolution: int, tail: int, top_k: int,
    sample_size: int, seed: int,
) -> dict[str, Any]:
    s = np.sort(values)
    n = int(s.size)
    ranks = np.round(np.linspace(0.0, 1.0, resolution + 1) * (n - 1)).astype(np.int64)
    # In the outermost cells, ranks spaced geometrically from the extreme: heavy tails
    # hold much of W1 in a few rows, and equal-mass cells would blur them.
    span = max(2.0, n / resolution)
    geo = np.unique(np.round(np.geomspace(1.0, span, max(tail, 2))).astype(np.int64)) - 1
    geo = geo[geo < n]
    ranks = np.unique(np.concatenate([ranks, geo, n - 1 - geo]))
    edges = np.unique(s[ranks])
    cum_lt = np.searchsorted(s, edges, side="left")  # reference rows strictly below each edge
    counts = np.diff(np.concatenate([[0], cum_lt, [n]]))
    change = np.flatnonzero(np.diff(s)) + 1
    n_unique = int(change.size + 1)
    lo, hi = (_quantile_sorted(s, q) for q in OUTLIER_LEVELS)
    n_out = int(np.searchsorted(s, lo, side="left") + (n - np.searchsorted(s, hi, side="right")))
    prof: dict[str, Any] = {
        "type": "numeric",
        "n": n,
        "n_missing": int(n_missing),
        "missing_rate": n_missing / (n + n_missing),
        "mean": float(np.mean(s)),
        "std": float(np.std(s)),
        "min": float(s[0]),
        "max": float(s[-1]),
        "n_unique": n_unique,
        "quantiles": {f"{q:g}": _quantile_sorted(s, q) for q in SUMMARY_LEVELS},
        "edges": edges.tolist(),
        "counts": counts.tolist(),
        "outlier_bounds": [lo, hi],
        "outlier_share": n_out / n,
    }
    if n_unique <= top_k:
        starts = np.concatenate([[0], change])
        prof["values"] = s[starts].tolist()
        prof["value_counts"] = np.diff(np.concatenate([starts, [n]])).tolist()
    if n <= sample_size:
        prof["sample"] = s.tolist()
        prof["sample_complete"] = True
    else:
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        idx = np.sort(rng.choice(n, size=sample_size, replace=False))
        prof["sample"] = s[idx].tolist()
        prof["sample_complete"] = False
    return prof


def _categorical_profile(values: Any, ctype: str, *, top_k: int) -> dict[str, Any]:
    keys, counts, n_missing = category_counts(values)
    if ctype == "boolean":
        keys = [bool(k) for k in keys]
    order = np.argsort(-counts, kind="stable")
    kept = order[:top_k]
    n = int(counts.sum())
    return {
        "type": ctype,
        "n": n,
        "n_missing": n_missing,
        "missing_rate": n_missing / (n + n_missing) if n + n_missing else 0.0,
        "n_unique": len(keys),
        "categories": [keys[i] for i in kept],
        "counts": counts[kept].tolist(),
        "other_count": int(counts[order[top_k:]].sum()),
    }


def profile_frame(
    data: Any,
    *,
    columns: Sequence[str] | None = None,
    types: Mapping[str, str] | None = None,
    resolution: int = 1000,
    tail: int = 64,
    top_k: int = 100,
    sample_size: int = 5000,
    seed: int = 0,
) -> dict[str, Any]:
    """Profile a reference frame into a JSON-safe dict (see the module docstring).

    Args:
        data: a pandas DataFrame or a mapping of column name -> array-like.
        columns: the columns to profile (default: all).
        types: per-column type overrides ("numeric", "categorical", "boolean"),
            e.g. for integer-coded categories.
        resolution: equal-probability cells of the numeric quantile grid.
        tail: ranks kept on each side inside the outermost cell, spaced
            geometrically from the extreme order statistic.
        top_k: categories kept per categorical column (the rest is "other");
            numeric columns with at most this many distinct values also keep
            exact value counts.
        sample_size: size of the seeded random sample per numeric column (the
            whole column when it has at most this many values).
        seed: seed of the samples (each column also mixes in its name).

    Raises:
        ValidationError: no rows, an unknown column or type, or a column with
            no usable value.
    """
    for pname, value, low in (("resolution", resolution, 2), ("top_k", top_k, 1),
                              ("sample_size", sample_size, 1), ("tail", tail, 0)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValidationError(f"{pname} must be an integer >= {low}, got {value!r}", field=pname, rule="range")
    names = ensure_columns(columns, column_names(data), "reference data")
    n_rows = row_count(data)
    if n_rows == 0:
        raise ValidationError("the reference data has no rows", field="reference", rule="empty_window")
    types = dict(types or {})
    for col, t in types.items():
        if t not in COLUMN_TYPES:
            raise ValidationError(
                f"type of column '{col}' must be one of {', '.join(COLUMN_TYPES)}, got {t!r}",
                field=col, rule="unknown_type",
            )
    out: dict[str, Any] = {}
    for name in names:
        raw = get_column(data, name)
        ctype = types.get(name) or infer_type(raw, name)
        if ctype == "numeric":
            vals, n_missing = numeric_values(raw, name)
            if vals.size == 0:
                raise ValidationError(
                    f"column '{name}' has no finite value in the reference data (all {n_missing} missing)",
                    field=name, rule="all_missing",
                )
            out[name] = _numeric_profile(vals, n_missing, name, resolution=resolution, tail=tail,
                                         top_k=top_k, sample_size=sample_size, seed=seed)
        else:
            prof = _categorical_profile(raw, ctype, top_k=top_k)
            if prof["n"] == 0:
                raise ValidationError(
                    f"column '{name}' has no value in the reference data (all {prof['n_missing']} missing)",
                    field=name, rule="all_missing",
                )
            out[name] = prof
    return {
        "format": PROFILE_FORMAT,
        "version": PROFILE_VERSION,
        "n_rows": n_rows,
        "params": {"resolution": resolution, "tail": tail, "top_k": top_k, "sample_size": sample_size, "seed": seed},
        "columns": out,
    }


@dataclass(frozen=True)
class ColumnReference:
    """One column of a reference profile, with numpy arrays ready for the tests."""

    name: str
    type: str
    n: int
    n_missing: int
    n_unique: int
    mean: float = float("nan")
    std: float = float("nan")
    edges: np.ndarray | None = None
    counts: np.ndarray | None = None
    sample: np.ndarray | None = None
    sample_complete: bool = False
    values: np.ndarray | None = None
    value_counts: np.ndarray | None = None
    outlier_bounds: tuple[float, float] | None = None
    outlier_share: float = 0.0
    categories: tuple[Any, ...] = ()
    category_counts: np.ndarray | None = None
    other_count: int = 0
    index: dict[Any, int] = field(default_factory=dict, repr=False, compare=False)

    @property
    def missing_rate(self) -> float:
        """Share of reference rows that were missing."""
        total = self.n + self.n_missing
        return self.n_missing / total if total else 0.0

    @property
    def discrete(self) -> bool:
        """True when exact value counts are known (few distinct values)."""
        return self.values is not None


def _need(col: Mapping[str, Any], key: str, name: str) -> Any:
    if key not in col:
        raise ValidationError(
            f"profile of column '{name}' lacks '{key}'; it was not written by profile_frame",
            field=name, rule="profile_format",
        )
    return col[key]


def _column_from_profile(name: str, col: Mapping[str, Any]) -> ColumnReference:
    ctype = _need(col, "type", name)
    if ctype not in COLUMN_TYPES:
        raise ValidationError(
            f"profile of column '{name}' has type {ctype!r}; known: {', '.join(COLUMN_TYPES)}",
            field=name, rule="unknown_type",
        )
    common = dict(name=name, type=ctype, n=int(_need(col, "n", name)), n_missing=int(col.get("n_missing", 0)),
                  n_unique=int(col.get("n_unique", 0)))
    if ctype == "numeric":
        values = col.get("values")
        return ColumnReference(
            **common,
            mean=float(_need(col, "mean", name)),
            std=float(_need(col, "std", name)),
            edges=np.asarray(_need(col, "edges", name), dtype=np.float64),
            counts=np.asarray(_need(col, "counts", name), dtype=np.int64),
            sample=np.asarray(_need(col, "sample", name), dtype=np.float64),
            sample_complete=bool(col.get("sample_complete", False)),
            values=None if values is None else np.asarray(values, dtype=np.float64),
            value_counts=None if values is None else np.asarray(col["value_counts"], dtype=np.int64),
            outlier_bounds=tuple(float(b) for b in _need(col, "outlier_bounds", name)),  # type: ignore[arg-type]
            outlier_share=float(col.get("outlier_share", 0.0)),
        )
    cats = tuple(_need(col, "categories", name))
    return ColumnReference(
        **common,
        categories=cats,
        category_counts=np.asarray(_need(col, "counts", name), dtype=np.int64),
        other_count=int(col.get("other_count", 0)),
        index={k: i for i, k in enumerate(cats)},
    )


@dataclass(frozen=True)
class DriftReference:
    """A parsed reference profile: the columns a monitor compares against."""

    columns: dict[str, ColumnReference]
    n_rows: int
    profile: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_profile(cls, profile: Mapping[str, Any]) -> DriftReference:
        """Parse a dict made by :func:`profile_frame` (e.g. after a JSON round-trip)."""
        if not isinstance(profile, Mapping) or profile.get("format") != PROFILE_FORMAT:
            raise ValidationError(
                f"not a drift profile: expected format '{PROFILE_FORMAT}' (made by profile_frame)",
                field="profile", rule="profile_format",
            )
        if profile.get("version") != PROFILE_VERSION:
            raise ValidationError(
                f"drift profile version {profile.get('version')!r} is not supported; this loopml reads "
                f"version {PROFILE_VERSION}",
                field="version", rule="profile_version",
            )
        cols = {str(k): _column_from_profile(str(k), v) for k, v in profile["columns"].items()}
        return cls(columns=cols, n_rows=int(profile.get("n_rows", 0)), profile=dict(profile))

    @classmethod
    def from_frame(cls, data: Any, **kwargs: Any) -> DriftReference:
        """Profile ``data`` (see :func:`profile_frame`) and parse the result."""
        return cls.from_profile(profile_frame(data, **kwargs))

    def to_profile(self) -> dict[str, Any]:
        """The JSON-safe profile this reference was read from."""
        return self.profile

    def __getitem__(self, name: str) -> ColumnReference:
        return self.columns[name]
