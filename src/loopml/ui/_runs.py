"""Runs: a filtered, sorted, server-side paginated table; one run's metric charts; runs side by side."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from loopml.kernel.exceptions import ValidationError
from loopml.tracking import compare_runs, get_run, list_runs, metric_history
from loopml.ui._auth import UiCtx
from loopml.ui._core import Page
from loopml.ui._svg import line_chart

__all__ = ["compare", "run_detail", "runs"]

PAGE_SIZE = 50
MAX_CHARTS = 12
_STATUSES = ("", "running", "finished", "failed", "killed")


def _int(text: str | None, default: int, *, lo: int = 0, hi: int = 10**9) -> int:
    try:
        return max(lo, min(hi, int(text))) if text else default
    except ValueError:
        return default


def runs(request: Request, ctx: UiCtx) -> Page:
    q = request.query_params
    experiment = q.get("experiment") or None
    status = q.get("status") or None
    flt = q.get("filter") or None
    order = q.get("order") or "started_at DESC"
    limit = _int(q.get("limit"), PAGE_SIZE, lo=1, hi=500)
    offset = _int(q.get("offset"), 0)
    error = None
    try:
        rows = list_runs(ctx.ws, experiment=experiment, status=status, filter=flt, order_by=[order],
                         limit=limit + 1, offset=offset)
    except ValidationError as exc:
        error, rows = str(exc).splitlines()[0], []
    has_next = len(rows) > limit
    rows = rows[:limit]
    metric_keys = sorted({k for r in rows for k in r.metrics})[:6]
    param_keys = sorted({k for r in rows for k in r.params})[:4]
    field, _, direction = order.partition(" ")
    return Page("runs.html", {
        "title": "Runs", "runs": rows, "metric_keys": metric_keys, "param_keys": param_keys,
        "experiment": experiment or "", "status": status or "", "filter": flt or "", "order": order,
        "sort_field": field, "sort_desc": direction.upper() == "DESC", "limit": limit, "offset": offset,
        "has_next": has_next, "error": error, "statuses": _STATUSES,
    })


def run_detail(request: Request, ctx: UiCtx) -> Page:
    run = get_run(ctx.ws, request.path_params["run_id"])
    charts: list[dict[str, Any]] = []
    for key in sorted(run.metrics)[:MAX_CHARTS]:
        history = metric_history(ctx.ws, run.id, key)
        if len(history) > 1:
            charts.append({"key": key, "svg": line_chart({key: [(s, v) for s, v, _ in history]}, title=key)})
    return Page("run.html", {"title": f"Run {run.name}", "run": run, "charts": charts,
                             "n_more": max(0, len(run.metrics) - MAX_CHARTS)})


def compare(request: Request, ctx: UiCtx) -> Page:
    ids = [i for i in request.query_params.getlist("id") if i][:10]
    table = compare_runs(ctx.ws, ids)
    charts = []
    shared = [k for k, v in table["metrics"].items() if sum(x is not None for x in v["values"]) > 1][:MAX_CHARTS]
    for key in shared:
        series = {}
        for r in table["runs"]:
            points = metric_history(ctx.ws, r["id"], key)
            if points:
                series[r["name"] + " " + r["id"][:6]] = [(s, v) for s, v, _ in points]
        if any(len(p) > 1 for p in series.values()):
            charts.append({"key": key, "svg": line_chart(series, title=key)})
    return Page("compare.html", {"title": "Compare runs", "table": table, "charts": charts})
