"""Executes pipelines: records runs, caches steps, ships work to an executor.

Names resolve lazily, so a worker process that imports ``loopml.runner._worker``
does not pay for the metadata store, and ``import loopml.runner`` loads no
pandas or pyarrow (they load only when a DataFrame is (de)serialized).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.kernel.lazy import lazy_exports

#: public name -> private module that defines it
_HOMES: dict[str, str] = {
    "run_pipeline": "loopml.runner._engine",
    "StepContext": "loopml.runner._context",
    "WorkspaceCoordinates": "loopml.runner._context",
    "EXECUTORS": "loopml.runner._executors",
    "Executor": "loopml.runner._executors",
    "InProcessExecutor": "loopml.runner._executors",
    "ProcessPoolExecutor": "loopml.runner._executors",
    "RayExecutor": "loopml.runner._ray",
    "get_executor": "loopml.runner._executors",
    "NullReporter": "loopml.runner._progress",
    "Reporter": "loopml.runner._progress",
    "RichReporter": "loopml.runner._progress",
    "PipelineRunResult": "loopml.runner._result",
    "StepRunRecord": "loopml.runner._result",
    "StepRef": "loopml.runner._task",
    "StepResult": "loopml.runner._task",
    "StepTask": "loopml.runner._task",
    "execute": "loopml.runner._worker",
    "load_value": "loopml.runner._worker",
}

__all__ = sorted(_HOMES)


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from loopml.runner._context import StepContext, WorkspaceCoordinates
    from loopml.runner._engine import run_pipeline
    from loopml.runner._executors import (
        EXECUTORS,
        Executor,
        InProcessExecutor,
        ProcessPoolExecutor,
        get_executor,
    )
    from loopml.runner._ray import RayExecutor
    from loopml.runner._progress import NullReporter, Reporter, RichReporter
    from loopml.runner._result import PipelineRunResult, StepRunRecord
    from loopml.runner._task import StepRef, StepResult, StepTask
    from loopml.runner._worker import execute, load_value
