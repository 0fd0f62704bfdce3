"""``/audit``: the log with filters, chain verification, JSON Lines export."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from loopml.metadata.audit import audit_log, export_audit, verify_audit
from loopml.server._auth import Ctx, allow
from loopml.server._errors import ERROR_RESPONSES
from loopml.server._pagination import Page, PageParams, page_params, page_probe
from loopml.server._schemas import AuditEventOut, AuditVerifyOut

router = APIRouter(prefix="/audit", tags=["audit"], responses=ERROR_RESPONSES)


@router.get("", response_model=Page[AuditEventOut], summary="Audit events matching every filter")
def log(
    actor: str | None = Query(None, max_length=128),
    action: str | None = Query(None, max_length=128, description="model.alias, or a noun: model, model.*"),
    object: str | None = Query(None, max_length=300, description="TYPE or TYPE:ID (ID may end in *)"),
    since: str | None = Query(None, max_length=64, description="ISO 8601 or an age: 30m, 2h, 7d"),
    until: str | None = Query(None, max_length=64),
    oldest_first: bool = Query(False),
    page: PageParams = Depends(page_params),
    ctx: Ctx = Depends(allow("audit.read")),
) -> dict[str, Any]:
    found = audit_log(ctx.ws, actor=actor, action=action, object=object, since=since, until=until,
                      limit=page.offset + page.limit + 1, newest_first=not oldest_first)
    return page_probe(found, page)


@router.get("/verify", response_model=AuditVerifyOut, summary="Check the hash chain")
def verify(ctx: Ctx = Depends(allow("audit.read"))) -> dict[str, Any]:
    problems = verify_audit(ctx.ws)
    return {"ok": not problems, "problems": [p.to_dict() for p in problems]}


@router.get("/export", summary="The whole log as JSON Lines, oldest first",
            responses={200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}})
def export(ctx: Ctx = Depends(allow("audit.read"))) -> FileResponse:
    fd, path = tempfile.mkstemp(prefix="loopml-audit-", suffix=".jsonl")
    os.close(fd)
    try:
        export_audit(ctx.ws, path)
    except BaseException:
        os.unlink(path)
        raise
    return FileResponse(path, media_type="application/x-ndjson", filename="audit.jsonl",
                        background=BackgroundTask(os.unlink, path))
