"""The profile of a dataset version: per-column reference statistics, as plain JSON.

Monitoring uses it as the drift reference and the HTML report draws it, so it
keeps, per column: the logical type, missing counts, distinct count, and

- numeric / datetime: moments, a quantile summary, a 101-point percentile grid,
  a fixed-bin histogram whose edges are *reference quantiles* (equal-mass
  bins, so a later window is binned with the same edges), IQR outlier bounds
  and count, zeros and negatives, exact value counts when there are few values;
- string / bool: the top-K category counts, an ``other`` count, string lengths;
- all: a small seeded sample (the same sampled rows in every column).

One sort per numeric column, one dictionary encode per string column, done
in a thread pool (numpy and Arrow release the GIL); no per-row Python. Every
float is finite or ``None`` so the profile is valid JSON (PostgreSQL JSONB
refuses NaN).
"""

from __future__ import annotations

import math
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopml.ingest._canonical import logical_type, worker_count

__all__ = ["PROFILE_FORMAT", "PROFILE_VERSION", "profile_frame", "profile_table"]

PROFILE_FORMAT = "loopml.dataset.profile"
PROFILE_VERSION = 1
SUMMARY_LEVELS = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
HIST_BINS = 20
TOP_K = 50
#: Numeric columns with at most this many distinct values keep exact value counts.
DISCRETE_LIMIT = 50
SAMPLE_SIZE = 100
SEED = 0

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _f(x: Any) -> float | None:
    """A JSON-safe float: ``None`` for NaN and infinities."""
    v = float(x)
    return v if math.isfinite(v) else None


