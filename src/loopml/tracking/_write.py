"""Core (not ORM) writes of the tracking hot path, inside a caller's transaction.

Why Core: an ORM flush of one audit row costs ~0.6 ms on SQLite, more than a
whole run's bookkeeping may take; executemany inserts of plain tuples cost a
few microseconds per row. Everything here runs inside one
``ws.store.write(...)`` transaction opened by the caller.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, exc as sa_exc, insert, or_, select, update
from sqlalchemy.engine import Connection

from loopml.kernel.exceptions import NotFoundError
from loopml.kernel.types import utcnow
from loopml.metadata._orm import AuditEvent, AuditHead, Metric, Param, Run, RunArtifact
from loopml.metadata._orm.runs import LatestMetric
from loopml.metadata.audit import GENESIS_HASH, event_hash, redact
from loopml.metadata.lineage import add_edge
from loopml.metadata.store import dialect_insert, translate_errors
from loopml.tracking._records import ArtifactRef

if TYPE_CHECKING:
    from loopml.metadata.store import MetadataStore

__all__ = ["append_audit", "execute", "link", "run_exists", "write_connection", "write_pending"]

RUNS = Run.__table__
PARAMS = Param.__table__
METRICS = Metric.__table__
LATEST = LatestMetric.__table__
ARTIFACTS = RunArtifact.__table__
_EVENTS = AuditEvent.__table__
_HEAD = AuditHead.__table__

#: A buffered metric point: (key, value or None for NaN, step, unix seconds).
Point = tuple[str, float | None, int, float]


# Statements are built once: building ``.values(...)`` per call costs more than
# executing it (cache-key generation), so parameters go in at execute time.
INSERT_RUN = insert(RUNS)
_SELECT_HEAD = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1).with_for_update()
_INSERT_EVENT = insert(_EVENTS)
_UPDATE_HEAD = update(_HEAD).where(_HEAD.c.id == 1)
_INSERT_METRICS = insert(METRICS)
_UPDATE_RUN = update(RUNS).where(RUNS.c.id == bindparam("b_run_id"))
_SELECT_TAGS = select(RUNS.c.tags).where(RUNS.c.id == bindparam("b_run_id")).with_for_update()
_SELECT_RUN = select(RUNS.c.id).where(RUNS.c.id == bindparam("b_run_id"))
_UPSERTS: dict[tuple[str, str], Any] = {}


def _upsert(conn: Connection, what: str) -> Any:
    """The dialect's upsert for params/head (keep first), artifacts (replace), latest metrics (forward)."""
    dialect = "postgresql" if conn.dialect.name == "postgresql" else "sqlite"
    stmt = _UPSERTS.get((what, dialect))
    if stmt is None:
        ins = dialect_insert(dialect)
        if what == "params":
            stmt = ins(PARAMS).on_conflict_do_nothing()
        elif what == "head":
            stmt = ins(_HEAD).on_conflict_do_nothing()
        elif what == "artifacts":
            base = ins(ARTIFACTS)
            stmt = base.on_conflict_do_update(
                index_elements=[ARTIFACTS.c.run_id, ARTIFACTS.c.name],
                set_={"digest": base.excluded.digest, "size": base.excluded.size,
                      "media_type": base.excluded.media_type},
            )
        else:
            # Only move forward: a late batch from another writer never rewinds it.
            base = ins(LATEST)
            ex = base.excluded
            stmt = base.on_conflict_do_update(
                index_elements=[LATEST.c.run_id, LATEST.c.key],
                set_={"value": ex.value, "step": ex.step, "ts": ex.ts},
                where=or_(ex.step > LATEST.c.step, and_(ex.step == LATEST.c.step, ex.ts >= LATEST.c.ts)),
            )
        _UPSERTS[(what, dialect)] = stmt
    return stmt


def _canonical_json(value: Any) -> Any:
    # The same canonical round trip as loopml.metadata.audit: what is hashed is
    # exactly what the database gives back later, so verify_chain agrees.
    return json.loads(json.dumps(redact(value), sort_keys=True, separators=(",", ":"), default=str))


class _Compiled:
    """A statement compiled once for SQLite: SQL text, parameter order, bind processors."""

    __slots__ = ("defaults", "names", "procs", "sql")

    def __init__(self, stmt: Any, conn: Connection, keys: Sequence[str] | None) -> None:
        compiled = stmt.compile(dialect=conn.dialect, column_keys=list(keys) if keys is not None else None)
        self.sql = compiled.string
        self.names = tuple(compiled.positiontup or ())
        procs = compiled._bind_processors  # SQLAlchemy 2.x: name -> type's bind processor
        self.procs = tuple(procs.get(n) for n in self.names)
        self.defaults = dict(compiled.params)


#: Keyed by the id of a module-level statement (they live as long as the process).
_COMPILED: dict[tuple[int, tuple[str, ...]], _Compiled] = {}


