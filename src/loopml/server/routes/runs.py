"""``/runs``: list with filter/order/limit/offset, show, compare, metric history."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Depends, Path, Query

from loopml.server._auth import Ctx, allow
from loopml.server._errors import ERROR_RESPONSES
from loopml.server._pagination import Page, PageParams, page_params, page_probe
from loopml.server._schemas import CompareOut, MetricHistoryOut, RunOut
from loopml.tracking import compare_runs, get_run, list_runs, metric_history

router = APIRouter(prefix="/runs", tags=["runs"], responses=ERROR_RESPONSES)

RUN_ID = Path(min_length=1, max_length=64, description="A run id (or a unique prefix)")


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


@router.get("", response_model=Page[RunOut], summary="List runs")
def runs(
    experiment: str | None = Query(None, max_length=128),
    kind: str | None = Query(None, max_length=32),
    status: str | None = Query(None, max_length=32),
    parent_id: str | None = Query(None, max_length=64),
    filter: str | None = Query(None, max_length=2000, description="e.g. metrics.acc > 0.8 and params.model = 'hgb'"),
    order_by: list[str] | None = Query(None, max_length=10, description="e.g. metrics.acc DESC"),
    page: PageParams = Depends(page_params),
    ctx: Ctx = Depends(allow("run.read")),
) -> dict[str, Any]:
    found = list_runs(ctx.ws, experiment=experiment, kind=kind, parent_id=parent_id, status=status, filter=filter,
                      order_by=order_by, limit=page.limit + 1, offset=page.offset)
    return page_probe(found, page, skipped=page.offset)


@router.get("/compare", response_model=CompareOut, summary="Compare runs side by side")
def compare(ids: list[str] = Query(..., min_length=2, max_length=50, description="Two or more run ids"),
            ctx: Ctx = Depends(allow("run.read"))) -> dict[str, Any]:
    out = compare_runs(ctx.ws, ids)
    for section in ("params", "metrics", "tags"):
        for entry in out.get(section, {}).values():
            entry["values"] = [_finite(v) for v in entry.get("values", [])]
    return out


@router.get("/{run_id}", response_model=RunOut, summary="Show a run")
def show(run_id: str = RUN_ID, ctx: Ctx = Depends(allow("run.read"))) -> dict[str, Any]:
    return get_run(ctx.ws, run_id).to_dict()


@router.get("/{run_id}/metrics/{key:path}", response_model=MetricHistoryOut, summary="Every point of one metric")
def history(run_id: str = RUN_ID, key: str = Path(min_length=1, max_length=256),
            ctx: Ctx = Depends(allow("run.read"))) -> dict[str, Any]:
    points = metric_history(ctx.ws, run_id, key)
    return {"run_id": run_id, "key": key,
            "points": [{"step": s, "value": _finite(v), "ts": t} for s, v, t in points]}
