"""Executors: where a ``StepTask`` runs. The engine decides what runs and records it.

``Executor.run_step`` is the policy (checks the task, never lets a mechanism
failure escape: a broken pool or an unpicklable task becomes a failed
``StepResult``); ``_submit`` is the mechanism a subclass implements. A Ray
executor is one more subclass whose ``_submit`` wraps ``ray.remote(execute_portable)``:
the task already carries everything a remote worker needs.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import traceback
from abc import ABC, abstractmethod
from concurrent import futures
from concurrent.futures import Future
from types import TracebackType
from typing import ClassVar

from loopml.kernel.exceptions import PipelineError
from loopml.kernel.types import utcnow
from loopml.runner._task import StepResult, StepTask
from loopml.runner._worker import execute, execute_portable

__all__ = ["EXECUTORS", "Executor", "InProcessExecutor", "ProcessPoolExecutor", "get_executor"]


def _failure(task: StepTask, exc: BaseException, where: str) -> StepResult:
    now = utcnow()
    return StepResult(
        step_name=task.step_name,
        started_at=now,
        ended_at=now,
        pid=os.getpid(),
        host=socket.gethostname(),
        error=f"{type(exc).__name__}: {exc} ({where})",
        traceback="".join(traceback.format_exception(exc)),
        exception=exc,
    )


class Executor(ABC):
    """Runs step tasks; subclasses implement :meth:`_submit`.

    An executor is a context manager; :func:`run_pipeline` shuts down the
    executors it creates, and leaves alone the ones it is given (so a pool can
    serve several runs).
    """

    #: the name ``run_pipeline(executor=...)`` and ``LOOPML_EXECUTOR`` use
    name: ClassVar[str] = "executor"

    @property
    def max_workers(self) -> int:
        """How many steps this executor runs at once (the engine submits no more)."""
        return 1

    def run_step(self, task: StepTask) -> Future[StepResult]:
        """Start ``task``; the future always resolves to a ``StepResult`` and never raises."""
        if not isinstance(task, StepTask):
            raise PipelineError(f"{type(self).__name__}.run_step takes a StepTask, not {type(task).__name__}")
        try:
            inner = self._submit(task)
        except Exception as exc:  # the mechanism failed before the step ran (pickling, pool)
            self._on_broken(exc)
            done: Future[StepResult] = Future()
            done.set_result(_failure(task, exc, f"{self.name} executor could not start the step"))
            return done
        outer: Future[StepResult] = Future()

        def relay(f: Future[StepResult]) -> None:
            try:
                outer.set_result(f.result())
            except BaseException as exc:  # a worker died, or the future was cancelled
                self._on_broken(exc)
                outer.set_result(_failure(task, exc, f"{self.name} executor lost the step"))

        inner.add_done_callback(relay)
        return outer

    @abstractmethod
    def _submit(self, task: StepTask) -> Future[StepResult]:
        """Start the task somewhere; the future resolves to the worker's ``StepResult``."""

    def _on_broken(self, exc: BaseException) -> None:
        """Hook: the mechanism failed (e.g. drop a broken pool so the next run gets a new one)."""
        return None

    def shutdown(self, wait: bool = True) -> None:
        """Release workers; the executor can be used again afterwards."""
        return None

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown(wait=exc_type is None)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_workers={self.max_workers})"


class InProcessExecutor(Executor):
    """Runs each step in this process, one at a time (the default)."""

    name = "inprocess"

    def _submit(self, task: StepTask) -> Future[StepResult]:
        fut: Future[StepResult] = Future()
        fut.set_result(execute(task))
        return fut


class ProcessPoolExecutor(Executor):
    """Runs steps in a local pool of processes; independent steps run in parallel.

    Args:
        max_workers: processes in the pool (default: CPU count, at most 8).
        start_method: ``spawn`` (default: clean workers, the same rules as a remote
            executor: step code must be importable or picklable), ``forkserver`` or ``fork``.
    """

    name = "process"

    def __init__(self, max_workers: int | None = None, *, start_method: str = "spawn") -> None:
        if max_workers is not None and max_workers < 1:
            raise PipelineError(f"max_workers must be at least 1, got {max_workers}")
        if start_method not in multiprocessing.get_all_start_methods():
            raise PipelineError(
                f"start_method {start_method!r} is not available here; "
                f"choose one of {', '.join(multiprocessing.get_all_start_methods())}"
            )
        self._max_workers = max_workers or min(8, os.cpu_count() or 1)
        self._start_method = start_method
        self._pool: futures.ProcessPoolExecutor | None = None

    @property
    def max_workers(self) -> int:
        return self._max_workers

    def _get_pool(self) -> futures.ProcessPoolExecutor:
        # Created on the first step, so a fully cached run starts no process.
        if self._pool is None:
            self._pool = futures.ProcessPoolExecutor(
                max_workers=self._max_workers,
                mp_context=multiprocessing.get_context(self._start_method),
            )
        return self._pool

    def _submit(self, task: StepTask) -> Future[StepResult]:
        return self._get_pool().submit(execute_portable, task)

    def _on_broken(self, exc: BaseException) -> None:
        if isinstance(exc, futures.BrokenExecutor) and self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def shutdown(self, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=not wait)
            self._pool = None


#: executor names accepted by ``run_pipeline(executor=...)``
EXECUTORS: dict[str, type[Executor]] = {
    InProcessExecutor.name: InProcessExecutor,
    ProcessPoolExecutor.name: ProcessPoolExecutor,
}


def get_executor(spec: str | Executor) -> tuple[Executor, bool]:
    """``(executor, owned)``: an instance for a name, or the instance given (not owned).

    Raises:
        PipelineError: an unknown executor name.
    """
    if isinstance(spec, Executor):
        return spec, False
    if isinstance(spec, str) and (spec == "ray" or spec.startswith("ray:")):
        # Registered lazily: naming the Ray executor must not import ray.
        from loopml.runner._ray import RayExecutor

        return RayExecutor.from_spec(spec), True
    cls = EXECUTORS.get(spec) if isinstance(spec, str) else None
    if cls is None:
        raise PipelineError(
            f"unknown executor {spec!r}; choose {', '.join(repr(n) for n in [*EXECUTORS, 'ray', 'ray://HOST:PORT'])} "
            "or pass an Executor instance"
        )
    return cls(), True
