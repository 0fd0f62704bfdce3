"""The REST control plane: ``create_app(ws, auth=...)`` over the service layer, and a client for it.

    app = create_app(ws, auth=True)                       # FastAPI app, /api/v1/..., /openapi.json
    run_server(ws, host="0.0.0.0", port=8000, auth=True)  # uvicorn; refuses 0.0.0.0 without auth
    client = RemoteClient.from_settings()                 # LOOPML_SERVER_URL + LOOPML_TOKEN

Names load lazily: importing the client does not import FastAPI.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["RemoteClient", "check_bind", "create_app", "run_server"]

_HOMES = {
    "create_app": "loopml.server._app",
    "check_bind": "loopml.server._bind",
    "run_server": "loopml.server._bind",
    "RemoteClient": "loopml.server.client",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'loopml.server' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
