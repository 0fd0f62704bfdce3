"""A window tail returns what a query of the same window returns, opening only files it has not read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.predictions import WindowTail, compact, erase_subject, query_predictions
from loopml.predictions._files import resolve_root
from loopml.predictions._journal import JournalSegment
from loopml.predictions._log import commit_blocks
from loopml.predictions._schema import records_to_table

COLUMNS = ["request_id", "ts", "model_version", "status", "latency_ms", "prediction"]


def test_a_tail_reads_what_a_query_reads_opening_only_new_files(sqlite_workspace: Any, records: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ws = sqlite_workspace
    root = resolve_root(ws)
    t0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    since = t0 + timedelta(seconds=45)
    opened: list[Path] = []
    read_table = pq.read_table
    monkeypatch.setattr(pq, "read_table", lambda path, **kw: (opened.append(Path(path)), read_table(path, **kw))[1])

    def batch(start: int, n: int = 20, version: int = 1) -> Any:
        return records_to_table(records(n, start=start, version=version, ts=t0 + timedelta(seconds=10 * start),
                                        step=timedelta(seconds=10)))

    def check(tail: WindowTail) -> set[Path]:
        opened.clear()
        got = tail.read()
        new = set(opened)
        want = query_predictions(ws, "churn", since=since, columns=COLUMNS)
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
        return new

    def files() -> set[Path]:
        return set(root.glob("endpoint=churn/**/*.parquet"))

    with pytest.raises(NotFoundError):
        WindowTail(ws, "churn", since, COLUMNS).read()
    commit_blocks(root, "seg1", 8, [batch(0)])
    tail = WindowTail(ws, "churn", since, COLUMNS)
    first = files()
    assert check(tail) == first
    commit_blocks(root, "seg2", 8, [batch(20, version=2)])
    assert check(tail) == files() - first  # only what is new
    assert check(tail) == set()  # nothing new: nothing opened

    segment = JournalSegment(root / "_journal", chunk_rows=8)  # rows not yet in Parquet
    segment.append(batch(40))
    segment.sync()
    assert check(tail) == set() and len(tail.read()) == 60 - 5
    commit_blocks(root, segment.id, 8, [batch(40)])
    segment.discard()
    assert len(check(tail)) == 1 and len(tail.read()) == 55

    before = files()
    compact(ws, "churn", t0.date())  # small files merged: the merged file is read, the inputs forgotten
    assert check(tail) == files() - before and len(files()) < len(before)
    erase_subject(ws, "request_id", "req-30", endpoint="churn")  # a file rewritten in place
    assert check(tail) and "req-30" not in set(tail.read()["request_id"])


def test_a_tail_needs_the_time_column(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="'ts'"):
        WindowTail(tmp_path, "churn", datetime.now(UTC), ["request_id"])
