"""The canonical form of a dataset: normalised Arrow types, a content digest, Parquet bytes.

Why a canonical form: the same table must get the same digest whether it came
from a CSV, a Parquet file, a DataFrame or a SQL query, and whatever chunking
the reader happened to use. So types are normalised first (one integer type,
one float type, one string type, UTC microsecond timestamps, NaN stored as
null), then the digest is taken over the *logical* values column by column,
never over encoded Parquet bytes (which change with the pyarrow version).
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from loopml.kernel.exceptions import DataError, ValidationError

__all__ = [
    "DIGEST_FORMAT",
    "LOGICAL_TYPES",
    "content_digest",
    "logical_type",
    "normalise_table",
    "table_schema",
    "worker_count",
    "write_parquet",
]

DIGEST_FORMAT = b"loopml.dataset.content.v1\x00"
#: Logical column types of a dataset version (the contract adds ``category``).
LOGICAL_TYPES = ("int", "float", "bool", "string", "datetime")
PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"

# Deterministic writer settings: same table, same bytes (for a given pyarrow).
_PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 1,
    "row_group_size": 256 * 1024,
    "write_statistics": True,
    "data_page_version": "2.0",
}


def worker_count() -> int:
    """Threads for per-column work: numpy, hashlib and Arrow release the GIL."""
    import os

    return max(1, min(8, os.cpu_count() or 1))


def _normalise_type(name: str, col: pa.ChunkedArray) -> pa.ChunkedArray:
    t = col.type
    try:
        if pa.types.is_dictionary(t):
            return _normalise_type(name, col.cast(t.value_type))
        if pa.types.is_boolean(t):
            return col
        if pa.types.is_integer(t):
            if t == pa.int64():
                return col
            if t == pa.uint64():
                try:
                    return col.cast(pa.int64())
                except pa.ArrowInvalid:
                    return col.cast(pa.float64())
            return col.cast(pa.int64())
        if pa.types.is_floating(t) or pa.types.is_decimal(t):
            col = col.cast(pa.float64()) if t != pa.float64() else col
            # NaN and null both mean "missing": store one of them so digests agree.
            if col.null_count < len(col) and pc.any(pc.is_nan(col)).as_py():
                col = pc.if_else(pc.is_nan(col), pa.scalar(None, pa.float64()), col)
            return col
        if pa.types.is_string(t):
            return col
        if pa.types.is_large_string(t) or pa.types.is_string_view(t):
            return col.cast(pa.string())
        if pa.types.is_timestamp(t):
            target = pa.timestamp("us", tz="UTC" if t.tz else None)
            return col if t == target else pc.cast(col, target, safe=False)
        if pa.types.is_date(t):
            return pc.cast(col.cast(pa.timestamp("ms")) if pa.types.is_date64(t) else col, pa.timestamp("us"))
        if pa.types.is_null(t):
            return col.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ValidationError(
            f"column '{name}' of type {t} could not be normalised: {exc}", field=name, rule="type"
        ) from exc
    raise ValidationError(
        f"column '{name}' has type {t}, which datasets do not support; supported: integers, floats, "
        "decimals, booleans, strings, categoricals, dates and timestamps",
        field=name,
        rule="unsupported_type",
    )


def normalise_table(table: pa.Table, what: str) -> pa.Table:
    """One canonical Arrow type per logical type; names checked; metadata dropped.

    Raises:
        ValidationError: no columns, no rows, a duplicate/empty column name or
            an unsupported column type.
    """
    try:
        names = [str(n) for n in table.column_names]
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{what}: column names are not valid UTF-8 ({exc.reason} at byte {exc.start})",
                              field="columns", rule="utf8") from None
    if not names:
        raise ValidationError(f"{what} has no columns", field="columns", rule="not_empty")
    seen: set[str] = set()
    for n in names:
        if not n.strip():
            raise ValidationError(f"{what} has a column with an empty name", field="columns", rule="name")
        if n in seen:
            raise ValidationError(
                f"{what} has the column name '{n}' twice; column names must be unique",
                field=n,
                rule="unique_column_names",
            )
        seen.add(n)
    if table.num_rows == 0:
        raise ValidationError(f"{what} has no rows (columns: {', '.join(names[:10])})", field="rows", rule="not_empty")
    cols = [_normalise_type(n, table.column(i)) for i, n in enumerate(names)]
    return pa.Table.from_arrays(cols, names=names)


def logical_type(t: pa.DataType) -> str:
    """The logical type of a *normalised* Arrow type."""
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_timestamp(t):
        return "datetime"
    return "string"


def table_schema(table: pa.Table) -> list[dict[str, Any]]:
    """The JSON schema stored with a version: name, logical type, Arrow type, has nulls."""
    return [
        {
            "name": name,
            "type": logical_type(col.type),
            "arrow_type": str(col.type),
            "nullable": col.null_count > 0,
        }
        for name, col in zip(table.column_names, table.columns, strict=True)
    ]


def _column_digest(col: pa.ChunkedArray) -> bytes:
    """sha256 over validity, lengths and values, independent of chunk boundaries."""
    valid_h, len_h, val_h = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
    is_string = pa.types.is_string(col.type)
    for chunk in col.chunks:
        if len(chunk) == 0:
            continue
        if chunk.null_count:
            valid_h.update(np.asarray(pc.is_valid(chunk)).view(np.uint8).tobytes())
            # Values under a null slot are undefined in Arrow: fill them first.
            chunk = pc.fill_null(chunk, "" if is_string else (False if pa.types.is_boolean(chunk.type) else 0))
        if is_string:
            bufs = chunk.buffers()
            offsets = np.frombuffer(bufs[1], dtype=np.int32, count=len(chunk) + 1, offset=chunk.offset * 4)
            len_h.update(np.diff(offsets).tobytes())
            if bufs[2] is not None:
                val_h.update(memoryview(bufs[2])[int(offsets[0]) : int(offsets[-1])])
        elif pa.types.is_boolean(chunk.type):
            val_h.update(chunk.to_numpy(zero_copy_only=False).view(np.uint8).tobytes())
        else:
            arr = chunk.to_numpy(zero_copy_only=False)
            val_h.update(np.ascontiguousarray(arr).view(np.uint8).data)
    return valid_h.digest() + len_h.digest() + val_h.digest()


def content_digest(table: pa.Table) -> str:
    """sha256 of the table's logical content: names, types, row count and values."""
    h = hashlib.sha256(DIGEST_FORMAT)
    header = {"rows": table.num_rows, "columns": [[n, str(c.type)] for n, c in zip(table.column_names, table.columns, strict=True)]}
    h.update(json.dumps(header, separators=(",", ":")).encode())
    with ThreadPoolExecutor(worker_count()) as pool:
        for part in pool.map(_column_digest, table.columns):
            h.update(part)
    return h.hexdigest()


#: Dictionary-encode numeric columns only below this many distinct values: for
#: high-cardinality floats the encoder tries, overflows and falls back (3x slower).
DICTIONARY_MAX_UNIQUE = 1 << 16


def write_parquet(table: pa.Table, path: Path, digest: str, profile: dict[str, Any] | None = None) -> None:
    """Write the canonical Parquet file (deterministic settings, our metadata only)."""
    table = table.replace_schema_metadata({"loopml.content_digest": digest})
    cols = (profile or {}).get("columns", {})
    dictionary = [
        n for n, c in zip(table.column_names, table.columns, strict=True)
        if pa.types.is_string(c.type) or int(cols.get(n, {}).get("n_unique", 1 << 62)) <= DICTIONARY_MAX_UNIQUE
    ]
    try:
        pq.write_table(table, path, use_dictionary=dictionary, **_PARQUET_OPTIONS)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"could not write the canonical Parquet file {path}: {exc}") from exc
