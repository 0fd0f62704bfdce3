"""``loopml up``: the whole platform in one process on embedded defaults.

The REST API and the web UI (one uvicorn server: the UI is mounted at ``/ui``),
every deployed endpoint (a second uvicorn server on ``--serve-port``, writing
the prediction log) and the scheduler (monitors, rollouts, triggers, run
requests) in a thread. Ctrl-C or SIGTERM stops all three and flushes the log.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import typer

from loopml.cli._common import console, handle_errors, print_json, workspace

__all__ = ["register"]


def _serving_server(ws: Any, host: str, port: int) -> tuple[Any, Any, list[str]]:
    """A uvicorn server for every endpoint in ``loopml.deploy`` (None when there are none), and its log."""
    import uvicorn

    from loopml.deploy import list_endpoints

    names = [e.name for e in list_endpoints(ws)]
    if not names:
        return None, None, []
    from loopml.predictions import open_prediction_log
    from loopml.serve import create_app

    sink = open_prediction_log(ws)
    app = create_app(names, workspace=ws, sink=sink, settings=ws.settings.serve.model_dump())
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, proxy_headers=False)
    return uvicorn.Server(config), sink, names


def register(app: typer.Typer) -> None:
    """Add the top-level ``up`` command."""

    @app.command("up")
    @handle_errors
    def up(
        host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but loopback needs --auth."),
        port: int = typer.Option(8000, "--port", min=1, max=65535, help="REST API and UI."),
        serve_port: int = typer.Option(8080, "--serve-port", min=1, max=65535, help="Serving endpoints."),
        auth: bool = typer.Option(False, "--auth/--no-auth", help="Require API tokens (UI: sign in with one)."),
        scheduler: bool = typer.Option(True, "--scheduler/--no-scheduler", help="Run monitors, rollouts, triggers."),
        json_out: bool = typer.Option(False, "--json", help="Print the URLs as JSON."),
    ) -> None:
        """Start the REST API, the web UI, the serving endpoints and the scheduler; print the URLs."""
        import uvicorn

        from loopml.server import check_bind, create_app

        check_bind(host, auth=auth)
        ws = workspace()
        api = uvicorn.Server(uvicorn.Config(create_app(ws, auth=auth), host=host, port=port, log_level="warning",
                                            access_log=False, proxy_headers=False))
        serving, sink, endpoints = _serving_server(ws, host, serve_port)
        threads: list[threading.Thread] = []
        sched = None
        if scheduler:
            from loopml.scheduler import Scheduler

            sched = Scheduler(ws)
            threads.append(threading.Thread(target=sched.run_forever, name="loopml-scheduler", daemon=True))
        if serving is not None:
            threads.append(threading.Thread(target=serving.run, name="loopml-serve", daemon=True))
        urls = {"ui": f"http://{host}:{port}/ui/", "api": f"http://{host}:{port}/api/v1",
                "openapi": f"http://{host}:{port}/openapi.json",
                "serving": {e: f"http://{host}:{serve_port}/v2/models/{e}/infer" for e in endpoints},
                "scheduler": scheduler}
        # uvicorn re-raises the signal that stopped it once it has shut down; this handler
        # (also in force before uvicorn installs its own) asks the API server to stop, and the
        # finally block below then stops the other parts instead of dying at once.
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: setattr(api, "should_exit", True))
        try:
            for t in threads:
                t.start()
            if json_out:
                print_json(urls)
            else:
                console.print(f"loopml is up ({'auth on' if auth else 'embedded single-user mode, loopback only'})")
                console.print(f"  UI         [bold]{urls['ui']}[/bold]")
                console.print(f"  REST API   {urls['api']}  (OpenAPI {urls['openapi']})")
                if endpoints:
                    for name, link in urls["serving"].items():
                        console.print(f"  serving    {name}: {link}")
                else:
                    console.print("  serving    no endpoints yet (loopml deploy ENDPOINT MODEL_REF, then restart)")
                console.print(f"  scheduler  {'running' if scheduler else 'off'}")
                console.print("Ctrl-C stops everything.")
            api.run()
        except KeyboardInterrupt:
            pass
        finally:
            if serving is not None:
                serving.should_exit = True
            if sched is not None:
                sched.stop()
            for t in threads:
                t.join(timeout=15)
            if sink is not None:
                sink.close()
            signal.signal(signal.SIGTERM, previous)
            console.print("loopml stopped")
