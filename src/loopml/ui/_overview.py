"""Overview: per model, the state of the loop (runs, aliases, endpoints, drift, alerts, triggers)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from loopml.deploy import get_rollout, list_endpoints
from loopml.kernel.exceptions import NotFoundError
from loopml.monitor import list_reports
from loopml.monitor.alerts import list_alerts
from loopml.register import list_models, resolve
from loopml.tracking import get_run
from loopml.trigger import list_triggers
from loopml.ui._auth import UiCtx
from loopml.ui._core import Page

__all__ = ["overview"]


def _split(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in policy.get("routes", []) if r.get("weight", 0) > 0]


def overview(request: Request, ctx: UiCtx) -> Page:
    ws = ctx.ws
    endpoints = list_endpoints(ws)
    alerts = list_alerts(ws, status="open", limit=500)
    triggers = [t for t in list_triggers(ws) if t.enabled]
    scheduled = sorted((t for t in triggers if t.next_due_at), key=lambda t: t.next_due_at)  # type: ignore[arg-type, return-value]
    models = []
    for m in list_models(ws):
        latest_run = None
        if m.latest_version is not None:
            latest = resolve(ws, f"{m.name}/{m.latest_version}")
            if latest.run_id:
                try:
                    latest_run = get_run(ws, latest.run_id)
                except NotFoundError:
                    latest_run = None
        eps = []
        for ep in (e for e in endpoints if e.model_name == m.name):
            reports = list_reports(ws, ep.name, limit=1)
            eps.append({"ep": ep, "split": _split(ep.policy), "rollout": get_rollout(ws, ep.name),
                        "report": reports[0] if reports else None,
                        "alerts": [a for a in alerts if a.endpoint == ep.name]})
        models.append({"model": m, "latest_run": latest_run, "champion": m.aliases.get("champion"),
                       "challenger": m.aliases.get("challenger"), "endpoints": eps})
    return Page("overview.html", {"title": "Overview", "models": models, "n_alerts": len(alerts),
                                  "alerts": alerts[:10], "next_trigger": scheduled[0] if scheduled else None,
                                  "triggers": triggers})
