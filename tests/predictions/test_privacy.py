"""Retention and erasure: partitions dropped by age; one subject's rows rewritten out atomically, audited by hash."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.metadata.audit import audit_log
from loopml.predictions import PredictionLog, count_predictions, query_predictions, record_feedback
from loopml.predictions._files import resolve_root
from loopml.predictions._privacy import apply_retention, erase_subject, set_retention, subject_hash


def _log(ws, endpoint: str, n: int, *, ts: datetime, start: int = 0) -> None:  # type: ignore[no-untyped-def]
    records = [{
        "request_id": f"r{start + i}", "ts": ts + timedelta(seconds=i), "endpoint": endpoint,
        "model_name": "churn", "model_version": 1,
        "inputs": {"customer_id": f"C{i % 3}", "tenure": float(i)}, "outputs": {"predict": [i % 2]},
        "latency_ms": 1.0, "status": 200, "error": None,
    } for i in range(n)]
    log = PredictionLog(ws.settings.resolved_predictions_url, flush_interval_s=0.05)
    log.submit(records)
    log.close()


def test_erase_one_subject_everywhere_and_audit_only_its_hash(workspace) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    _log(workspace, "churn", 9, ts=now - timedelta(hours=2))
    _log(workspace, "churn", 6, ts=now, start=100)
    _log(workspace, "fraud", 3, ts=now, start=200)
    record_feedback(workspace, "churn", [{"request_id": "r0", "label": 1}, {"request_id": "r1", "label": 0}])
    result = erase_subject(workspace.as_actor("dpo"), "f_customer_id", "C0")
    assert (result.prediction_rows, result.feedback_rows) == (3 + 2 + 1, 1)
    assert result.per_endpoint["fraud"] == {"prediction_rows": 1, "feedback_rows": 0}
    left = query_predictions(workspace, "churn")
    assert "C0" not in set(left["f_customer_id"]) and len(left) == 15 - 5
    root = resolve_root(workspace)
    assert not list(root.rglob("*.tmp"))  # nothing half-written left behind
    event = audit_log(workspace, action="privacy.erase")[0]
    assert event.actor == "dpo" and event.after["value_sha256"] == subject_hash("C0")
    assert "C0" not in json.dumps([event.after, event.before, event.object_id, event.reason])
    again = erase_subject(workspace, "f_customer_id", "C0")
    assert again.prediction_rows == 0 and again.files_rewritten == 0


def test_erase_by_request_id_removes_the_feedback_too_and_empty_files_go(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    ws = sqlite_workspace
    _log(ws, "churn", 1, ts=datetime.now(UTC), start=7)
    record_feedback(ws, "churn", [{"request_id": "r7", "label": 1}])
    result = erase_subject(ws, "request_id", "r7", endpoint="churn")
    assert (result.prediction_rows, result.feedback_rows, result.files_deleted) == (1, 1, 2)
    assert count_predictions(ws, "churn") == 0


def test_erase_input_is_checked(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="subject key column must be"):
        erase_subject(sqlite_workspace, " ", "x")
    with pytest.raises(ValidationError, match="value must not be empty"):
        erase_subject(sqlite_workspace, "f_customer_id", "")
    with pytest.raises(NotFoundError, match="endpoint 'nope' has no logged predictions"):
        erase_subject(sqlite_workspace, "f_customer_id", "C1", endpoint="nope")


def test_retention_drops_old_partitions_of_predictions_and_feedback(workspace) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    _log(workspace, "churn", 4, ts=now - timedelta(days=10))
    _log(workspace, "churn", 3, ts=now, start=50)
    record_feedback(workspace, "churn", [{"request_id": "r0", "label": 1}], now=now - timedelta(days=10))
    record_feedback(workspace, "churn", [{"request_id": "r50", "label": 1}], now=now)
    with pytest.raises(NotFoundError, match="endpoint 'churn' has no retention policy"):
        apply_retention(workspace, "churn")
    with pytest.raises(ValidationError, match=r"integer in 1\.\.36500"):
        set_retention(workspace, "churn", 0)
    set_retention(workspace, "churn", 7)
    [result] = apply_retention(workspace.as_actor("dpo"))
    assert (result.prediction_rows, result.feedback_rows) == (4, 1)
    assert count_predictions(workspace, "churn") == 3
    actions = [e.action for e in audit_log(workspace, newest_first=False) if e.action.startswith("privacy.")]
    assert actions == ["privacy.retention", "privacy.retention_apply"]
