"""``/monitors`` and ``/reports``: define (create or replace from a spec), list, show, run now, report JSON and HTML."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse

from loopml.monitor import (
    define_monitor,
    get_monitor,
    get_report,
    list_monitors,
    list_reports,
    report_html,
    run_monitor,
)
from loopml.server._auth import Ctx, allow
from loopml.server._errors import ERROR_RESPONSES
from loopml.server._pagination import Page, PageParams, page_of, page_params, page_probe
from loopml.server._schemas import MonitorOut, MonitorSpecIn, ReportOut

router = APIRouter(tags=["monitors"], responses=ERROR_RESPONSES)

NAME = Path(min_length=1, max_length=128, description="Monitor name (or its endpoint)")
REPORT_ID = Path(ge=1, le=2_147_483_647)


def _summary(record: Any) -> dict[str, Any]:
    data = record.to_dict()
    data["report"] = None  # lists carry summaries; GET /reports/{id} has the whole report
    return data


@router.get("/monitors", response_model=Page[MonitorOut], summary="List monitors")
def monitors(page: PageParams = Depends(page_params), ctx: Ctx = Depends(allow("monitor.read"))) -> dict[str, Any]:
    return page_of(list_monitors(ctx.ws), page)


@router.post("/monitors", response_model=MonitorOut, summary="Create or replace a monitor from its spec (audited)")
def define(body: MonitorSpecIn, ctx: Ctx = Depends(allow("monitor.write"))) -> dict[str, Any]:
    return define_monitor(ctx.ws, body.spec).to_dict()


@router.get("/monitors/{name}", response_model=MonitorOut, summary="Show a monitor")
def show_monitor(name: str = NAME, ctx: Ctx = Depends(allow("monitor.read"))) -> dict[str, Any]:
    return get_monitor(ctx.ws, name).to_dict()


@router.post("/monitors/{name}/run", response_model=ReportOut, summary="Run a monitor now")
def run(name: str = NAME, ctx: Ctx = Depends(allow("monitor.run"))) -> dict[str, Any]:
    return run_monitor(ctx.ws, name).to_dict()


@router.get("/reports", response_model=Page[ReportOut], summary="List monitor reports, newest first")
def reports(endpoint: str | None = Query(None, max_length=128), page: PageParams = Depends(page_params),
            ctx: Ctx = Depends(allow("monitor.read"))) -> dict[str, Any]:
    found = list_reports(ctx.ws, endpoint=endpoint, limit=page.offset + page.limit + 1)
    return page_probe(found, page, to_dict=_summary)


@router.get("/reports/{report_id}", response_model=ReportOut, summary="A report as JSON")
def report(report_id: int = REPORT_ID, ctx: Ctx = Depends(allow("monitor.read"))) -> dict[str, Any]:
    return get_report(ctx.ws, report_id).to_dict()


@router.get("/reports/{report_id}/html", summary="A report as HTML",
            responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}}})
def report_page(report_id: int = REPORT_ID, ctx: Ctx = Depends(allow("monitor.read"))) -> HTMLResponse:
    return HTMLResponse(report_html(ctx.ws, report_id))
