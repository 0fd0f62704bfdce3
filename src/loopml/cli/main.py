"""``loopml``: the command line, one Typer sub-app per noun (see DESIGN.md)."""

from __future__ import annotations

import importlib

import typer

from loopml.cli._common import console, handle_errors, print_json, set_debug

app = typer.Typer(
    name="loopml",
    help="loopml: the whole machine-learning lifecycle in a closed loop.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: (module under loopml.cli, command group name). A module exposes ``app`` (a
#: group) or ``register(app)`` (top-level commands). Missing modules are skipped
#: so the CLI grows one file at a time.
_GROUPS: list[tuple[str, str | None]] = [
    ("data", "data"),
    ("runs", "runs"),
    ("models", "models"),
    ("audit", "audit"),
    ("lineage", None),
    ("pipeline", None),
    ("quickstart", None),
    ("serve", None),
    ("score", None),
    ("stream", None),
    ("predictions", "predictions"),
    ("monitor", "monitor"),
    ("alerts", "alerts"),
    ("triggers", "triggers"),
    ("deploy", None),
    ("rollout", "rollout"),
    ("scheduler", None),
    ("server", None),
    ("up", None),
    ("users", "users"),
    ("tokens", "tokens"),
    ("approvals", "approvals"),
    ("privacy", "privacy"),
    ("trace", None),
]


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks.")) -> None:
    set_debug(debug)


@app.command()
@handle_errors
def init(
    path: str = typer.Argument(".", help="Folder for the workspace."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Create a workspace here (.loopml/ with SQLite metadata and local artifacts)."""
    from loopml.workspace import init_workspace

    ws = init_workspace(path)
    if json_out:
        print_json(ws.describe())
    else:
        console.print(f"Initialized loopml workspace in [bold]{ws.dir}[/bold]")
        console.print(f"  metadata:  {ws.describe()['db_url']}")
        console.print(f"  artifacts: {ws.settings.resolved_artifacts_url}")


def _mount() -> None:
    for module_name, group in _GROUPS:
        try:
            module = importlib.import_module(f"loopml.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"loopml.cli.{module_name}":
                continue
            raise
        if group and hasattr(module, "app"):
            app.add_typer(module.app, name=group)
        if hasattr(module, "register"):
            module.register(app)


_mount()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
