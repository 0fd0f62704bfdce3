"""Append-only audit log, hash-chained so an edit, deletion or reordering is detectable.

Each event's hash is sha256 over its canonical JSON (sequence number, time,
actor, action, object, before, after, reason) and the previous event's hash.
``audit_head`` holds the last sequence and hash; appending locks that row, so
appends are serial on every backend and a deleted tail is noticed too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loopml.kernel.types import utcnow
from loopml.metadata._orm import AuditEvent, AuditHead

__all__ = ["GENESIS_HASH", "ChainProblem", "append_event", "event_hash", "verify_chain"]

GENESIS_HASH = "0" * 64

#: Keys whose values never enter the audit log, whatever object they sit in.
_SECRET_KEYS = ("password", "secret", "token", "api_key", "apikey", "authorization", "credential")


def redact(value: Any) -> Any:
    """Replace secret-looking values so they never reach the log."""
    if isinstance(value, dict):
        return {
            k: ("***" if any(s in str(k).lower() for s in _SECRET_KEYS) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def event_hash(
    *,
    seq: int,
    ts: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    before: Any,
    after: Any,
    reason: str | None,
    prev_hash: str,
) -> str:
    body = _canonical(
        {
            "seq": seq,
            "ts": ts.isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "object": f"{object_type}:{object_id}",
            "before": before,
            "after": after,
            "reason": reason,
            "prev": prev_hash,
        }
    )
    return hashlib.sha256(body.encode()).hexdigest()


def append_event(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    before: Any = None,
    after: Any = None,
    reason: str | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction (locks the chain head)."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS_HASH)
        session.add(head)
        session.flush()
    # JSON round-trip so what we hash is exactly what the database returns later.
    before = json.loads(_canonical(redact(before))) if before is not None else None
    after = json.loads(_canonical(redact(after))) if after is not None else None
    ts = utcnow()
    seq = head.seq + 1
    digest = event_hash(
        seq=seq, ts=ts, actor=actor, action=action, object_type=object_type,
        object_id=object_id, before=before, after=after, reason=reason, prev_hash=head.hash,
    )
    row = AuditEvent(
        seq=seq, ts=ts, actor=actor, action=action, object_type=object_type, object_id=object_id,
        before=before, after=after, reason=reason, prev_hash=head.hash, hash=digest,
    )
    session.add(row)
    head.seq = seq
    head.hash = digest
    session.flush()
    return row


@dataclass(frozen=True)
class ChainProblem:
    """One break in the chain: which event, and what is wrong with it."""

    seq: int
    kind: str  # edited | deleted | reordered | tail_deleted
    message: str


def verify_chain(events: Iterable[AuditEvent], head: AuditHead | None) -> list[ChainProblem]:
    """Every break in the chain, in order; an empty list means the log is intact."""
    problems: list[ChainProblem] = []
    prev_hash = GENESIS_HASH
    expected_seq = 1
    by_hash: dict[str, int] = {}
    rows = list(events)
    for row in rows:
        by_hash[row.prev_hash] = row.seq
    for row in rows:
        recomputed = event_hash(
            seq=row.seq, ts=row.ts, actor=row.actor, action=row.action,
            object_type=row.object_type, object_id=row.object_id,
            before=row.before, after=row.after, reason=row.reason, prev_hash=row.prev_hash,
        )
        if recomputed != row.hash:
            problems.append(ChainProblem(row.seq, "edited", f"event {row.seq} ({row.action} on {row.object_type}:{row.object_id}) was edited: its content no longer matches its hash"))
        if row.seq != expected_seq:
            if row.seq > expected_seq:
                missing = f"{expected_seq}" if row.seq == expected_seq + 1 else f"{expected_seq}-{row.seq - 1}"
                problems.append(ChainProblem(expected_seq, "deleted", f"event(s) {missing} deleted: the chain jumps from {expected_seq - 1} to {row.seq}"))
            else:
                problems.append(ChainProblem(row.seq, "reordered", f"event {row.seq} is out of order (expected {expected_seq})"))
        elif row.prev_hash != prev_hash:
            problems.append(ChainProblem(row.seq, "reordered", f"event {row.seq} does not follow event {row.seq - 1}: its link to the previous hash is broken (reordered or replaced)"))
        prev_hash = row.hash
        expected_seq = row.seq + 1
    last_seq = rows[-1].seq if rows else 0
    if head is not None and (head.seq != last_seq or (rows and head.hash != rows[-1].hash)):
        if head.seq > last_seq:
            problems.append(ChainProblem(last_seq + 1, "tail_deleted", f"event(s) {last_seq + 1}-{head.seq} deleted from the end of the log"))
        else:
            problems.append(ChainProblem(last_seq, "edited", f"the chain head (seq {head.seq}) does not match the last event (seq {last_seq})"))
    return problems
