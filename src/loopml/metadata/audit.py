"""Append-only audit log, hash-chained so an edit, deletion or reordering is detectable.

Each event's hash is sha256 over its canonical JSON (sequence number, time,
actor, action, object, before, after, reason) and the previous event's hash.
``audit_head`` holds the last sequence and hash; appending locks that row, so
appends are serial on every backend and a deleted tail is noticed too.

The chain is tamper-*evident*, not tamper-proof: someone with write access to
the database who rewrites every later hash and the head can forge a history.
Exporting the log (:func:`export_audit`) to a write-once place pins it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from loopml.kernel.exceptions import ValidationError
from loopml.kernel.types import utcnow
from loopml.metadata._orm import AuditEvent, AuditHead

if TYPE_CHECKING:
    from loopml.metadata.store import MetadataStore

__all__ = [
    "GENESIS_HASH",
    "AuditRecord",
    "ChainProblem",
    "append_event",
    "audit_log",
    "event_hash",
    "export_audit",
    "parse_time",
    "redact",
    "verify_audit",
    "verify_chain",
]

GENESIS_HASH = "0" * 64

#: Keys whose values never enter the audit log, whatever object they sit in.
_SECRET_KEYS = ("password", "secret", "token", "api_key", "apikey", "authorization", "credential")

#: How far back :func:`verify_chain` follows links to tell a moved event from an edited one.
_MAX_LINK_WALK = 256
_PAGE = 1000


class HasStore(Protocol):
    """Anything with a metadata store: a ``Workspace`` (metadata cannot import it)."""

    @property
    def store(self) -> MetadataStore: ...


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


# Built once: Core statements with bound parameters compile once and hit the
# statement cache, where ``.values(**row)`` would rebuild the statement every time.
_HEAD = AuditHead.__table__
_SELECT_HEAD = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1).with_for_update()
_UPDATE_HEAD = update(_HEAD).where(_HEAD.c.id == 1).values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
_INSERT_EVENT = insert(AuditEvent.__table__)


def _lock_head(conn: Connection) -> tuple[int, str]:
    """``(seq, hash)`` of the chain head, its row locked until the transaction ends.

    Core statements on the session's connection: the head is read and written
    once per write transaction, and the ORM's identity map and unit of work
    cost more than the statements themselves.
    """
    head = conn.execute(_SELECT_HEAD).first()
    if head is None:
        # Two first writers on PostgreSQL would both insert id=1: the loser of
        # ON CONFLICT DO NOTHING waits for the winner, then locks its row.
        from loopml.metadata.store import dialect_insert

        upsert = dialect_insert(conn.dialect.name)
        conn.execute(upsert(_HEAD).values(id=1, seq=0, hash=GENESIS_HASH).on_conflict_do_nothing())
        head = conn.execute(_SELECT_HEAD).one()
    return int(head.seq), str(head.hash)


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
) -> dict[str, Any]:
    """Append one event in the caller's transaction (locks the chain head).

    The caller's pending changes are flushed first, so the head stays locked
    for the shortest time. Returns the event's column values as written (the
    row is inserted with a Core statement, not through the session, so no ORM
    object is built for it).
    """
    session.flush()
    conn = session.connection()
    prev_seq, prev_hash = _lock_head(conn)
    # JSON round-trip so what we hash is exactly what the database returns later.
    before = json.loads(_canonical(redact(before))) if before is not None else None
    after = json.loads(_canonical(redact(after))) if after is not None else None
    ts = utcnow()
    seq = prev_seq + 1
    digest = event_hash(
        seq=seq, ts=ts, actor=actor, action=action, object_type=object_type,
        object_id=object_id, before=before, after=after, reason=reason, prev_hash=prev_hash,
    )
    values = {
        "seq": seq, "ts": ts, "actor": actor, "action": action, "object_type": object_type,
        "object_id": object_id, "before": before, "after": after, "reason": reason,
        "prev_hash": prev_hash, "hash": digest,
    }
    conn.execute(_INSERT_EVENT, values)
    conn.execute(_UPDATE_HEAD, {"new_seq": seq, "new_hash": digest})
    return values


# ---------------------------------------------------------------------------
# verification


@dataclass(frozen=True)
class ChainProblem:
    """One break in the chain: which event, and what is wrong with it.

    ``kind`` is one of ``edited`` (content no longer matches its hash, or the
    event was replaced), ``deleted`` (a gap in the middle), ``reordered`` (an
    intact event sits at another position), ``tail_deleted`` (events after the
    last one are gone), ``inserted`` (events beyond the head) or
    ``head_missing`` (the chain head row is gone).
    """

    seq: int
    kind: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "message": self.message}


def _recompute(row: AuditEvent, seq: int) -> str:
    return event_hash(
        seq=seq, ts=row.ts, actor=row.actor, action=row.action,
        object_type=row.object_type, object_id=row.object_id,
        before=row.before, after=row.after, reason=row.reason, prev_hash=row.prev_hash,
    )


def _describe(row: AuditEvent) -> str:
    return f"{row.action} on {row.object_type}:{row.object_id} by {row.actor}"


def _original_seq(row: AuditEvent, lookup: Callable[[str], AuditEvent | None]) -> int | None:
    """The position an intact event was written at, found by walking its links back.

    An event's hash commits to its sequence number, so an event that fails at
    its current position may still be intact at its original one: the number
    of links between it and the nearest intact ancestor says which.
    """
    chain: list[AuditEvent] = []
    cur = row
    base: int | None = None
    for _ in range(_MAX_LINK_WALK):
        if cur.prev_hash == GENESIS_HASH:
            base = 0
            break
        pred = lookup(cur.prev_hash)
        if pred is None:
            return None
        if _recompute(pred, pred.seq) == pred.hash:
            base = pred.seq
            break
        chain.append(pred)
        cur = pred
    if base is None:
        return None
    seq = base
    for ancestor in reversed(chain):
        seq += 1
        if _recompute(ancestor, seq) != ancestor.hash:
            return None
    seq += 1
    return seq if _recompute(row, seq) == row.hash else None


def verify_chain(
    events: Iterable[AuditEvent],
    head: AuditHead | None,
    *,
    lookup: Callable[[str], AuditEvent | None] | None = None,
) -> list[ChainProblem]:
    """Every break in the chain, in order; an empty list means the log is intact.

    ``events`` must be ordered by ``seq``. ``lookup`` finds an event by its
    hash; with it, a moved event is told apart from an edited one.
    """
    if lookup is None:
        rows = list(events)
        index = {r.hash: r for r in rows}
        lookup = index.get
        events = rows
    problems: list[ChainProblem] = []
    prev: AuditEvent | None = None
    prev_flagged = False
    for row in events:
        expected_seq = (prev.seq if prev is not None else 0) + 1
        flagged = False
        if _recompute(row, row.seq) != row.hash:
            flagged = True
            original = _original_seq(row, lookup)
            if original is not None:
                problems.append(ChainProblem(
                    row.seq, "reordered",
                    f"event {row.seq} ({_describe(row)}) was moved: it was written as event {original}",
                ))
            else:
                problems.append(ChainProblem(
                    row.seq, "edited",
                    f"event {row.seq} ({_describe(row)}) was edited: its content no longer matches its hash",
                ))
        elif row.seq > expected_seq:
            # A gap. If the missing predecessor still exists elsewhere it was
            # moved, and is reported where it now sits.
            if lookup(row.prev_hash) is None or row.prev_hash == GENESIS_HASH:
                missing = (
                    f"event {expected_seq}" if row.seq == expected_seq + 1
                    else f"events {expected_seq}-{row.seq - 1}"
                )
                problems.append(ChainProblem(
                    expected_seq, "deleted",
                    f"{missing} deleted: the chain jumps from event {expected_seq - 1} to event {row.seq}",
                ))
        else:
            want = prev.hash if prev is not None else GENESIS_HASH
            if row.prev_hash != want and not prev_flagged:
                bad = prev.seq if prev is not None else row.seq
                problems.append(ChainProblem(
                    bad, "edited",
                    f"event {bad} was replaced: event {row.seq} ({_describe(row)}) "
                    "no longer links to it",
                ))
        prev, prev_flagged = row, flagged
    last_seq = prev.seq if prev is not None else 0
    if head is None:
        if prev is not None:
            problems.append(ChainProblem(
                last_seq, "head_missing",
                "the audit chain head is missing: a deleted tail could not be detected",
            ))
    elif head.seq > last_seq:
        span = f"event {head.seq}" if head.seq == last_seq + 1 else f"events {last_seq + 1}-{head.seq}"
        problems.append(ChainProblem(
            last_seq + 1, "tail_deleted",
            f"{span} deleted from the end of the log (the head says {head.seq}, the last event is {last_seq})",
        ))
    elif head.seq < last_seq:
        problems.append(ChainProblem(
            head.seq + 1, "inserted",
            f"events {head.seq + 1}-{last_seq} were added outside the audit log (the head says {head.seq})",
        ))
    elif prev is not None and head.hash != prev.hash and not prev_flagged:
        problems.append(ChainProblem(
            last_seq, "edited",
            f"event {last_seq} was replaced: it no longer matches the chain head",
        ))
    return problems


def _iter_events(session: Session) -> Iterator[AuditEvent]:
    """All events by seq, a page at a time (keyset pagination keeps memory flat)."""
    after: int | None = None
    while True:
        stmt = select(AuditEvent).order_by(AuditEvent.seq).limit(_PAGE)
        if after is not None:
            stmt = stmt.where(AuditEvent.seq > after)
        page = list(session.execute(stmt).scalars())
        if not page:
            return
        after = page[-1].seq
        yield from page
        session.expunge_all()  # keep the identity map (and memory) to one page


def verify_audit(ws: HasStore) -> list[ChainProblem]:
    """Check the whole audit chain of a workspace; an empty list means intact."""
    with ws.store.read() as session:
        head = session.get(AuditHead, 1)

        def lookup(digest: str) -> AuditEvent | None:
            return session.execute(select(AuditEvent).where(AuditEvent.hash == digest)).scalar_one_or_none()

        return verify_chain(_iter_events(session), head, lookup=lookup)


# ---------------------------------------------------------------------------
# reading and exporting


@dataclass(frozen=True)
class AuditRecord:
    """One audit event, as the API returns it."""

    seq: int
    ts: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    before: Any
    after: Any
    reason: str | None
    prev_hash: str
    hash: str

    @property
    def object(self) -> str:
        return f"{self.object_type}:{self.object_id}"

    @classmethod
    def from_row(cls, row: AuditEvent) -> AuditRecord:
        return cls(
            seq=row.seq, ts=row.ts, actor=row.actor, action=row.action,
            object_type=row.object_type, object_id=row.object_id, before=row.before,
            after=row.after, reason=row.reason, prev_hash=row.prev_hash, hash=row.hash,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "ts": self.ts.isoformat(), "actor": self.actor, "action": self.action,
            "object": self.object, "object_type": self.object_type, "object_id": self.object_id,
            "before": self.before, "after": self.after, "reason": self.reason,
            "prev_hash": self.prev_hash, "hash": self.hash,
        }


_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(value: datetime | str | None, field: str = "since") -> datetime | None:
    """An aware UTC time from a datetime, an ISO 8601 string, or ``30m``/``2h``/``7d`` ago."""
    if value is None or isinstance(value, datetime):
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value
    text = value.strip()
    rel = _RELATIVE.match(text)
    if rel:
        return utcnow() - timedelta(**{_UNITS[rel.group(2)]: int(rel.group(1))})
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"{field} {value!r} is not a time: use ISO 8601 (2026-01-31T12:00) or an age like 30m, 2h, 7d",
            field=field, rule="time",
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _filtered(
    *,
    actor: str | None,
    action: str | None,
    object: str | None,  # noqa: A002 - the public keyword is ``object``
    since: datetime | str | None,
    until: datetime | str | None,
) -> Any:
    stmt = select(AuditEvent)
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    if action:
        # ``model`` or ``model.*`` selects every model action; ``model.alias`` just one.
        if action.endswith(".*") or "." not in action:
            stmt = stmt.where(AuditEvent.action.like(action.removesuffix(".*") + ".%"))
        else:
            stmt = stmt.where(AuditEvent.action == action)
    if object:
        otype, sep, oid = object.partition(":")
        stmt = stmt.where(AuditEvent.object_type == otype)
        if sep and oid.endswith("*"):
            stmt = stmt.where(AuditEvent.object_id.like(oid[:-1].replace("%", r"\%") + "%", escape="\\"))
        elif sep:
            stmt = stmt.where(AuditEvent.object_id == oid)
    start = parse_time(since, "since")
    end = parse_time(until, "until")
    if start is not None:
        stmt = stmt.where(AuditEvent.ts >= start)
    if end is not None:
        stmt = stmt.where(AuditEvent.ts <= end)
    return stmt


def audit_log(
    ws: HasStore,
    *,
    actor: str | None = None,
    action: str | None = None,
    object: str | None = None,  # noqa: A002
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    limit: int | None = 100,
    newest_first: bool = True,
) -> list[AuditRecord]:
    """Audit events matching every given filter, newest first by default.

    ``object`` is ``TYPE`` or ``TYPE:ID`` (``ID`` may end in ``*``);
    ``action`` is exact (``model.alias``) or a noun (``model``, ``model.*``);
    ``since``/``until`` take a datetime, ISO 8601 or an age (``2h``, ``7d``).
    """
    if limit is not None and limit < 1:
        raise ValidationError(f"limit must be at least 1, got {limit}", field="limit", rule="min")
    stmt = _filtered(actor=actor, action=action, object=object, since=since, until=until)
    stmt = stmt.order_by(AuditEvent.seq.desc() if newest_first else AuditEvent.seq)
    if limit is not None:
        stmt = stmt.limit(limit)
    with ws.store.read() as session:
        return [AuditRecord.from_row(r) for r in session.execute(stmt).scalars()]


def export_audit(ws: HasStore, path: str | os.PathLike[str]) -> int:
    """Write the whole log to ``path`` as JSON Lines, oldest first; returns the count.

    Written to a temporary file and renamed, so a reader never sees half a log.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".audit-", suffix=".jsonl", dir=target.parent)
    except OSError as exc:
        raise ValidationError(
            f"cannot write the audit export to {str(target)!r}: {exc.strerror or exc}",
            field="path", rule="writable",
        ) from exc
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out, ws.store.read() as session:
            for row in _iter_events(session):
                out.write(json.dumps(AuditRecord.from_row(row).to_dict(), sort_keys=True, default=str) + "\n")
                count += 1
        os.replace(tmp, target)
    except OSError as exc:
        raise ValidationError(
            f"cannot write the audit export to {str(target)!r}: {exc.strerror or exc}",
            field="path", rule="writable",
        ) from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return count
