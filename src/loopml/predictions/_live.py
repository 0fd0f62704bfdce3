"""Rows that are logged but not yet in Parquet: read from the write-ahead journal.

Why: Parquet files appear once per ``roll_interval_s`` (10 s) so that an hour
holds hundreds of files, not thousands; the journal gets every pass
(``flush_interval_s``, 1 s). A query that also reads the journal sees a row
about one flush interval after the server answered, with no extra files.

A segment and its Parquet files must not both be counted, and neither may be
missed while the commit thread turns one into the other. The reader

1. opens every segment (an open file keeps its bytes even after an unlink),
2. notes which still exist: their commit had not finished yet,
3. then lists the Parquet files, dropping ``part-<segment id>-*`` of those,
4. and reads the noted segments from the open files.

A segment gone by step 2 finished its commit before step 3's listing, so its
files are all listed; a segment still there holds every row its files hold.
Only segments in ``<root>/_journal`` are seen (a log opened with another
``spill_dir`` is visible after its commit only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from loopml.predictions._journal import read_segment, segment_paths
from loopml.predictions._schema import TS_TYPE, safe_endpoint

__all__ = ["Snapshot", "journal_segment_ids", "snapshot"]

JOURNAL = "_journal"


@dataclass(frozen=True)
class Snapshot:
    """What a query reads: Parquet files plus the journal's rows of the endpoint (None if none)."""

    files: list[Path]
    journal: pa.Table | None
    #: the journal holds rows of the endpoint, in the window or not (it exists, then)
    seen: bool = False


def _segment_id(path: Path) -> str:
    # seg-<ns>-<id>.wal; the id also names the segment's Parquet files: part-<id>-<k>.parquet
    return path.stem.rsplit("-", 1)[-1]


def journal_segment_ids(root: Path) -> list[str]:
    """Ids of the segments in the journal now (their Parquet files may be partial)."""
    return [_segment_id(p) for p in segment_paths(root / JOURNAL)]


def snapshot(root: Path, endpoint: str, since: datetime | None, until: datetime | None,
             list_parquet: Callable[[], list[Path]]) -> Snapshot:
    """Parquet files and journal rows of ``endpoint`` in ``[since, until)``, each row once."""
    handles: list[tuple[Path, BinaryIO]] = []
    for path in segment_paths(root / JOURNAL):
        try:
            handles.append((path, open(path, "rb")))  # noqa: SIM115 - closed below or by read_segment
        except FileNotFoundError:
            continue
    live: list[tuple[str, BinaryIO]] = []
    for path, fh in handles:
        if path.exists():
            live.append((_segment_id(path), fh))
        else:
            fh.close()
    files = list_parquet()
    if live:
        ids = tuple(f"part-{sid}-" for sid, _ in live)
        files = [f for f in files if not f.name.startswith(ids)]
    seen = [False]
    tables = [t for _, fh in live for t in _rows(fh, endpoint, since, until, seen)]
    journal = None
    if tables:
        journal = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    return Snapshot(files, journal, seen[0])


def _rows(fh: BinaryIO, endpoint: str, since: datetime | None, until: datetime | None,
          seen: list[bool]) -> list[pa.Table]:
    header, blocks = read_segment(fh)
    if not header:
        fh.close()
        return []
    name = safe_endpoint(endpoint)
    out: list[pa.Table] = []
    for block in blocks:
        mask = pc.equal(block.column("endpoint"), name)
        seen[0] = seen[0] or pc.any(mask).as_py() is True
        ts = block.column("ts")
        if since is not None:
            mask = pc.and_(mask, pc.greater_equal(ts, pa.scalar(since, TS_TYPE)))
        if until is not None:
            mask = pc.and_(mask, pc.less(ts, pa.scalar(until, TS_TYPE)))
        part = block.filter(mask)
        if part.num_rows:
            out.append(part)
    return out
