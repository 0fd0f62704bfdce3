"""Online serving: Open Inference Protocol v2 and MLflow ``/invocations`` over uvicorn.

    create_app(models_or_refs, workspace=..., sink=..., settings=...) -> ASGI app
    run_server(factory, host=..., port=..., workers=...)              -> blocks until SIGTERM

The prediction log plugs in through :class:`PredictionSink` (importing it
pulls in no web framework, so ``loopml.predictions`` can import it without
the ``serve`` extra); which model version answers is a :class:`ModelRouter`.
See README.md for the invariants.
"""

from __future__ import annotations

import importlib
from typing import Any

from loopml.serve._records import MatrixColumns, PredictionRecord, PredictionSink

__all__ = [
    "AliasRouter",
    "Endpoint",
    "HealthCheck",
    "MatrixColumns",
    "ModelRouter",
    "PredictionRecord",
    "PredictionSink",
    "ServeApp",
    "ServeConfig",
    "ServedModel",
    "SingleModelRouter",
    "check_health",
    "create_app",
    "run_server",
]

_LAZY = {
    "AliasRouter": "_router", "ModelRouter": "_router", "ServedModel": "_router", "SingleModelRouter": "_router",
    "Endpoint": "_app", "ServeApp": "_app", "create_app": "_app",
    "ServeConfig": "_config", "run_server": "_runner",
    "HealthCheck": "_health", "check_health": "_health",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopml.serve' has no attribute {name!r}")
    if module == "_app":
        try:
            import orjson  # noqa: F401
            import starlette  # noqa: F401
        except ImportError as exc:
            from loopml.kernel.exceptions import MissingExtraError

            raise MissingExtraError(exc.name or "starlette", "serve", "online serving") from exc
    value = getattr(importlib.import_module(f"loopml.serve.{module}"), name)
    globals()[name] = value
    return value
