"""The UI as a Starlette app: one route per page, POST routes for actions, static files.

Mounted by the REST server at ``/ui`` (``create_app`` in ``loopml.server``),
so it shares the server's process, workspace, loopback guard and body limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from loopml.governance.identity import NotAuthenticated, authenticate
from loopml.ui import _catalog, _deploy, _monitor, _overview, _runs, _trace
from loopml.ui._auth import COOKIE, UiState
from loopml.ui._core import action, first, page, read_form, render, url, warm_up
from loopml.workspace import Workspace

__all__ = ["PAGES", "create_ui"]

_STATIC = Path(__file__).parent / "static"

#: (path, handler, action needed): every GET page.
PAGES: list[tuple[str, Any, str]] = [
    ("/", _overview.overview, "model.read"),
    ("/runs", _runs.runs, "run.read"),
    ("/runs/compare", _runs.compare, "run.read"),
    ("/runs/{run_id}", _runs.run_detail, "run.read"),
    ("/datasets", _catalog.datasets, "dataset.read"),
    ("/datasets/{name}", _catalog.dataset, "dataset.read"),
    ("/datasets/{name}/{version:int}", _catalog.dataset_version, "dataset.read"),
    ("/datasets/{name}/{version:int}/profile.html", _catalog.profile_html, "dataset.read"),
    ("/models", _catalog.models, "model.read"),
    ("/models/{name}", _catalog.model, "model.read"),
    ("/models/{name}/{version:int}", _catalog.model_version, "model.read"),
    ("/models/{name}/{version:int}/card.html", _catalog.card_html, "model.read"),
    ("/models/{name}/{version:int}/card.md", _catalog.card_markdown, "model.read"),
    ("/deployments", _deploy.deployments, "deployment.read"),
    ("/deployments/{endpoint}", _deploy.deployment, "deployment.read"),
    ("/monitoring", _monitor.monitoring, "monitor.read"),
    ("/monitoring/reports/{report_id:int}", _monitor.report, "monitor.read"),
    ("/monitoring/reports/{report_id:int}/report.html", _monitor.report_frame, "monitor.read"),
    ("/triggers", _monitor.triggers, "trigger.read"),
    ("/lineage", _trace.lineage_page, "lineage.read"),
    ("/predictions", _trace.predictions, "deployment.read"),
    ("/audit", _trace.audit, "audit.read"),
]

#: (path, handler, action needed): every POST action.
ACTIONS: list[tuple[str, Any, str]] = [
    ("/deployments/{endpoint}/{verb:str}", _deploy.rollout_action, "rollout.write"),
    ("/approvals/{request_id:int}/{verb:str}", _deploy.approval_action, "approval.decide"),
    ("/alerts/{alert_id:int}/ack", _monitor.ack, "alert.ack"),
    ("/models/{name}/{version:int}/card", _catalog.edit_card, "model.register"),
    ("/triggers/{name}/fire", _monitor.fire, "trigger.fire"),
    ("/audit/verify", _trace.verify_now, "audit.read"),
]

_VERBS = ("promote", "pause", "resume", "rollback", "approve", "reject")


async def _login_page(request: Request) -> Response:
    return render(request, None, "login.html", {"title": "Sign in", "next": request.query_params.get("next", ""),
                                                "error": request.query_params.get("err")})


async def _login(request: Request) -> Response:
    """Check the API token once, then keep it in an HttpOnly, SameSite=Strict cookie."""
    from starlette.concurrency import run_in_threadpool

    form = await read_form(request)
    token = first(form, "token")
    state: UiState = request.app.state.ui
    try:
        await run_in_threadpool(authenticate, state.ws, token or None)
    except NotAuthenticated as exc:
        return RedirectResponse(url(request, "/login", err=str(exc).splitlines()[0]), status_code=303)
    nxt = first(form, "next")
    base = request.scope.get("root_path", "")
    target = nxt if nxt.startswith(base + "/") and not nxt.startswith("//") else url(request, "/")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path=base or "/",
                        secure=request.url.scheme == "https")
    return response


async def _logout(request: Request) -> Response:
    response = RedirectResponse(url(request, "/login"), status_code=303)
    response.delete_cookie(COOKIE, path=request.scope.get("root_path", "") or "/")
    return response


def _guard_verb(handler: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        if request.path_params.get("verb") not in _VERBS:
            return Response("not found", status_code=404)
        return await handler(request)

    return endpoint


def create_ui(ws: Workspace, *, auth: bool, project: str = "default") -> Starlette:
    """The UI app over ``ws``; mount it (``app.mount("/ui", create_ui(ws, auth=False))``).

    Args:
        auth: as the REST server: ``False`` is embedded single-user mode (the OS
            user; loopback only, enforced by the server's middleware), ``True``
            asks for an API token once and checks roles on every page and action.
        project: the project whose role bindings authorize requests.
    """
    routes: list[Any] = [Route(p, page(h, action_name=a), methods=["GET"], name=h.__name__) for p, h, a in PAGES]
    routes += [Route("/login", _login_page, methods=["GET"]), Route("/login", _login, methods=["POST"]),
               Route("/logout", _logout, methods=["POST"])]
    for p, h, a in ACTIONS:
        endpoint = action(h, action_name=a)
        routes.append(Route(p, _guard_verb(endpoint) if "{verb" in p else endpoint, methods=["POST"]))
    routes.append(Mount("/static", StaticFiles(directory=str(_STATIC)), name="static"))
    app = Starlette(routes=routes)
    app.state.ui = UiState.create(ws, auth=auth, project=project)
    app.state.chain = _trace.ChainStatus(ws)
    warm_up()
    return app
