"""Progress reporting: silent by default, one Rich status line per step on request."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from loopml.pipeline import Pipeline

__all__ = ["NullReporter", "Reporter", "RichReporter", "make_reporter"]


class Reporter(Protocol):
    """What the engine tells about a run as it goes."""

    def __enter__(self) -> Reporter: ...
    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None: ...
    def step_started(self, name: str) -> None: ...
    def step_finished(self, name: str, status: str, seconds: float | None) -> None: ...


class NullReporter:
    """Says nothing (the library default)."""

    def __enter__(self) -> NullReporter:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        return None

    def step_started(self, name: str) -> None:
        return None

    def step_finished(self, name: str, status: str, seconds: float | None) -> None:
        return None


_STYLE = {"succeeded": "green", "cached": "cyan", "failed": "red", "skipped": "yellow"}
_MARK = {"succeeded": "✓", "cached": "↺", "failed": "✗", "skipped": "-"}


class RichReporter:
    """A Rich progress display: a spinner and status per step, and an overall bar."""

    def __init__(self, pipeline: Pipeline, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            SpinnerColumn(finished_text=" "),
            TextColumn("{task.description}"),
            TextColumn("{task.fields[status]}"),
            BarColumn(bar_width=None),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._total = self._progress.add_task(
            f"[bold]{pipeline.name}[/bold]", total=len(pipeline), status=f"0/{len(pipeline)} steps"
        )
        self._done = 0
        self._n = len(pipeline)
        self._tasks = {
            s.name: self._progress.add_task(f"  {s.name}", total=1, start=False, status="[dim]pending[/dim]")
            for s in pipeline.steps
        }

    def __enter__(self) -> RichReporter:
        self._progress.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._progress.stop()

    def step_started(self, name: str) -> None:
        task = self._tasks[name]
        self._progress.start_task(task)
        self._progress.update(task, status="running")

    def step_finished(self, name: str, status: str, seconds: float | None) -> None:
        task = self._tasks[name]
        style = _STYLE.get(status, "white")
        took = f" in {seconds:.2f}s" if seconds else ""
        self._progress.start_task(task)
        self._progress.update(
            task, completed=1, status=f"[{style}]{_MARK.get(status, '?')} {status}{took}[/{style}]"
        )
        self._done += 1
        self._progress.update(self._total, completed=self._done, status=f"{self._done}/{self._n} steps")


def make_reporter(progress: bool | Reporter, pipeline: Pipeline) -> Reporter:
    """``False`` → silent, ``True`` → Rich on stderr, a reporter object → itself."""
    if progress is True:
        return RichReporter(pipeline)
    if progress is False or progress is None:
        return NullReporter()
    return progress
