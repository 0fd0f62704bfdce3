"""Ground truth: stored by request id, joined later, latest label wins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from loopml.kernel.exceptions import ValidationError
from loopml.predictions import PredictionLog, feedback_files, join_feedback, record_feedback
from tests.predictions.conftest import make_records

T0 = datetime(2024, 5, 1, 10, tzinfo=UTC)


def test_join_keeps_the_latest_label_per_request(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    ws = sqlite_workspace
    with PredictionLog(ws.settings.resolved_predictions_url) as log:
        log.submit(make_records(4, ts=T0, step=timedelta(minutes=1)))
    record_feedback(ws, "churn", {"request_id": "req-1", "label": 0, "ts": T0 + timedelta(hours=1)})
    bulk = pd.DataFrame({"request_id": ["req-1", "req-2"], "label": [1, 1],
                         "ts": [T0 + timedelta(hours=2), T0 + timedelta(hours=2)]})
    result = record_feedback(ws, "churn", bulk)
    assert result.rows == 2 and len(feedback_files(ws, "churn")) == 2
    df = join_feedback(ws, "churn", since=T0, until=T0 + timedelta(days=1)).set_index("request_id")
    assert len(df) == 4
    assert df.loc["req-1", "label"] == 1  # the later label corrected the earlier one
    assert df.loc["req-2", "label"] == 1
    assert pd.isna(df.loc["req-0", "label"]) and pd.isna(df.loc["req-3", "label"])
    assert df.loc["req-1", "label_ts"] == pd.Timestamp(T0 + timedelta(hours=2))
    assert "prediction" in df.columns and "f_tenure" in df.columns


def test_join_without_any_feedback_has_empty_labels(tmp_path: Path) -> None:
    with PredictionLog(tmp_path) as log:
        log.submit(make_records(2, ts=T0))
    df = join_feedback(tmp_path, "churn")
    assert len(df) == 2 and df["label"].isna().all()


def test_labels_for_rows_of_a_multi_row_request(tmp_path: Path) -> None:
    rec = {"request_id": "multi", "ts": T0, "endpoint": "churn", "model_name": "m", "model_version": 1,
           "inputs": {"x": [1.0, 2.0]}, "outputs": {"predict": [0, 1]}, "latency_ms": 1.0, "status": 200}
    with PredictionLog(tmp_path) as log:
        log.submit([rec])
    record_feedback(tmp_path, "churn", [{"request_id": "multi", "row": 1, "label": 1}])
    df = join_feedback(tmp_path, "churn").sort_values("row")
    assert df["label"].isna().tolist() == [True, False]


def test_bad_feedback_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="feedback item 0 has no 'label'") as info:
        record_feedback(tmp_path, "churn", [{"request_id": "a"}])
    assert info.value.field == "label"
    with pytest.raises(ValidationError, match="feedback row 0: request_id is empty"):
        record_feedback(tmp_path, "churn", [{"request_id": "", "label": 1}])
    with pytest.raises(ValidationError, match="feedback needs a 'request_id' column"):
        record_feedback(tmp_path, "churn", pd.DataFrame({"id": ["a"], "label": [1]}))
    with pytest.raises(ValidationError, match="feedback has no rows"):
        record_feedback(tmp_path, "churn", [])
    with pytest.raises(ValidationError, match="endpoint '../x' is invalid"):
        record_feedback(tmp_path, "../x", [{"request_id": "a", "label": 1}])