def execute(conn: Connection, stmt: Any, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Any:
    """``conn.execute(stmt, params)``; on SQLite straight on the DBAPI cursor.

    Why: SQLAlchemy spends ~60-80 µs of Python per execute (events, parameter
    processing, result setup), several times what SQLite needs; a run's start
    and end are ~10 statements. The statement is still built and compiled by
    SQLAlchemy (once), and its own type processors convert the values, so the
    rows are exactly what ``conn.execute`` would write. Returns the cursor
    (SQLite) or the result (other backends); both have ``rowcount``/``fetchone``.
    """
    if conn.dialect.name != "sqlite":
        return conn.execute(stmt, params)
    many = not isinstance(params, Mapping)
    rows: Sequence[Mapping[str, Any]] = params if many else [params]  # type: ignore[list-item,assignment]
    if not rows:
        return None
    keys = tuple(rows[0])  # INSERT/UPDATE columns; ignored by SELECT
    comp = _COMPILED.get((id(stmt), keys))
    if comp is None:
        comp = _COMPILED[(id(stmt), keys)] = _Compiled(stmt, conn, keys)
    names, procs, defaults = comp.names, comp.procs, comp.defaults
    tuples = [
        tuple(
            (proc(row[n] if n in row else defaults.get(n)) if proc else (row[n] if n in row else defaults.get(n)))
            for n, proc in zip(names, procs, strict=True)
        )
        for row in rows
    ]
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if many:
            cursor.executemany(comp.sql, tuples)
        else:
            cursor.execute(comp.sql, tuples[0])
    except sqlite3.IntegrityError as exc:
        raise sa_exc.IntegrityError(comp.sql, tuples[0], exc) from exc
    except sqlite3.OperationalError as exc:
        raise sa_exc.OperationalError(comp.sql, tuples[0], exc) from exc
    except sqlite3.Error as exc:
        raise sa_exc.DBAPIError(comp.sql, tuples[0], exc) from exc
    return cursor


@contextmanager
def write_connection(store: MetadataStore) -> Iterator[Connection]:
    """One write transaction on a bare Core connection; commits on success.

    The same transaction ``store.write()`` opens (``BEGIN IMMEDIATE`` on SQLite,
    errors translated), minus the ORM Session, which costs ~0.1 ms per run and
    brings nothing to Core statements.
    """
    with translate_errors(), store.engine.connect() as conn:
        conn.execution_options(loopml_write=True)
        with conn.begin():
            yield conn


def link(conn: Connection, src: tuple[str, str], relation: str, dst: tuple[str, str]) -> None:
    """A lineage edge in this transaction (through the lineage module's own insert)."""
    from sqlalchemy.orm import Session

    with Session(bind=conn) as session:
        add_edge(session, src, relation, dst)


# Mirrors loopml.metadata.audit.append_event row for row (same hash inputs, same
# head lock) in Core: the ORM path costs ~0.6 ms per event. Tests verify the chain.
def append_audit(
    conn: Connection,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    *,
    before: Any = None,
    after: Any = None,
    reason: str | None = None,
) -> None:
    """Append one hash-chained audit event with Core statements (same chain as ``Tx.audit``)."""
    head = execute(conn, _SELECT_HEAD, {}).fetchone()
    if head is None:
        # Two first writers on PostgreSQL would both insert id=1: the loser of
        # ON CONFLICT DO NOTHING waits for the winner, then locks its row.
        execute(conn, _upsert(conn, "head"), {"id": 1, "seq": 0, "hash": GENESIS_HASH})
        head = execute(conn, _SELECT_HEAD, {}).fetchone()
    prev_seq, prev_hash = head
    before = _canonical_json(before) if before is not None else None
    after = _canonical_json(after) if after is not None else None
    ts = utcnow()
    seq = prev_seq + 1
    digest = event_hash(
        seq=seq, ts=ts, actor=actor, action=action, object_type=object_type,
        object_id=object_id, before=before, after=after, reason=reason, prev_hash=prev_hash,
    )
    execute(
        conn,
        _INSERT_EVENT,
        {"seq": seq, "ts": ts, "actor": actor, "action": action, "object_type": object_type,
         "object_id": object_id, "before": before, "after": after, "reason": reason,
         "prev_hash": prev_hash, "hash": digest},
    )
    execute(conn, _UPDATE_HEAD, {"seq": seq, "hash": digest})


def run_exists(conn: Connection, run_id: str, *, lock: bool = False) -> bool:
    stmt = _SELECT_RUN.with_for_update() if lock else _SELECT_RUN
    return execute(conn, stmt, {"b_run_id": run_id}).fetchone() is not None


def write_pending(
    conn: Connection,
    run_id: str,
    *,
    params: Mapping[str, str] | None = None,
    points: Sequence[Point] = (),
    tags: Mapping[str, str] | None = None,
    artifacts: Iterable[ArtifactRef] = (),
    finish: Mapping[str, Any] | None = None,
) -> None:
    """Write buffered params, metric points, tags, artifacts (and the end state) of one run."""
    if params:
        execute(
            conn,
            _upsert(conn, "params"),
            [{"run_id": run_id, "key": k, "value": v} for k, v in params.items()],
        )
    if points:
        execute(
            conn,
            _INSERT_METRICS,
            [{"run_id": run_id, "key": k, "value": v, "step": s, "ts": t} for k, v, s, t in points],
        )
        _update_latest(conn, run_id, points)
    arts = list(artifacts)
    if arts:
        execute(conn, _upsert(conn, "artifacts"), [{"run_id": run_id, "name": a.name, "digest": a.digest, "size": a.size,
                             "media_type": a.media_type} for a in arts])
    values: dict[str, Any] = dict(finish or {})
    if tags:
        current = conn.execute(_SELECT_TAGS, {"b_run_id": run_id}).scalar_one_or_none()
        values["tags"] = {**(current or {}), **tags}
    if values:
        result = execute(conn, _UPDATE_RUN, {"b_run_id": run_id, **values})
        if result.rowcount == 0:
            raise NotFoundError(f"run {run_id!r} not found: it was deleted while logging")


def _update_latest(conn: Connection, run_id: str, points: Sequence[Point]) -> None:
    # One row per key: the batch's highest step, then latest time.
    best: dict[str, Point] = {}
    for p in points:
        cur = best.get(p[0])
        if cur is None or (p[2], p[3]) >= (cur[2], cur[3]):
            best[p[0]] = p
    execute(
        conn,
        _upsert(conn, "latest"),
        [{"run_id": run_id, "key": k, "value": v, "step": s, "ts": t} for k, v, s, t in best.values()],
    )
