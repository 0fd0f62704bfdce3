"""``loopml serve ENDPOINT|MODEL_REF``: the online prediction server.

An endpoint name (``loopml deploy``) is served by its traffic policy, re-read
without a restart; a model reference is served as before.
"""

from __future__ import annotations

import functools
from typing import Any

import typer

from loopml.cli._common import console, handle_errors

__all__ = ["register"]


def _open_sink(ws: Any) -> Any:
    """The prediction log, when ``loopml.predictions`` provides one (else no log)."""
    try:
        import loopml.predictions as predictions  # noqa: PLR0402 - the facade is not imported inside the package
    except ImportError:
        return None
    opener = getattr(predictions, "open_prediction_log", None) or getattr(predictions, "open_sink", None)
    return opener(ws) if callable(opener) else None


def _build_app(root: str, refs: list[str], overrides: dict[str, Any], with_log: bool,
               key_field: str | None = None) -> Any:
    """Runs in each worker process: open the workspace, load the model(s), build the app."""
    from loopml.serve import create_app
    from loopml.workspace import open_workspace

    ws = open_workspace(root)
    settings = ws.settings.serve.model_dump()
    settings.update({k: v for k, v in overrides.items() if v is not None})
    sink = _open_sink(ws) if with_log else None
    targets: dict[str, Any] = {}
    for ref in refs:
        if key_field and "@" not in ref and "/" not in ref and _is_endpoint(ws, ref):
            from loopml.serve._policy import PolicyRouter

            targets[ref] = PolicyRouter.for_endpoint(ws, ref, key_field=key_field)
        else:
            targets[ref] = ref
    if all(k == v for k, v in targets.items()):
        return create_app(refs, workspace=ws, sink=sink, settings=settings)
    return create_app(targets, workspace=ws, sink=sink, settings=settings)


def _is_endpoint(ws: Any, name: str) -> bool:
    from loopml.deploy import get_endpoint
    from loopml.kernel.exceptions import NotFoundError

    try:
        get_endpoint(ws, name)
    except NotFoundError:
        return False
    return True


def register(app: typer.Typer) -> None:
    @app.command("serve")
    @handle_errors
    def serve(
        target: list[str] = typer.Argument(..., help="Endpoint name(s) (served by their traffic policy, see "
                                           "`loopml deploy`) or model reference(s): NAME@ALIAS (hot-swapped) "
                                           "or NAME/VERSION."),
        port: int = typer.Option(None, "--port", "-p", help="Port (default: settings serve.port, 8080)."),
        host: str = typer.Option(None, "--host", help="Address to bind (default 127.0.0.1)."),
        workers: int = typer.Option(1, "--workers", "-w", min=1, help="Worker processes; each loads the model."),
        max_batch_size: int = typer.Option(None, help="Rows per model call (1 = no micro-batching)."),
        max_batch_wait_ms: float = typer.Option(None, help="How long a batch may wait for company under load."),
        max_queue: int = typer.Option(None, help="Requests waiting for the model before 503."),
        max_rows: int = typer.Option(None, help="Rows per request before 413."),
        max_body_bytes: int = typer.Option(None, help="Body size before 413."),
        no_log: bool = typer.Option(False, "--no-log", help="Do not write the prediction log."),
        key_field: str = typer.Option(None, "--key-field", help="Payload field used as the sticky A/B key when "
                                      "a request has no X-Request-Key header (endpoints only)."),
        json_out: bool = typer.Option(False, "--json", help="Print the listening address as JSON."),
    ) -> None:
        """Serve models over OIP v2 (/v2/...) and MLflow /invocations until SIGTERM."""
        from loopml.cli._common import print_json, workspace
        from loopml.serve import run_server

        ws = workspace()
        host = host or ws.settings.serve.host
        port = port or ws.settings.serve.port
        overrides = {"max_batch_size": max_batch_size, "max_batch_wait_ms": max_batch_wait_ms,
                     "max_queue": max_queue, "max_rows": max_rows, "max_body_bytes": max_body_bytes}
        factory = functools.partial(_build_app, str(ws.root), list(target), overrides, not no_log, key_field)

        def ready() -> None:
            info = {"url": f"http://{host}:{port}", "models": list(target), "workers": workers}
            if json_out:
                print_json(info)
            else:
                console.print(f"serving {', '.join(target)} on [bold]http://{host}:{port}[/bold] "
                              f"({workers} worker{'s' if workers > 1 else ''}); OIP v2 at /v2, MLflow at /invocations")

        run_server(factory, host=host, port=port, workers=workers, on_ready=ready)
