"""``loopml``: the command line, one Typer sub-app per noun (see DESIGN.md).

``loopml NAME ...`` imports only the module that defines ``NAME`` (start-up is
part of every call: a cached ``loopml run`` should cost little more than Python
itself); ``loopml --help``, an unknown name, or ``app`` imported from here mount
every module.
"""

from __future__ import annotations

import gc
import importlib
import sys
from typing import Any

# Start-up imports with the cyclic GC paused, then frozen (``quiet_gc``, which lives in
# ``_common`` and so cannot wrap its own import).
_gc_was_enabled = gc.isenabled()
gc.disable()
try:
    import typer

    from loopml.cli._common import handle_errors, print_json, quiet_gc, set_debug
finally:
    gc.freeze()
    if _gc_was_enabled:
        gc.enable()

_app = typer.Typer(
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

#: Top-level commands that a module's ``register(app)`` adds, where the name differs
#: from the module's. A name found nowhere here mounts every module.
_COMMAND_MODULES: dict[str, str] = {"run": "pipeline"}

_mounted: set[str] = set()


@_app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks.")) -> None:
    set_debug(debug)


@_app.command()
@handle_errors
def init(
    path: str = typer.Argument(".", help="Folder for the workspace."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Create a workspace here (.loopml/ with SQLite metadata and local artifacts)."""
    from loopml.cli._common import console
    from loopml.workspace import init_workspace

    ws = init_workspace(path)
    if json_out:
        print_json(ws.describe())
    else:
        console.print(f"Initialized loopml workspace in [bold]{ws.dir}[/bold]")
        console.print(f"  metadata:  {ws.describe()['db_url']}")
        console.print(f"  artifacts: {ws.settings.resolved_artifacts_url}")


def _mount_module(module_name: str, group: str | None) -> bool:
    """Add one module's group or commands to the app; False when the module does not exist."""
    if module_name in _mounted:
        return True
    try:
        module = importlib.import_module(f"loopml.cli.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"loopml.cli.{module_name}":
            return False
        raise
    _mounted.add(module_name)
    if group and hasattr(module, "app"):
        _app.add_typer(module.app, name=group)
    if hasattr(module, "register"):
        module.register(_app)
    return True


def _mount() -> None:
    """Mount every module, in ``_GROUPS`` order (the order ``--help`` lists them)."""
    for module_name, group in _GROUPS:
        _mount_module(module_name, group)


def _mount_for(argv: list[str]) -> None:
    """Mount only the module that defines the command ``argv`` names, or all when unsure."""
    name = next((a for a in argv if not a.startswith("-")), None)
    if name is not None and name != "init" and not any(a in ("--help", "-h") for a in argv[: argv.index(name)]):
        wanted = _COMMAND_MODULES.get(name, name)
        for module_name, group in _GROUPS:
            if module_name == wanted and (group is None or group == name):
                if _mount_module(module_name, group):
                    return
                break
    if name != "init":
        _mount()


def __getattr__(name: str) -> Any:
    """``app``: the whole command line, every module mounted (tests, docs, other entry points)."""
    if name == "app":
        _mount()
        globals()["app"] = _app
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """The ``loopml`` console script."""
    with quiet_gc():
        _mount_for(sys.argv[1:])
    try:
        _app()
    finally:
        # The process ends here: the exit-time collection would walk every object the command
        # allocated once more (about 25 ms for a cached ``loopml run``). Freezing skips it; live
        # objects are still released as modules are torn down, only unreachable cycles are left
        # to the OS.
        gc.freeze()


if __name__ == "__main__":
    main()
