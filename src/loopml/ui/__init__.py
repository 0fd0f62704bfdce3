"""The web UI: server-rendered pages over the service layer, mounted by the REST server at ``/ui``.

    app = create_ui(ws, auth=False)      # a Starlette app; loopml.server mounts it at /ui

Pages call the same service functions as the CLI and the REST API; charts and
the lineage graph are inline SVG drawn on the server; one CSS and one small JS
file ship in ``static/``. Nothing is fetched from outside the server.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["create_ui"]


def __getattr__(name: str) -> Any:
    if name == "create_ui":
        return importlib.import_module("loopml.ui._app").create_ui
    raise AttributeError(f"module 'loopml.ui' has no attribute {name!r}")
