"""The REST control plane: a FastAPI app over the same service functions the CLI calls."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from loopml.server._auth import ServerState
from loopml.server._errors import install_error_handlers
from loopml.server._limits import BodyLimitMiddleware, LoopbackOnlyMiddleware
from loopml.server._schemas import HealthOut
from loopml.workspace import Workspace

__all__ = ["API_PREFIX", "DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_UPLOAD_BYTES", "create_app"]

API_PREFIX = "/api/v1"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_MAX_UPLOAD_BYTES = 256 * 1024 * 1024


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("loopml")
    except PackageNotFoundError:
        return "0"


def create_app(
    ws: Workspace,
    *,
    auth: bool,
    project: str = "default",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
) -> FastAPI:
    """The control-plane app for ``ws``.

    Args:
        auth: require ``Authorization: Bearer <token>`` and check roles on every
            route. ``False`` is embedded single-user mode: the caller is the
            workspace's OS user and only loopback clients are answered.
        project: the project whose role bindings authorize requests (the
            service layer does not scope objects by project yet, so one server
            serves one project).
        max_body_bytes: the largest JSON request body.
        max_upload_bytes: the largest uploaded file (a dataset version, feedback, a file to score, sample rows).
    """
    from loopml.kernel.types import check_name
    from loopml.server.routes import ROUTERS

    if project != "*":
        check_name(project, "project")
    app = FastAPI(
        title="loopml control plane",
        version=_version(),
        description="Datasets, runs, models, deployments, monitors, alerts, triggers, lineage and audit. "
        "Send `Authorization: Bearer lml_<id>_<secret>` (create one with `loopml tokens create`).",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.loopml = ServerState(ws=ws, auth=auth, project=project)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    from loopml.server.routes import approvals as approval_routes
    from loopml.server.routes import governance as governance_routes

    app.include_router(approval_routes.router, prefix=API_PREFIX)
    app.include_router(governance_routes.router, prefix=API_PREFIX)

    @app.get("/health", response_model=HealthOut, tags=["health"], summary="Liveness (no token needed)")
    def health() -> dict[str, Any]:
        return {"status": "ok", "auth": auth, "project": project}

    from starlette.responses import RedirectResponse

    from loopml.ui import create_ui

    # The web UI (server-rendered pages): same process, workspace, auth mode and guards.
    app.mount("/ui", create_ui(ws, auth=auth, project=project))
    app.add_route("/", lambda request: RedirectResponse("/ui/"), include_in_schema=False)

    def limit_for(method: str, path: str) -> int:
        # File uploads: a dataset version, a feedback file, a file to score, an export's sample rows.
        if method == "POST" and (
            (path.startswith(f"{API_PREFIX}/datasets/") and path.endswith("/versions"))
            or (path.startswith(f"{API_PREFIX}/endpoints/") and path.endswith("/feedback"))
            or path == f"{API_PREFIX}/prediction-batches"
            or (path.startswith(f"{API_PREFIX}/models/") and path.endswith("/export"))
        ):
            return max_upload_bytes
        return max_body_bytes

    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for)
    if not auth:
        app.add_middleware(LoopbackOnlyMiddleware)
    return app
