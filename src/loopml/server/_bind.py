"""Starting the control plane: refuse an unauthenticated bind beyond loopback, then run uvicorn."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.kernel.exceptions import ConfigError
from loopml.server._limits import is_loopback

if TYPE_CHECKING:
    from loopml.workspace import Workspace

__all__ = ["check_bind", "run_server"]


def check_bind(host: str, *, auth: bool) -> None:
    """Embedded mode (no auth) may bind loopback only.

    Raises:
        ConfigError: ``host`` is not a loopback address and auth is off.
    """
    if not auth and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host} without authentication: bind 127.0.0.1, or pass --auth "
            "(and create a user and token: loopml users add NAME --role admin; loopml tokens create NAME)"
        )


def run_server(ws: Workspace, *, host: str = "127.0.0.1", port: int = 8000, auth: bool = False,
               project: str = "default", **options: Any) -> None:
    """Serve the control plane with uvicorn until interrupted (after :func:`check_bind`)."""
    check_bind(host, auth=auth)
    import uvicorn

    from loopml.server._app import create_app

    app = create_app(ws, auth=auth, project=project, **options)
    # No access log: paths are harmless, but a log line per request is noise at scale,
    # and headers (tokens) are never logged either way.
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, proxy_headers=False)