def _mix(codes: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64 of ``codes ^ salt``: one well-spread 64-bit hash per row (two buffers, in place)."""
    z = np.bitwise_xor(codes.view(np.uint64) if codes.dtype.itemsize == 8 else codes.astype(np.uint64), np.uint64(salt))
    t = np.right_shift(z, np.uint64(30))
    z ^= t
    z *= _M1
    np.right_shift(z, np.uint64(27), out=t)
    z ^= t
    z *= _M2
    np.right_shift(z, np.uint64(31), out=t)
    z ^= t
    return z


def _quantiles(s: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Linear-interpolated quantiles of a sorted array (numpy's default method)."""
    pos = levels * (s.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, s.size - 1)
    a, b = s[lo].astype(np.float64), s[hi].astype(np.float64)
    return a + (b - a) * (pos - lo)


def _to_json_values(values: np.ndarray, kind: str) -> list[Any]:
    if kind == "datetime":
        return [_iso(v) for v in values]
    if kind == "int":
        return [int(v) for v in values]
    return [_f(v) for v in values]


def _iso(seconds: Any) -> str | None:
    v = _f(seconds)
    return None if v is None else datetime.fromtimestamp(v, UTC).isoformat()


def _numeric(col: pa.ChunkedArray, kind: str, name: str) -> tuple[dict[str, Any], np.ndarray]:
    n_rows = len(col)
    if kind == "datetime":
        # Seconds since the epoch (float): the unit every consumer of the profile shares.
        raw = col.cast(pa.int64()).to_numpy() / 1e6 if col.null_count == 0 else np.asarray(
            pc.divide(pc.cast(col.cast(pa.int64()), pa.float64()), 1e6).to_numpy(zero_copy_only=False)
        )
    else:
        raw = col.to_numpy() if col.null_count == 0 else col.to_numpy(zero_copy_only=False)
    # Row codes for duplicate detection: the value bits (null is one fixed NaN pattern).
    codes = raw.view(np.uint64) if raw.dtype.itemsize == 8 else raw.astype(np.float64).view(np.uint64)
    # One sort gives everything: nulls (NaN) sort last, infinities sit at the ends.
    s_all = np.sort(raw)
    n_missing = int(col.null_count)
    end = s_all.size - n_missing
    if raw.dtype.kind == "f":
        lo_fin = int(np.searchsorted(s_all[:end], -np.inf, side="right"))
        hi_fin = int(np.searchsorted(s_all[:end], np.inf, side="left"))
    else:
        lo_fin, hi_fin = 0, end
    n_inf = (lo_fin) + (end - hi_fin)
    s = s_all[lo_fin:hi_fin]
    prof: dict[str, Any] = {
        "type": kind,
        "n": int(s.size),
        "n_missing": n_missing,
        "missing_rate": n_missing / n_rows if n_rows else 0.0,
        "n_inf": n_inf,
    }
    if s.size == 0:
        prof.update({"n_unique": 0})
        return prof, codes
    # Only integer keys use it (contract inference of ``unique``): skip the pass for floats.
    monotonic = bool(kind == "int" and n_missing == 0 and (raw.size < 2 or np.all(raw[1:] >= raw[:-1])))
    n = s.size
    differs = s[1:] != s[:-1]
    n_unique = int(np.count_nonzero(differs)) + 1
    sf = s if s.dtype == np.float64 else s.astype(np.float64)
    summary = _quantiles(s, np.asarray(SUMMARY_LEVELS))
    grid = _quantiles(s, np.linspace(0.0, 1.0, 101))
    # Equal-mass bins: edges are reference quantiles; the last bin is closed.
    edges = np.unique(_quantiles(s, np.linspace(0.0, 1.0, HIST_BINS + 1)))
    if edges.size == 1:
        edges = np.array([edges[0], edges[0]])
        counts = np.array([n])
    else:
        left = np.searchsorted(sf, edges[:-1], side="left")
        counts = np.diff(np.append(left, n))
    q1, q3 = float(summary[4]), float(summary[6])
    iqr = q3 - q1
    lo, hi = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    n_out = int(np.searchsorted(sf, lo, side="left") + (n - np.searchsorted(sf, hi, side="right")))
    n_neg = int(np.searchsorted(sf, 0.0, side="left"))
    n_zero = int(np.searchsorted(sf, 0.0, side="right")) - n_neg
    prof.update({
        "n_unique": n_unique,
        "unique_rate": n_unique / n,
        "is_monotonic_increasing": monotonic,
        "min": int(s[0]) if kind == "int" else _f(s[0]),
        "max": int(s[-1]) if kind == "int" else _f(s[-1]),
        "n_zeros": n_zero,
        "n_negative": n_neg,
        "quantiles": {f"{q:g}": _f(v) for q, v in zip(SUMMARY_LEVELS, summary, strict=True)},
        "percentiles": [_f(v) for v in grid],
        "histogram": {"edges": [_f(e) for e in edges], "counts": counts.astype(np.int64).tolist()},
        "outliers": {"method": "iqr1.5", "lower": _f(lo), "upper": _f(hi), "n": n_out, "rate": n_out / n},
    })
    if kind == "datetime":
        prof["min_iso"], prof["max_iso"] = _iso(s[0]), _iso(s[-1])
    if n_unique <= DISCRETE_LIMIT:
        starts = np.concatenate([[0], np.flatnonzero(differs) + 1])
        run = np.diff(np.append(starts, n))
        order = np.argsort(-run, kind="stable")
        prof["top"] = {
            "values": _to_json_values(s[starts][order], kind),
            "counts": run[order].astype(np.int64).tolist(),
            "other_count": 0,
        }
    # Moments last, in place on our own sorted copy (no 8 MB temporaries per column).
    mean = float(np.mean(sf))
    work = sf  # a view of our own sorted copy: free to overwrite now
    work -= mean
    var = float(np.dot(work, work)) / n
    # sum(d**3) as a dot of d*d with d: np.power(d, 3) calls pow() per element (~40x slower).
    m3 = float(np.dot(work * work, work))
    std = math.sqrt(var)
    skew = m3 / n / std**3 if std > 0 else 0.0
    prof.update({"mean": _f(mean), "std": _f(std), "skew": _f(skew)})
    return prof, codes


def _categorical(col: pa.ChunkedArray, kind: str) -> tuple[dict[str, Any], np.ndarray]:
    n_rows = len(col)
    n_missing = int(col.null_count)
    if kind == "bool":
        arr = pc.fill_null(col.cast(pa.int8()), 2).to_numpy()
        counts_all = np.bincount(arr, minlength=3)[:2]
        keys: list[Any] = [False, True]
        codes = arr.astype(np.int64)
    else:
        enc = pc.dictionary_encode(col).unify_dictionaries()
        dictionary = enc.chunk(0).dictionary if enc.num_chunks else pa.array([], pa.string())
        codes = np.concatenate(
            [pc.fill_null(c.indices, -1).to_numpy().astype(np.int64, copy=False) for c in enc.chunks]
        ) if enc.num_chunks else np.empty(0, np.int64)
        counts_all = np.bincount(codes[codes >= 0], minlength=len(dictionary)) if len(dictionary) else np.zeros(0, np.int64)
        keys = dictionary.to_pylist()
    present = np.flatnonzero(counts_all)
    order = present[np.argsort(-counts_all[present], kind="stable")]
    kept = order[:TOP_K]
    n = n_rows - n_missing
    prof: dict[str, Any] = {
        "type": kind,
        "n": n,
        "n_missing": n_missing,
        "missing_rate": n_missing / n_rows if n_rows else 0.0,
        "n_unique": int(present.size),
        "unique_rate": present.size / n if n else 0.0,
        "top": {
            "values": [keys[i] for i in kept],
            "counts": counts_all[kept].astype(np.int64).tolist(),
            "other_count": int(n - counts_all[kept].sum()),
        },
    }
    if kind == "bool":
        prof["n_true"] = int(counts_all[1])
        prof["true_rate"] = counts_all[1] / n if n else None
    else:
        lengths = pc.utf8_length(col)
        mm = pc.min_max(lengths).as_py()
        prof["length"] = {"min": mm["min"], "max": mm["max"], "mean": _f(pc.mean(lengths).as_py() or 0.0)}
        prof["n_empty"] = int(pc.sum(pc.equal(lengths, 0)).as_py() or 0)
    return prof, codes


def _sample(col: pa.ChunkedArray, idx: np.ndarray, kind: str) -> list[Any]:
    taken = col.take(pa.array(idx))
    if kind == "datetime":
        return [None if v is None else v.isoformat() for v in taken.to_pylist()]
    if kind == "float":
        return [None if v is None else _f(v) for v in taken.to_pylist()]
    return taken.to_pylist()


def profile_table(table: pa.Table, *, seed: int = SEED) -> dict[str, Any]:
    """Profile a normalised table into a JSON-safe dict (see the module docstring)."""
    n_rows = table.num_rows
    rng = np.random.default_rng(seed)
    idx = np.arange(n_rows) if n_rows <= SAMPLE_SIZE else np.sort(rng.choice(n_rows, SAMPLE_SIZE, replace=False))
    row_hash = np.zeros(n_rows, dtype=np.uint64)
    lock = threading.Lock()

    def one(name: str) -> dict[str, Any]:
        col = table.column(name)
        kind = logical_type(col.type)
        if kind in ("int", "float", "datetime"):
            prof, codes = _numeric(col, kind, name)
        else:
            prof, codes = _categorical(col, kind)
        mixed = _mix(codes, zlib.crc32(name.encode()))
        with lock:
            np.add(row_hash, mixed, out=row_hash)  # order-free combine: threads finish in any order
        prof["sample"] = _sample(col, idx, kind)
        return prof

    names = table.column_names
    with ThreadPoolExecutor(worker_count()) as pool:
        cols = dict(zip(names, pool.map(one, names), strict=True))
    # Sort + count instead of np.unique: same answer, ~15x less CPU on 1M uint64 hashes.
    if n_rows:
        row_hash.sort()
        n_dup = int(n_rows - 1 - np.count_nonzero(row_hash[1:] != row_hash[:-1]))
    else:
        n_dup = 0
    n_missing_cells = sum(c["n_missing"] for c in cols.values())
    return {
        "format": PROFILE_FORMAT,
        "version": PROFILE_VERSION,
        "n_rows": n_rows,
        "n_columns": len(names),
        "n_missing_cells": n_missing_cells,
        "missing_cells_rate": n_missing_cells / (n_rows * len(names)) if n_rows and names else 0.0,
        "n_duplicate_rows": n_dup,
        "duplicate_rows_rate": n_dup / n_rows if n_rows else 0.0,
        "params": {"bins": HIST_BINS, "top_k": TOP_K, "sample_size": SAMPLE_SIZE, "seed": seed},
        "sample_rows": idx.tolist(),
        "columns": cols,
    }


def profile_frame(df: Any) -> dict[str, Any]:
    """Profile a pandas DataFrame the way ingest would (normalised first), without storing it."""
    from loopml.ingest._canonical import normalise_table
    from loopml.ingest._sources import _from_pandas

    return profile_table(normalise_table(_from_pandas(df), "the DataFrame"))
