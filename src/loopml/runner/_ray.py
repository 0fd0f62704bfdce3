"""``RayExecutor``: each step a Ray task with the step's declared resources.

The task is the same picklable ``StepTask`` the process pool runs; the remote
function is ``execute_portable``, so a Ray worker does exactly what a pooled
worker does: it reads inputs from and writes outputs to the artifact store by
digest (outputs never travel through the driver), opens the workspace from
``WorkspaceCoordinates`` only for steps that take a ``context``, and hands back
a ``StepResult`` with the logs and, on failure, the worker's traceback. The
engine stays the only writer of metadata, so caching, lineage, audit and
resuming behave as in-process.

Resources: a step's ``resources`` mapping is read as ``cpus`` (or
``num_cpus``, default 1), ``gpus`` (``num_gpus``), ``memory`` (bytes) and any
other key as a Ray custom resource. Every worker must reach the artifact store
(and, for context steps, the metadata store) at the same URLs as the driver.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from loopml.kernel.exceptions import MissingExtraError, PipelineError
from loopml.runner._executors import Executor
from loopml.runner._task import StepResult, StepTask
from loopml.runner._worker import execute_portable

__all__ = ["RayExecutor", "import_ray", "ray_options"]

#: how many steps the engine hands to Ray at once when ``max_workers`` is not given;
#: Ray itself queues tasks whose resources are not free yet.
_DEFAULT_IN_FLIGHT = 32
_ALIASES = {"cpus": "num_cpus", "num_cpus": "num_cpus", "gpus": "num_gpus", "num_gpus": "num_gpus",
            "memory": "memory"}


def import_ray(feature: str = "the Ray executor") -> Any:
    """``ray``, or ``MissingExtraError`` naming ``pip install 'loopml[ray]'``."""
    try:
        import ray
    except ImportError as exc:
        raise MissingExtraError("ray", "ray", feature) from exc
    return ray


def ray_options(resources: dict[str, Any]) -> dict[str, Any]:
    """Ray ``.options(...)`` for a step's declared ``resources``."""
    opts: dict[str, Any] = {"num_cpus": 1}
    custom: dict[str, float] = {}
    for key, value in resources.items():
        name = _ALIASES.get(key)
        if name == "memory":
            opts["memory"] = int(value)
        elif name is not None:
            opts[name] = value
        else:
            custom[key] = float(value)
    if custom:
        opts["resources"] = custom
    return opts


class RayExecutor(Executor):
    """Runs each step as a Ray task; independent steps run in parallel across the cluster.

    Args:
        address: ``None`` (join a Ray already started in this process, else start
            a local one), ``"auto"`` (join the cluster this node belongs to) or
            ``"ray://host:10001"`` (Ray Client).
        max_workers: steps in flight at once (default 32; Ray queues what does
            not fit the cluster's free resources).
        init_kwargs: extra ``ray.init`` arguments (``runtime_env``, ``num_cpus`` ...),
            used only when this executor starts or joins Ray itself.

    Ray is started (or joined) on the first step, so a fully cached run touches
    no cluster. If this executor called ``ray.init``, :meth:`shutdown` calls
    ``ray.shutdown``; a Ray the caller started is left running.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, max_workers: int | None = None,
                 init_kwargs: dict[str, Any] | None = None) -> None:
        if max_workers is not None and max_workers < 1:
            raise PipelineError(f"max_workers must be at least 1, got {max_workers}")
        if address is not None and address != "auto" and ":" not in address:
            raise PipelineError(
                f"Ray address {address!r} is not valid; use 'auto', 'ray://HOST:PORT' or HOST:PORT"
            )
        self.address = address
        self._max_workers = max_workers or _DEFAULT_IN_FLIGHT
        self._init_kwargs = dict(init_kwargs or {})
        self._started = False
        self._remote: Any = None

    @classmethod
    def from_spec(cls, spec: str) -> RayExecutor:
        """``"ray"`` → local or current Ray; ``"ray://host:port"`` → Ray Client at that address."""
        if spec == "ray":
            return cls()
        if spec.startswith("ray://"):
            return cls(spec)
        if spec.startswith("ray:"):  # ray:auto, ray:host:6379
            return cls(spec[len("ray:"):])
        raise PipelineError(f"executor {spec!r} is not a Ray address; use 'ray' or 'ray://HOST:PORT'")

    @property
    def max_workers(self) -> int:
        return self._max_workers

    def _ray(self) -> Any:
        ray = import_ray()
        if not ray.is_initialized():
            kwargs = {"ignore_reinit_error": True, "include_dashboard": False, **self._init_kwargs}
            if self.address is not None:
                kwargs["address"] = self.address
            if self.address and self.address.startswith("ray://"):
                kwargs.pop("include_dashboard", None)  # a client does not start a dashboard
            try:
                ray.init(**kwargs)
            except Exception as exc:  # connection refused, bad address, version mismatch
                raise PipelineError(f"could not start or join Ray at {self.address or 'a local instance'}: {exc}") from exc
            self._started = True
        if self._remote is None:
            self._remote = ray.remote(execute_portable)
        return ray

    def _submit(self, task: StepTask) -> Future[StepResult]:
        self._ray()
        # No retries: a step may have side effects (registering a model); a
        # lost worker is a failed step, and re-running the pipeline resumes.
        ref = self._remote.options(max_retries=0, **ray_options(dict(task.resources))).remote(task)
        fut: Future[StepResult] = ref.future()
        return fut

    def shutdown(self, wait: bool = True) -> None:
        self._remote = None
        if self._started:
            self._started = False
            try:
                import ray

                ray.shutdown()
            except Exception:  # shutting down is best effort
                pass

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r}, max_workers={self.max_workers})"
