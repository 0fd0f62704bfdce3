"""The log's layout on disk, and the one way files enter it (fsync, then atomic rename).

::

    <root>/endpoint=<name>/date=YYYY-MM-DD/hour=HH/part-<id>.parquet   predictions
    <root>/feedback/endpoint=<name>/date=YYYY-MM-DD/part-<id>.parquet  true labels
    <root>/_journal/seg-*.wal                                          write-ahead journal

A file becomes visible to readers only complete (written as ``.*.tmp``, then
renamed), so a reader never sees half a file and a crash leaves no partial one.
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from loopml.kernel.exceptions import ConfigError, ValidationError

__all__ = [
    "endpoint_dir",
    "list_files",
    "parse_time",
    "resolve_root",
    "write_parquet_atomic",
    "write_partitioned",
]

_US_PER_HOUR = 3_600_000_000
_REL_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def resolve_root(ws_or_root: Any) -> Path:
    """The log folder of a workspace (``settings.resolved_predictions_url``) or a path."""
    settings = getattr(ws_or_root, "settings", None)
    url = settings.resolved_predictions_url if settings is not None else ws_or_root
    text = str(url)
    if text.startswith("file://"):
        text = text[len("file://") :]
    elif "://" in text:
        raise ConfigError(
            f"predictions_url {text!r}: only local folders are supported for the prediction log "
            "so far (use a path or file://)"
        )
    return Path(text)


def endpoint_dir(root: Path, endpoint: str) -> Path:
    return root / f"endpoint={endpoint}"


def parse_time(value: Any, field: str, *, now: datetime | None = None) -> datetime | None:
    """``None``, a datetime, ``'15m' / '1h' / '2d'`` (ago) or an ISO date/time, as aware UTC.

    Raises:
        ValidationError: the text is neither, naming ``field``.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = str(value).strip()
    match = _REL_RE.match(text)
    if match:
        seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"{field} {text!r} is not a time: use a duration ago like '15m', '1h', '7d' "
            "or an ISO date/time like '2024-05-01T12:00:00Z'",
            field=field,
            rule="time",
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def write_parquet_atomic(table: pa.Table, final: Path) -> bool:
    """Write ``table`` to ``final`` complete or not at all; False if it already exists."""
    if final.exists():
        return False
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.{uuid.uuid4().hex[:8]}.tmp"
    with open(tmp, "wb") as fh:
        pq.write_table(table, fh, compression="zstd")
        fh.flush()
        os.fsync(fh.fileno())  # the journal is deleted after this: the bytes must be on disk
    os.replace(tmp, final)
    return True


def write_partitioned(root: Path, table: pa.Table, stem: str) -> int:
    """Split ``table`` by endpoint and UTC hour; write ``part-<stem>.parquet`` in each.

    Idempotent: a partition whose file exists is skipped (journal replay).
    Returns the rows written.
    """
    if table.num_rows == 0:
        return 0
    hours = pc.divide(table.column("ts").cast(pa.int64()), pa.scalar(_US_PER_HOUR, pa.int64()))
    endpoints = table.column("endpoint")
    body = table.drop_columns(["endpoint"])
    ep_np = endpoints.to_numpy(zero_copy_only=False)
    hr_np = hours.to_numpy()
    written = 0
    if hr_np.min() == hr_np.max() and (ep_np == ep_np[0]).all():
        groups = [((str(ep_np[0]), int(hr_np[0])), None)]
    else:
        enc = pc.dictionary_encode(endpoints).combine_chunks()
        codes = enc.indices.to_numpy().astype(np.int64)
        names = enc.dictionary.to_pylist()
        lo = int(hr_np.min())
        keys = codes * (int(hr_np.max()) - lo + 1) + (hr_np - lo)
        uniq, inverse = np.unique(keys, return_inverse=True)
        span = int(hr_np.max()) - lo + 1
        groups = [((str(names[int(k) // span]), lo + int(k) % span), np.flatnonzero(inverse == i))
                  for i, k in enumerate(uniq)]
    for (ep, hour), idx in groups:
        part = body if idx is None else body.take(pa.array(idx))
        start = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(hours=hour)
        folder = endpoint_dir(root, ep) / f"date={start:%Y-%m-%d}" / f"hour={start:%H}"
        write_parquet_atomic(part, folder / f"part-{stem}.parquet")
        written += part.num_rows
    return written


def list_files(root: Path, endpoint: str, since: datetime | None, until: datetime | None) -> list[Path]:
    """Parquet files of ``endpoint`` whose hour partition overlaps ``[since, until)``."""
    base = endpoint_dir(root, endpoint)
    lo = since.replace(minute=0, second=0, microsecond=0) if since else None
    files: list[Path] = []
    for ddir in sorted(base.glob("date=*")):
        try:
            day = date.fromisoformat(ddir.name[5:])
        except ValueError:
            continue
        day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        if (lo and day_start + timedelta(days=1) <= lo) or (until and day_start >= until):
            continue
        for hdir in sorted(ddir.glob("hour=*")):
            try:
                hour_start = day_start + timedelta(hours=int(hdir.name[5:]))
            except ValueError:
                continue
            if (lo and hour_start < lo) or (until and hour_start >= until):
                continue
            files.extend(sorted(hdir.glob("*.parquet")))
    return files
