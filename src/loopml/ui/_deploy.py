"""Deployments: traffic split over time, rollout progress and evidence, live latency and errors; actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request

from loopml.deploy import get_endpoint, get_rollout, list_endpoints, list_rollouts, pause, promote, resume, rollback, traffic_history
from loopml.kernel.exceptions import NotFoundError
from loopml.kernel.types import utcnow
from loopml.predictions import open_view
from loopml.ui._auth import UiCtx
from loopml.ui._core import Form, Page, first, url
from loopml.ui._svg import line_chart, stacked_steps

__all__ = ["deployment", "deployments", "health", "rollout_action"]

HEALTH_WINDOW = "1h"


def deployments(request: Request, ctx: UiCtx) -> Page:
    eps = list_endpoints(ctx.ws)
    active = {r.endpoint: r for r in list_rollouts(ctx.ws) if r.status in ("running", "paused")}
    rows = [{"ep": e, "routes": [r for r in e.policy.get("routes", []) if r["weight"] > 0],
             "rollout": active.get(e.name)} for e in eps]
    return Page("deployments.html", {"title": "Deployments", "rows": rows})


def health(ctx: UiCtx, endpoint: str, since: str = HEALTH_WINDOW) -> dict[str, Any]:
    """Requests, p50/p95 latency and error rate per minute over the window, from the prediction log."""
    try:
        con = open_view(ctx.ws, endpoint, since=since)
    except NotFoundError:
        return {"rows": [], "total": 0}
    try:
        rows = con.execute(
            "SELECT epoch(date_trunc('minute', ts)) AS m, count(DISTINCT request_id) AS n, "
            "quantile_cont(latency_ms, 0.5) AS p50, quantile_cont(latency_ms, 0.95) AS p95, "
            "avg(CASE WHEN status >= 400 OR error IS NOT NULL THEN 1.0 ELSE 0.0 END) AS err "
            "FROM predictions GROUP BY 1 ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    # epoch seconds, not TIMESTAMPTZ: DuckDB would need pytz to hand those to Python
    rows = [(datetime.fromtimestamp(r[0], UTC), *r[1:]) for r in rows]
    total = sum(r[1] for r in rows)
    errors = sum(r[1] * r[4] for r in rows)
    return {
        "rows": rows, "total": total, "error_rate": errors / total if total else None,
        "p95": max((r[3] for r in rows if r[3] is not None), default=None),
        "latency": line_chart({"p50": [(r[0], r[2]) for r in rows], "p95": [(r[0], r[3]) for r in rows]},
                              title="latency", unit=" ms"),
        "errors": line_chart({"error rate": [(r[0], r[4]) for r in rows]}, title="error rate"),
        "requests": line_chart({"requests/min": [(r[0], r[1]) for r in rows]}, title="requests"),
    }


def deployment(request: Request, ctx: UiCtx) -> Page:
    name = request.path_params["endpoint"]
    ep = get_endpoint(ctx.ws, name)
    history = traffic_history(ctx.ws, name)
    changes = [(h.ts, {f"v{r['version']}": r["weight"] for r in h.policy.get("routes", [])}) for h in history]
    rollout = get_rollout(ctx.ws, name)
    past = [r for r in list_rollouts(ctx.ws) if r.endpoint == name][:20]
    steps: list[dict[str, Any]] = []
    if rollout is not None and rollout.strategy == "canary":
        steps = [{"weight": w, "done": i < rollout.step, "current": i == rollout.step}
                 for i, w in enumerate(rollout.config.get("steps", []))]
    from loopml.governance.approvals import list_requests

    candidate = rollout.candidate_version if rollout is not None else None
    approvals = [a for a in list_requests(ctx.ws, model=ep.model_name)
                 if a.endpoint in (None, name) and (a.status == "pending" or a.version == candidate)][:20]
    return Page("deployment.html", {
        "title": f"Endpoint {name}", "ep": ep, "approvals": approvals, "history": history[::-1][:50], "n_changes": len(history),
        "traffic": stacked_steps(changes, until=utcnow()), "rollout": rollout, "steps": steps,
        "evidence": list(reversed(rollout.evidence))[:20] if rollout else [], "past": past,
        "health": health(ctx, name), "window": HEALTH_WINDOW, "since": utcnow() - timedelta(hours=1),
        "routes": [r for r in ep.policy.get("routes", [])],
    })


def rollout_action(request: Request, ctx: UiCtx, form: Form) -> str:
    """promote | pause | resume | rollback the endpoint's rollout, with the form's reason."""
    name, verb = request.path_params["endpoint"], request.path_params["verb"]
    reason = first(form, "reason") or None
    evidence = {"source": "ui", "actor": ctx.identity.name}
    if verb == "promote":
        promote(ctx.ws, name, reason=reason or "promoted from the UI", evidence=evidence)
    elif verb == "pause":
        pause(ctx.ws, name, reason=reason)
    elif verb == "resume":
        resume(ctx.ws, name, reason=reason)
    else:
        rollback(ctx.ws, name, reason=reason or "rolled back from the UI", evidence=evidence)
    done = {"promote": "promoted", "pause": "paused", "resume": "resumed", "rollback": "rolled back"}[verb]
    return url(request, f"/deployments/{name}", msg=f"rollout on {name} {done}")


def approval_action(request: Request, ctx: UiCtx, form: Form) -> str:
    """approve | reject an approval request (separation of duties is checked by the service)."""
    from loopml.governance.approvals import approve, reject

    request_id, verb = int(request.path_params["request_id"]), request.path_params["verb"]
    reason = first(form, "reason") or ""
    record = (approve if verb == "approve" else reject)(ctx.ws, request_id, reason=reason)
    back = first(form, "back")
    if not back.startswith("/") or back.startswith("//"):  # only pages of this UI: no open redirect
        back = f"/models/{record.model}/{record.version}"
    done = "approved" if verb == "approve" else "rejected"
    return url(request, back, msg=f"request {record.id} for {record.ref} {done}")
