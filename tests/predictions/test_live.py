"""Reading the journal: rows are queryable before their Parquet exists, and never counted twice."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loopml.kernel.exceptions import NotFoundError
from loopml.predictions import (
    PredictionLog,
    compact,
    count_predictions,
    join_feedback,
    open_view,
    query_predictions,
)
from loopml.predictions._journal import JournalSegment
from loopml.predictions._log import commit_blocks
from loopml.predictions._schema import merge_columnar, records_to_table
from loopml.serve import MatrixColumns


def wait_for(condition: Any, deadline_s: float) -> Any:
    end = time.monotonic() + deadline_s
    while True:
        value = condition()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.02)


def test_journaled_rows_are_queryable_before_the_segment_rolls(tmp_path: Path, records: Any) -> None:
    root = tmp_path / "log"
    with PredictionLog(root, flush_interval_s=0.05, roll_interval_s=3600) as plog:
        plog.submit(records(7))

        def seen() -> int:
            try:
                return count_predictions(root, "churn")
            except NotFoundError:
                return 0

        assert wait_for(lambda: seen() == 7, deadline_s=10.0)
        assert not list(root.glob("endpoint=*/**/*.parquet"))  # nothing committed yet
        frame = query_predictions(root, "churn", since="1h")
        assert sorted(frame["request_id"]) == sorted(f"req-{i}" for i in range(7))
        assert len(join_feedback(root, "churn")) == 7
        con = open_view(root, "churn")
        try:
            assert con.sql("SELECT count(*) FROM predictions").fetchall()[0][0] == 7
        finally:
            con.close()
    assert count_predictions(root, "churn") == 7  # after close: Parquet only, still once


def test_a_segment_mid_commit_is_counted_once(tmp_path: Path, records: Any) -> None:
    root = tmp_path / "log"
    seg = JournalSegment(root / "_journal", chunk_rows=4)
    blocks = [records_to_table(records(6)), records_to_table(records(6, start=6))]
    for block in blocks:
        seg.append(block)
    seg.sync()
    assert count_predictions(root, "churn") == 12  # journal only
    commit_blocks(root, seg.id, 4, blocks[:1])  # the commit thread got half way
    assert list(root.glob("endpoint=churn/**/*.parquet"))
    assert count_predictions(root, "churn") == 12
    commit_blocks(root, seg.id, 4, blocks)
    assert count_predictions(root, "churn") == 12
    day = str(query_predictions(root, "churn")["ts"].iloc[0].date())
    parts = sorted(root.glob("endpoint=churn/**/*.parquet"))
    assert len(parts) >= 2
    compact(root, "churn", day)  # a segment's files stay apart while it is in the journal
    assert sorted(root.glob("endpoint=churn/**/*.parquet")) == parts
    assert count_predictions(root, "churn") == 12
    seg.discard()  # committed: Parquet alone
    assert count_predictions(root, "churn") == 12
    assert sorted(query_predictions(root, "churn")["request_id"]) == sorted(f"req-{i}" for i in range(12))


def test_journal_rows_of_other_endpoints_and_times_are_left_out(tmp_path: Path, records: Any) -> None:
    root = tmp_path / "log"
    seg = JournalSegment(root / "_journal", chunk_rows=100)
    seg.append(records_to_table(records(3) + records(5, start=3, endpoint="other")))
    seg.sync()
    assert count_predictions(root, "churn") == 3 and count_predictions(root, "other") == 5
    assert count_predictions(root, "churn", until="1h") == 0
    with pytest.raises(NotFoundError, match="endpoint 'nobody' has no logged predictions"):
        count_predictions(root, "nobody")
    seg.discard()


def _batch(rids: list[str], rows: list[int], matrix: np.ndarray, version: int = 1) -> dict[str, Any]:
    n = len(rids)
    return {
        "request_id": rids, "row": np.array(rows, dtype=np.int32), "ts": np.full(n, time.time()),
        "endpoint": "churn", "model_name": "churn", "model_version": version, "latency_ms": np.ones(n),
        "status": 200, "error": None,
        "inputs": MatrixColumns(["a", "b"], {"a": 0, "b": 1}, matrix),
        "outputs": {"predict": (matrix[:, 0] > 0).astype(int), "predict_proba": np.column_stack(
            [1 - matrix[:, 0] / 10, matrix[:, 0] / 10]), "classes": [0, 1]},
    }


def test_merged_columnar_batches_keep_every_row_and_its_fields() -> None:
    one = _batch(["r1", "r1", "r2"], [0, 1, 0], np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    two = _batch(["r3"], [0], np.array([[7.0, 8.0]]), version=2)
    table = records_to_table(merge_columnar([one, two]))
    assert table.column("request_id").to_pylist() == ["r1", "r1", "r2", "r3"]
    assert table.column("row").to_pylist() == [0, 1, 0, 0]
    assert table.column("model_version").to_pylist() == [1, 1, 1, 2]
    assert table.column("f_b").to_pylist() == [2.0, 4.0, 6.0, 8.0]
    assert table.column("proba_1").to_pylist() == pytest.approx([0.1, 0.3, 0.5, 0.7])
    assert table.column("status").to_pylist() == [200] * 4 and table.column("error").null_count == 4
    assert table.equals(records_to_table(merge_columnar([one, two])))
    separate = [records_to_table(b) for b in (one, two)]
    assert [table.slice(0, 3).column(c).to_pylist() for c in ("ts", "f_a")] == \
        [separate[0].column(c).to_pylist() for c in ("ts", "f_a")]
