"""Reading the log: windows, model versions, columns, limits, errors, compaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.predictions import (
    PredictionLog,
    compact,
    count_predictions,
    list_endpoints,
    open_view,
    parse_time,
    query_predictions,
)
from tests.predictions.conftest import make_records

T0 = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)


@pytest.fixture
def log_root(tmp_path: Path) -> Path:
    root = tmp_path / "log"
    with PredictionLog(root) as log:
        # 10:30 .. 13:30 one row every 30 minutes (7 rows) for v1; three rows at 12:00 for v2
        log.submit(make_records(7, ts=T0, step=timedelta(minutes=30)))
        log.submit(make_records(3, start=100, version=2, ts=T0 + timedelta(minutes=90)))
        log.submit(make_records(2, start=200, endpoint="fraud", ts=T0))
    return root


def test_query_by_window_and_model_version(log_root: Path) -> None:
    df = query_predictions(log_root, "churn", since=T0 + timedelta(hours=1), until="2024-05-01T12:30:00Z")
    assert list(df["ts"].dt.strftime("%H:%M")) == ["11:30", "12:00", "12:00", "12:00", "12:00"]
    assert str(df["ts"].dt.tz) == "UTC"
    v2 = query_predictions(log_root, "churn", model_version=2)
    assert sorted(v2["request_id"]) == ["req-100", "req-101", "req-102"]
    assert count_predictions(log_root, "churn") == 10
    assert count_predictions(log_root, "churn", since=T0 + timedelta(hours=3)) == 1
    assert count_predictions(log_root, "churn", model_version=1, until=T0 + timedelta(minutes=1)) == 1


def test_partition_pruning_skips_hours_outside_the_window(log_root: Path) -> None:
    from loopml.predictions._query import prediction_files

    files = prediction_files(log_root, "churn", T0 + timedelta(hours=2), None)
    assert {f.parent.name for f in files} == {"hour=12", "hour=13"}


def test_columns_limit_and_the_known_columns(log_root: Path) -> None:
    df = query_predictions(log_root, "churn", columns=["request_id", "f_tenure", "prediction"], limit=3)
    assert list(df.columns) == ["request_id", "f_tenure", "prediction"] and len(df) == 3
    full = query_predictions(log_root, "churn", limit=1)
    for col in ("request_id", "row", "ts", "model_version", "latency_ms", "status", "f_tenure", "f_plan",
                "prediction", "proba_0", "proba_1", "endpoint"):
        assert col in full.columns
    with pytest.raises(ValidationError, match="column 'nope' is not in the log of 'churn'; columns: request_id"):
        query_predictions(log_root, "churn", columns=["nope"])


def test_unknown_endpoint_lists_the_known_ones(log_root: Path) -> None:
    assert list_endpoints(log_root) == ["churn", "fraud"]
    with pytest.raises(NotFoundError, match="endpoint 'spam' has no logged predictions .*known endpoints: 'churn', 'fraud'"):
        query_predictions(log_root, "spam")


def test_bad_since_and_until_name_the_field(log_root: Path) -> None:
    with pytest.raises(ValidationError, match="since 'last tuesday' is not a time") as info:
        query_predictions(log_root, "churn", since="last tuesday")
    assert info.value.field == "since"
    with pytest.raises(ValidationError, match=r"until \(.*\) must be after since") as info:
        count_predictions(log_root, "churn", since="2024-05-02", until="2024-05-01")
    assert info.value.field == "until"
    with pytest.raises(ValidationError, match="limit must be an integer >= 0"):
        query_predictions(log_root, "churn", limit=-1)


def test_relative_times() -> None:
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert parse_time("90m", "since", now=now) == now - timedelta(minutes=90)
    assert parse_time("2d", "since", now=now) == now - timedelta(days=2)
    assert parse_time("2024-05-01", "since") == datetime(2024, 5, 1, tzinfo=UTC)


def test_empty_window_gives_an_empty_frame(log_root: Path) -> None:
    df = query_predictions(log_root, "churn", since="2030-01-01")
    assert len(df) == 0 and "request_id" in df.columns


def test_open_view_aggregates_in_sql(log_root: Path) -> None:
    con = open_view(log_root, "churn", since=T0)
    try:
        rows = con.sql("SELECT model_version, count(*) FROM predictions GROUP BY 1 ORDER BY 1").fetchall()
    finally:
        con.close()
    assert rows == [(1, 7), (2, 3)]


def test_compact_merges_small_files_and_keeps_every_row(tmp_path: Path) -> None:
    root = tmp_path / "log"
    for i in range(4):  # four writers' worth of files in the same hour
        with PredictionLog(root) as log:
            log.submit(make_records(5, start=i * 5, ts=T0))
    hour = root / "endpoint=churn" / "date=2024-05-01" / "hour=10"
    assert len(list(hour.glob("*.parquet"))) == 4
    result = compact(root, "churn", "2024-05-01")
    assert (result.files_before, result.files_after, result.rows) == (4, 1, 20)
    assert len(list(hour.glob("*.parquet"))) == 1
    ids = query_predictions(root, "churn", columns=["request_id"])["request_id"]
    assert len(ids) == 20 and ids.is_unique
    with pytest.raises(ValidationError, match="date 'May 1' is not an ISO date"):
        compact(root, "churn", "May 1")


def test_readers_ignore_inputs_of_a_compaction_that_crashed_before_deleting(tmp_path: Path) -> None:
    import json
    import shutil

    root = tmp_path / "log"
    for i in range(2):
        with PredictionLog(root) as log:
            log.submit(make_records(3, start=i * 3, ts=T0))
    hour = root / "endpoint=churn" / "date=2024-05-01" / "hour=10"
    inputs = sorted(p.name for p in hour.glob("*.parquet"))
    saved = tmp_path / "saved"
    shutil.copytree(hour, saved)
    compact(root, "churn", "2024-05-01")
    output = next(hour.glob("*.parquet")).name
    for name in inputs:  # put the inputs back, as if the deletes never happened
        shutil.copy(saved / name, hour / name)
    (hour / "_compact-x.json").write_text(json.dumps({"output": output, "inputs": inputs}))
    assert count_predictions(root, "churn") == 6
    compact(root, "churn", "2024-05-01")
    assert len(list(hour.glob("*.parquet"))) == 1 and not list(hour.glob("_compact-*"))
