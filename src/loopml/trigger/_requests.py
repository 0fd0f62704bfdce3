"""The run-request queue: claimed by one runner at a time, finished with the run id and result.

A request comes from a trigger (it runs the trigger's recipe) or is submitted
with its own recipe (``loopml run`` against a server: the server's scheduler
runs it where the data and the store are, like a Kubeflow pipeline run).

A claim takes the lease ``run_request:<id>`` in the same transaction; the
runner renews it while the run goes on (``execute_next_request`` in the
scheduler). A runner that dies (killed scheduler, lost machine) stops
renewing, and once the lease has expired the next claim takes the request
again: a restart never loses a request left ``running`` by a dead runner.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.kernel.types import utcnow
from loopml.metadata._orm import Lease, RunRequest, Trigger
from loopml.trigger._triggers import RunRequestRecord, enqueue, request_record
from loopml.workspace import Workspace

__all__ = ["REQUEST_LEASE_TTL_S", "claim_next_request", "finish_request", "get_run_request", "record_progress",
           "request_lease", "submit_run"]

#: How long a claim holds without renewal before another runner may take the request over.
REQUEST_LEASE_TTL_S = 120.0


def request_lease(request_id: int) -> str:
    """The lease name a runner holds while it executes run request ``request_id``."""
    return f"run_request:{request_id}"


def submit_run(ws: Workspace, recipe: dict[str, Any], *, reason: str | None = None) -> RunRequestRecord:
    """Queue a run of ``recipe`` (a parsed recipe spec's JSON) for the scheduler, audited
    (``run_request.submit``) with who asked and why."""
    if not isinstance(recipe, dict) or not recipe.get("name"):
        raise ValidationError("recipe must be a recipe spec (a mapping with a name)", field="recipe", rule="type")
    context = {"type": "submitted", "by": ws.actor, "reason": reason, "recipe": recipe["name"]}
    with ws.store.write(ws.actor) as tx:
        row = enqueue(tx, None, context, utcnow(), recipe=recipe)
        return request_record(row)


def get_run_request(ws: Workspace, request_id: int) -> RunRequestRecord:
    """One run request, with its result once it finished."""
    with ws.store.read() as s:
        row = s.get(RunRequest, request_id)
        if row is None:
            raise NotFoundError(f"run request {request_id} does not exist")
        return request_record(row)


def record_progress(ws: Workspace, request_id: int, event: tuple[str, str, float | None]) -> None:
    """Add a step event (step, ``running`` or how it ended, seconds) to a running request; not audited
    (the run's own records say what happened), only there for whoever follows the request."""
    with ws.store.write(ws.actor) as tx:
        row = tx.session.get(RunRequest, request_id)
        if row is None:
            raise NotFoundError(f"run request {request_id} does not exist")
        events = list((row.progress or {}).get("events", []))
        row.progress = {"events": [*events, list(event)]}


def _orphan(session: Any, now: datetime, skip_locked: bool) -> RunRequest | None:
    """The oldest ``running`` request whose runner stopped renewing its lease."""
    query = select(RunRequest).where(RunRequest.status == "running").order_by(RunRequest.id)
    query = query.with_for_update(skip_locked=True) if skip_locked else query
    for row in session.execute(query).scalars():
        lease = session.get(Lease, request_lease(row.id))
        if lease is None or lease.expires_at <= now:
            return row
    return None


def claim_next_request(
    ws: Workspace, worker: str, *, lease_ttl_s: float = REQUEST_LEASE_TTL_S, now: datetime | None = None,
) -> tuple[RunRequestRecord, dict[str, Any], str | None] | None:
    """Take the oldest abandoned or pending request: (request, the recipe spec to run, its path), or None.

    A request is *abandoned* when it is ``running`` but its runner's lease
    (``lease_ttl_s``, renewed by the runner) has expired; it is taken over and
    the takeover is audited (``run_request.reclaim``). ``FOR UPDATE SKIP
    LOCKED`` lets several runners share the queue on PostgreSQL; on SQLite the
    write lock makes the claim exclusive.

    Raises:
        ValidationError: ``lease_ttl_s`` is not positive.
    """
    if not lease_ttl_s > 0:
        raise ValidationError(f"lease_ttl_s must be > 0 seconds, got {lease_ttl_s!r}", field="lease_ttl_s",
                              rule="range")
    now = now or utcnow()
    with ws.store.write(worker) as tx:
        skip = ws.store.dialect == "postgresql"
        row = _orphan(tx.session, now, skip)
        if row is not None:
            tx.audit("run_request.reclaim", "run_request", row.id,
                     before={"claimed_by": row.claimed_by, "started_at": row.started_at.isoformat()
                             if row.started_at else None},
                     after={"claimed_by": worker}, reason="the runner stopped renewing its lease")
        else:
            query = select(RunRequest).where(RunRequest.status == "pending").order_by(RunRequest.id).limit(1)
            query = query.with_for_update(skip_locked=True) if skip else query
            row = tx.session.execute(query).scalar_one_or_none()
            if row is None:
                return None
        row.status, row.claimed_by, row.started_at = "running", worker, now
        expires = now + timedelta(seconds=lease_ttl_s)
        lease = tx.session.get(Lease, request_lease(row.id))
        if lease is None:
            tx.session.add(Lease(name=request_lease(row.id), holder=worker, expires_at=expires))
        else:
            lease.holder, lease.expires_at = worker, expires
        if row.recipe:
            return request_record(row), dict(row.recipe), None
        trigger = tx.session.get(Trigger, row.trigger_id) if row.trigger_id else None
        recipe = dict(trigger.recipe) if trigger else {}
        return request_record(row), recipe, trigger.recipe_path if trigger else None


def finish_request(ws: Workspace, request_id: int, *, run_id: str | None, error: str | None = None,
                   result: dict[str, Any] | None = None) -> RunRequestRecord:
    """Mark a claimed request done (its lease is released); the run it started joins the lineage graph.

    ``result`` (JSON-safe) is kept on the request, so whoever submitted it sees what the run produced.
    """
    with ws.store.write(ws.actor) as tx:
        row = tx.session.get(RunRequest, request_id)
        if row is None:
            raise NotFoundError(f"run request {request_id} does not exist")
        row.status = "failed" if error else "succeeded"
        row.run_id, row.error, row.ended_at, row.result = run_id, error, utcnow(), result
        lease = tx.session.get(Lease, request_lease(request_id))
        if lease is not None:
            tx.session.delete(lease)
        if run_id:
            tx.link(("run_request", row.id), "started", ("run", run_id))
        tx.audit("run_request.finish", "run_request", row.id, after={"status": row.status, "run_id": run_id, "error": error})
        return request_record(row)
