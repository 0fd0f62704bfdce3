"""Monitoring (drift per feature over time, reports, quality, performance, alerts) and triggers."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from loopml.deploy import list_endpoints
from loopml.monitor import get_report, list_monitors, list_reports, report_html
from loopml.monitor.alerts import ack_alert, list_alerts
from loopml.trigger import fire_trigger, list_run_requests, list_triggers
from loopml.ui._auth import UiCtx
from loopml.ui._catalog import FRAME_CSP
from loopml.ui._core import Form, Page, first, url
from loopml.ui._svg import line_chart

__all__ = ["ack", "fire", "monitoring", "report", "report_frame", "triggers"]

_ALERT_STATUSES = ("open", "acknowledged", "resolved")
N_REPORTS = 60
N_FEATURES = 8


def _series(reports: list[Any], pick: Any) -> list[tuple[Any, float]]:
    out = []
    for r in reports:
        value = pick(r)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append((r.created_at, float(value)))
    return out


def _endpoint_view(ctx: UiCtx, endpoint: str) -> dict[str, Any]:
    reports = list_reports(ctx.ws, endpoint, limit=N_REPORTS)[::-1]  # oldest first
    effects: dict[str, list[tuple[Any, float]]] = {}
    for r in reports:
        for feature, effect in (r.summary.get("feature_effects") or {}).items():
            if effect is not None:
                effects.setdefault(feature, []).append((r.created_at, float(effect)))
    top = sorted(effects, key=lambda f: -max(v for _, v in effects[f]))[:N_FEATURES]
    # Metric values only: counts (labelled rows) would crush them on one axis; they go in the text.
    perf_keys = sorted({k for r in reports for k, v in
                        ((r.report.get("checks", {}).get("performance") or {}).get("metrics") or {}).items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)
                        and not k.startswith("n_") and -1.0 <= v <= 1.0})[:4]
    latest = reports[-1] if reports else None
    return {
        "name": endpoint, "latest": latest, "n_reports": len(reports),
        "drift": line_chart({f: effects[f] for f in top}, title="drift effect per feature"),
        "drift_share": line_chart({"drift share": _series(reports, lambda r: r.summary.get("drift_share"))},
                                  title="share of drifted features"),
        "performance": line_chart({k: _series(reports, lambda r, k=k: r.report.get("checks", {})
                                              .get("performance", {}).get("metrics", {}).get(k)) for k in perf_keys},
                                  title="performance with feedback") if perf_keys else None,
        "quality": [(c, s) for c, s in (latest.summary.get("checks") or {}).items()] if latest else [],
    }


def monitoring(request: Request, ctx: UiCtx) -> Page:
    status = request.query_params.get("status", "open")
    status = status if status in _ALERT_STATUSES or status == "all" else "open"
    alerts = list_alerts(ctx.ws, status=None if status == "all" else status, limit=200)
    names = sorted({e.name for e in list_endpoints(ctx.ws)} | {m.endpoint for m in list_monitors(ctx.ws)})
    chosen = request.query_params.get("endpoint") or (names[0] if names else None)
    return Page("monitoring.html", {
        "title": "Monitoring", "alerts": alerts, "status": status, "statuses": (*_ALERT_STATUSES, "all"),
        "monitors": list_monitors(ctx.ws), "reports": list_reports(ctx.ws, limit=30), "endpoints": names,
        "chosen": chosen, "view": _endpoint_view(ctx, chosen) if chosen else None,
    })


def report(request: Request, ctx: UiCtx) -> Page:
    rec = get_report(ctx.ws, int(request.path_params["report_id"]))
    return Page("report.html", {"title": f"Report {rec.id}", "rec": rec})


def report_frame(request: Request, ctx: UiCtx) -> Response:
    html = report_html(ctx.ws, int(request.path_params["report_id"]))
    return HTMLResponse(html, headers={"Content-Security-Policy": FRAME_CSP, "X-Content-Type-Options": "nosniff"})


def ack(request: Request, ctx: UiCtx, form: Form) -> str:
    alert_id = int(request.path_params["alert_id"])
    ack_alert(ctx.ws, alert_id, note=first(form, "note") or None)
    return url(request, "/monitoring", status=first(form, "status") or None, msg=f"alert {alert_id} acknowledged")


def triggers(request: Request, ctx: UiCtx) -> Page:
    trig = list_triggers(ctx.ws)
    by_id = {t.id: t.name for t in trig}
    status = request.query_params.get("status") or None
    requests_ = list_run_requests(ctx.ws, status=status, limit=100)
    return Page("triggers.html", {"title": "Triggers", "triggers": trig, "requests": requests_, "by_id": by_id,
                                  "status": status or ""})


def fire(request: Request, ctx: UiCtx, form: Form) -> str:
    name = request.path_params["name"]
    rr = fire_trigger(ctx.ws, name, reason=first(form, "reason") or "fired from the UI",
                      context={"source": "ui", "actor": ctx.identity.name})
    return url(request, "/triggers", msg=f"trigger {name} fired: run request {rr.id} queued")
