"""What every CLI command shares: the workspace, --json output, one-line errors.

The CLI is a thin face: it parses, calls one service function, prints. Errors
from the loopml tree become one line on stderr and exit code 1 (2 for bad
input); ``--debug`` or ``LOOPML_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import typer

from loopml.kernel.config import get_settings
from loopml.kernel.exceptions import LoopmlError, ValidationError

__all__ = [
    "JsonOpt",
    "console",
    "err_console",
    "handle_errors",
    "print_json",
    "print_table",
    "quiet_gc",
    "remote",
    "to_jsonable",
    "workspace",
]

_CONSOLES = {"console": {}, "err_console": {"stderr": True}}


def _rich_console(name: str) -> Any:
    """The Rich console ``name``, made on first use: Rich costs about 20 ms to import,
    and a ``--json`` command never prints through it."""
    value = globals().get(name)
    if value is None:
        from rich.console import Console

        value = globals()[name] = Console(**_CONSOLES[name])
    return value


def __getattr__(name: str) -> Any:
    """``console`` and ``err_console`` (see :func:`_rich_console`)."""
    if name in _CONSOLES:
        return _rich_console(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

F = TypeVar("F", bound=Callable[..., Any])

JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")

_state: dict[str, Any] = {"debug": False}


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Import start-up modules with the cyclic GC paused, then freeze what they allocated.

    Imports allocate ~100k objects that live as long as the process (modules,
    classes, SQLAlchemy's and pydantic's tables). The collector would walk them
    again and again while they load and once more at exit, about 0.15 s of CPU per
    CLI call. Frozen objects are skipped by every later collection; the GC runs as
    before for what the command itself allocates (the pattern of :func:`gc.freeze`'s docs).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def set_debug(flag: bool) -> None:
    _state["debug"] = flag


def workspace(actor: str | None = None):  # type: ignore[no-untyped-def]
    """Open the workspace for a command (imported lazily to keep --help fast).

    With ``LOOPML_SERVER_URL`` set, the command's permission is checked for the
    token's user first, and the workspace acts as that user (:mod:`loopml.cli._access`).
    """
    from loopml.cli._access import caller
    from loopml.workspace import open_workspace

    return open_workspace(actor=caller() or actor)


def remote():  # type: ignore[no-untyped-def]
    """A ``RemoteClient`` when ``LOOPML_SERVER_URL`` is set (the command then goes over HTTP), else ``None``."""
    from loopml.cli._access import remote as _remote

    return _remote()


def _debug_setting() -> bool:
    """``LOOPML_DEBUG``; false when the settings themselves are the error being reported."""
    try:
        return get_settings().debug
    except LoopmlError:
        return False


def handle_errors(func: F) -> F:
    """Turn loopml errors into a one-line message and a non-zero exit.

    With ``LOOPML_SERVER_URL`` set, the command's permission is checked for the
    token's user before it runs (:func:`loopml.cli._access.check`).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            if get_settings().server_url:  # a server is the target: check the token user's roles first
                from loopml.cli._access import check

                check()
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except LoopmlError as exc:
            if _state["debug"] or _debug_setting():
                raise
            from rich.markup import escape

            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            _rich_console("err_console").print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
            raise typer.Exit(2 if isinstance(exc, ValidationError) else 1) from None

    return wrapper  # type: ignore[return-value]


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if hasattr(obj, "to_dict"):
        return to_jsonable(obj.to_dict())
    if hasattr(obj, "model_dump"):
        return to_jsonable(obj.model_dump())
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return obj.item()
    return obj


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2, default=str) + "\n")


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    _rich_console("console").print(table)
