"""``loopml server``: the REST control plane (embedded mode on loopback, or with auth for a team)."""

from __future__ import annotations

import typer

from loopml.cli._common import console, handle_errors, workspace


def register(app: typer.Typer) -> None:
    """Add the top-level ``server`` command."""

    @app.command("server")
    @handle_errors
    def server(
        host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but loopback needs --auth."),
        port: int = typer.Option(8000, "--port", min=1, max=65535),
        auth: bool = typer.Option(False, "--auth/--no-auth", help="Require API tokens and check roles."),
        project: str = typer.Option("default", "--project", help="The project whose roles authorize requests."),
        max_upload_mb: int = typer.Option(256, "--max-upload-mb", min=1, help="Largest file upload (data, feedback, a file to score)."),
    ) -> None:
        """Serve the REST API (OpenAPI at /openapi.json) over this workspace."""
        from loopml.server import check_bind, run_server

        check_bind(host, auth=auth)  # before opening anything: a one-line refusal
        ws = workspace()
        mode = "auth on (Bearer tokens)" if auth else "embedded single-user mode, no login (loopback only)"
        console.print(f"loopml control plane on http://{host}:{port}/api/v1 — {mode}; OpenAPI at /openapi.json")
        run_server(ws, host=host, port=port, auth=auth, project=project,
                   max_upload_bytes=max_upload_mb * 1024 * 1024)
