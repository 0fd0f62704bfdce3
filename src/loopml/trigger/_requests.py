"""The run-request queue: claimed by one runner at a time, finished with the run id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from loopml.kernel.exceptions import NotFoundError
from loopml.kernel.types import utcnow
from loopml.metadata._orm import RunRequest, Trigger
from loopml.trigger._triggers import RunRequestRecord, request_record
from loopml.workspace import Workspace

__all__ = ["claim_next_request", "finish_request"]


def claim_next_request(ws: Workspace, worker: str) -> tuple[RunRequestRecord, dict[str, Any], str | None] | None:
    """Take the oldest pending request: (request, the recipe spec to run, its path), or None.

    ``FOR UPDATE SKIP LOCKED`` lets several runners share the queue on
    PostgreSQL; on SQLite the write lock makes the claim exclusive.
    """
    with ws.store.write(worker) as tx:
        query = select(RunRequest).where(RunRequest.status == "pending").order_by(RunRequest.id).limit(1)
        query = query.with_for_update(skip_locked=True) if ws.store.dialect == "postgresql" else query
        row = tx.session.execute(query).scalar_one_or_none()
        if row is None:
            return None
        row.status, row.claimed_by, row.started_at = "running", worker, utcnow()
        trigger = tx.session.get(Trigger, row.trigger_id) if row.trigger_id else None
        recipe = dict(trigger.recipe) if trigger else {}
        return request_record(row), recipe, trigger.recipe_path if trigger else None


def finish_request(ws: Workspace, request_id: int, *, run_id: str | None, error: str | None = None) -> RunRequestRecord:
    """Mark a claimed request done; the run it started joins the lineage graph."""
    with ws.store.write(ws.actor) as tx:
        row = tx.session.get(RunRequest, request_id)
        if row is None:
            raise NotFoundError(f"run request {request_id} does not exist")
        row.status = "failed" if error else "succeeded"
        row.run_id, row.error, row.ended_at = run_id, error, utcnow()
        if run_id:
            tx.link(("run_request", row.id), "started", ("run", run_id))
        tx.audit("run_request.finish", "run_request", row.id, after={"status": row.status, "run_id": run_id, "error": error})
        return request_record(row)
