"""The unit of work an executor runs, and what comes back.

``StepTask`` = (step reference, input digests, params, artifact store URL);
``StepResult`` = output digests, captured logs, timing, and the error if any.
Both are plain picklable values, so a task can cross a process or a machine
boundary: the worker needs the step's code and the artifact store, never the
metadata store (the engine writes every row).
"""

from __future__ import annotations

import importlib
import pickle
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loopml.kernel.exceptions import PipelineError
from loopml.pipeline import Step

__all__ = ["StepRef", "StepResult", "StepTask"]


@dataclass(frozen=True)
class StepRef:
    """Where a worker finds a step: ``module:qualname``, or the pickled step itself.

    A step defined at the top level of an importable module travels by
    reference (cheap, and the worker runs the code it has installed); a step
    defined in ``__main__``, a notebook or a function body travels by value
    (cloudpickle).
    """

    module: str
    qualname: str
    pickled: bytes | None = None

    @classmethod
    def of(cls, step: Step) -> StepRef:
        module, qualname = step.func.__module__, step.func.__qualname__
        if module != "__main__" and "<locals>" not in qualname:
            try:
                if _resolve(module, qualname) is step:
                    return cls(module, qualname)
            except PipelineError:
                pass
        try:
            import cloudpickle
        except ImportError as exc:  # pragma: no cover - core dependency
            raise PipelineError(
                f"step '{step.name}' is not importable as {module}.{qualname} and cloudpickle "
                "is not installed to ship it by value"
            ) from exc
        return cls(module, qualname, cloudpickle.dumps(step, protocol=pickle.HIGHEST_PROTOCOL))

    def load(self) -> Step:
        """The step object this reference names."""
        if self.pickled is not None:
            obj = pickle.loads(self.pickled)  # noqa: S301 - shipped by our own engine
        else:
            obj = _resolve(self.module, self.qualname)
        if not isinstance(obj, Step):
            raise PipelineError(f"{self.module}:{self.qualname} is a {type(obj).__name__}, not a step")
        return obj

    def __str__(self) -> str:
        return f"{self.module}:{self.qualname}" + (" (by value)" if self.pickled else "")


def _resolve(module: str, qualname: str) -> Any:
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise PipelineError(f"cannot import step {module}:{qualname}: {exc}") from exc
    return obj


@dataclass(frozen=True)
class StepTask:
    """One step to run: everything a worker needs, nothing it must not see."""

    step_name: str
    step: StepRef
    outputs: tuple[str, ...]
    input_digests: dict[str, str]
    params: dict[str, Any]
    artifacts_url: str
    #: the step run this task belongs to (for log lines and remote bookkeeping)
    run_id: str = ""
    resources: dict[str, Any] = field(default_factory=dict)
    #: where the workspace is, for steps that take a ``context`` (None: the step does not)
    workspace: Any = None


@dataclass(frozen=True)
class StepResult:
    """What a worker hands back: output digests and meta, logs, timing, or the error."""

    step_name: str
    started_at: datetime
    ended_at: datetime
    output_digests: dict[str, str] = field(default_factory=dict)
    #: output name -> {"size", "media_type", "serializer", "python_type"}
    output_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    logs: str = ""
    pid: int = 0
    host: str = ""
    #: "ExcType: message" when the step (or loading its inputs, or storing its outputs) failed
    error: str | None = None
    traceback: str | None = None
    #: the exception itself, when it survived the trip back (else ``None``)
    exception: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def duration_s(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()
