"""The hash-chained audit log: reading, filtering, export, and tamper detection.

Tampering is done the way an attacker with database access would: plain SQL.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from loopml.kernel.exceptions import ValidationError
from loopml.kernel.types import utcnow
from loopml.metadata._orm import AuditEvent
from loopml.metadata.audit import audit_log, event_hash, export_audit, verify_audit


def _events(ws, n: int = 5, actor: str = "tester") -> None:  # type: ignore[no-untyped-def]
    for i in range(1, n + 1):
        with ws.store.write(actor) as tx:
            tx.audit("thing.change", "thing", f"t{i}", before={"v": i - 1}, after={"v": i}, reason=f"step {i}")


def _sql(ws, *statements: str) -> None:  # type: ignore[no-untyped-def]
    with ws.store.engine.begin() as conn:
        for stmt in statements:
            conn.execute(text(stmt))


def test_an_untouched_chain_verifies(workspace) -> None:  # type: ignore[no-untyped-def]
    _events(workspace)
    assert verify_audit(workspace) == []


def test_an_empty_log_verifies(workspace) -> None:  # type: ignore[no-untyped-def]
    assert verify_audit(workspace) == []


def test_an_edited_event_is_named(workspace) -> None:  # type: ignore[no-untyped-def]
    _events(workspace)
    _sql(workspace, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")
    problems = verify_audit(workspace)
    assert [(p.seq, p.kind) for p in problems] == [(3, "edited")]
    assert "event 3 (thing.change on thing:t3 by mallory) was edited" in problems[0].message


def test_an_edited_reason_is_detected(workspace) -> None:  # type: ignore[no-untyped-def]
    _events(workspace)
    _sql(workspace, "UPDATE audit_events SET reason = 'nothing to see' WHERE seq = 2")
    assert [(p.seq, p.kind) for p in verify_audit(workspace)] == [(2, "edited")]


def test_a_replaced_event_with_a_fresh_hash_is_detected(workspace) -> None:  # type: ignore[no-untyped-def]
    """Editing an event and recomputing its own hash still breaks the next link."""
    _events(workspace)
    with workspace.store.read() as s:
        row = s.get(AuditEvent, 2)
    forged = event_hash(seq=2, ts=row.ts, actor="mallory", action=row.action, object_type=row.object_type,
                        object_id=row.object_id, before=row.before, after=row.after, reason=row.reason,
                        prev_hash=row.prev_hash)
    _sql(workspace, f"UPDATE audit_events SET actor = 'mallory', hash = '{forged}' WHERE seq = 2")
    problems = verify_audit(workspace)
    assert [(p.seq, p.kind) for p in problems] == [(2, "edited")]
    assert "event 2 was replaced" in problems[0].message


def test_a_deleted_middle_event_is_named(workspace) -> None:  # type: ignore[no-untyped-def]
    _events(workspace)
    _sql(workspace, "DELETE FROM audit_events WHERE seq = 3")
    problems = verify_audit(workspace)
    assert [(p.seq, p.kind) for p in problems] == [(3, "deleted")]
    assert "event 3 deleted: the chain jumps from event 2 to event 4" in problems[0].message


def test_a_deleted_tail_is_named(workspace) -> None:  # type: ignore[no-untyped-def]
    _events(workspace)
    _sql(workspace, "DELETE FROM audit_events WHERE seq >= 4")
    problems = verify_audit(workspace)
    assert [(p.seq, p.kind) for p in problems] == [(4, "tail_deleted")]
    assert "events 4-5 deleted from the end of the log" in problems[0].message


def test_reordered_events_are_named(workspace) -> None:  # type: ignore[no-untyped-def]
    _events(workspace)
    _sql(
        workspace,
        "UPDATE audit_events SET seq = 1000 WHERE seq = 2",
        "UPDATE audit_events SET seq = 2 WHERE seq = 3",
        "UPDATE audit_events SET seq = 3 WHERE seq = 1000",
    )
    problems = verify_audit(workspace)
    assert [(p.seq, p.kind) for p in problems] == [(2, "reordered"), (3, "reordered")]
    assert "event 2 (thing.change on thing:t3 by tester) was moved: it was written as event 3" in problems[0].message
    assert "it was written as event 2" in problems[1].message


def test_a_deleted_head_is_named(workspace) -> None:  # type: ignore[no-untyped-def]
    _events(workspace, 2)
    _sql(workspace, "DELETE FROM audit_head")
    assert [p.kind for p in verify_audit(workspace)] == ["head_missing"]


def test_appending_after_verification_keeps_the_chain(workspace) -> None:  # type: ignore[no-untyped-def]
    _events(workspace, 2)
    assert verify_audit(workspace) == []
    _events(workspace, 2)
    assert verify_audit(workspace) == []
    assert [e.seq for e in audit_log(workspace)] == [4, 3, 2, 1]


def test_audit_log_filters(workspace) -> None:  # type: ignore[no-untyped-def]
    _events(workspace, 3, actor="alice")
    with workspace.store.write("bob") as tx:
        tx.audit("model.alias", "model_alias", "churn@champion", before=None, after={"version": 1})
        tx.audit("model.register", "model_version", "churn/1")
    assert [e.actor for e in audit_log(workspace, actor="bob")] == ["bob", "bob"]
    assert [e.action for e in audit_log(workspace, action="model")] == ["model.register", "model.alias"]
    assert [e.action for e in audit_log(workspace, action="model.*")] == ["model.register", "model.alias"]
    assert [e.action for e in audit_log(workspace, action="model.alias")] == ["model.alias"]
    assert [e.object for e in audit_log(workspace, object="thing:t2")] == ["thing:t2"]
    assert len(audit_log(workspace, object="thing")) == 3
    assert [e.object for e in audit_log(workspace, object="model_version:churn/*")] == ["model_version:churn/1"]
    assert [e.seq for e in audit_log(workspace, limit=2)] == [5, 4]
    assert [e.seq for e in audit_log(workspace, limit=2, newest_first=False)] == [1, 2]
    assert len(audit_log(workspace, since="1h")) == 5
    assert audit_log(workspace, since=utcnow() + timedelta(minutes=1)) == []
    assert audit_log(workspace, until=(utcnow() - timedelta(days=1)).isoformat()) == []


def test_audit_log_rejects_a_bad_time(workspace) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match=r"since 'yesterday' is not a time: use ISO 8601"):
        audit_log(workspace, since="yesterday")


def test_secrets_never_reach_the_log(workspace) -> None:  # type: ignore[no-untyped-def]
    with workspace.store.write("tester") as tx:
        tx.audit("endpoint.create", "endpoint", "e1", after={"url": "x", "api_key": "s3cret", "nested": {"password": "p"}})
    (event,) = audit_log(workspace)
    assert event.after == {"url": "x", "api_key": "***", "nested": {"password": "***"}}
    assert verify_audit(workspace) == []


def test_export_writes_json_lines_oldest_first(workspace, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _events(workspace, 3)
    out = tmp_path / "export" / "audit.jsonl"
    assert export_audit(workspace, out) == 3
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["seq"] for e in lines] == [1, 2, 3]
    assert lines[0]["object"] == "thing:t1" and lines[0]["after"] == {"v": 1}
    assert lines[1]["prev_hash"] == lines[0]["hash"]
    assert [p.name for p in out.parent.iterdir()] == ["audit.jsonl"]  # no temp file left


def test_export_to_an_unwritable_place_is_a_clear_error(sqlite_workspace, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValidationError, match="cannot write the audit export to"):
        export_audit(sqlite_workspace, blocker / "audit.jsonl")
