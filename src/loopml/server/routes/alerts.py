"""``/alerts``: list (by status, endpoint), show, acknowledge."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query

from loopml.monitor.alerts import ack_alert, get_alert, list_alerts
from loopml.server._auth import Ctx, allow
from loopml.server._errors import ERROR_RESPONSES
from loopml.server._pagination import Page, PageParams, page_params, page_probe
from loopml.server._schemas import AckIn, AlertOut

router = APIRouter(prefix="/alerts", tags=["alerts"], responses=ERROR_RESPONSES)

ALERT_ID = Path(ge=1, le=2_147_483_647)


@router.get("", response_model=Page[AlertOut], summary="List alerts, newest first")
def alerts(status: Literal["open", "acknowledged", "resolved"] | None = Query(None),
           endpoint: str | None = Query(None, max_length=128), page: PageParams = Depends(page_params),
           ctx: Ctx = Depends(allow("alert.read"))) -> dict[str, Any]:
    found = list_alerts(ctx.ws, status=status, endpoint=endpoint, limit=page.offset + page.limit + 1)
    return page_probe(found, page)


@router.get("/{alert_id}", response_model=AlertOut, summary="Show an alert")
def show(alert_id: int = ALERT_ID, ctx: Ctx = Depends(allow("alert.read"))) -> dict[str, Any]:
    return get_alert(ctx.ws, alert_id).to_dict()


@router.post("/{alert_id}/ack", response_model=AlertOut, summary="Acknowledge an alert")
def ack(alert_id: int = ALERT_ID, body: AckIn | None = None, ctx: Ctx = Depends(allow("alert.ack"))) -> dict[str, Any]:
    return ack_alert(ctx.ws, alert_id, note=body.note if body else None).to_dict()
