"""What ``run_pipeline`` returns: plain records, outputs loaded from the store on demand."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loopml.artifacts import ArtifactStore
from loopml.kernel.exceptions import PipelineError

__all__ = ["PipelineRunResult", "StepRunRecord"]


@dataclass(frozen=True)
class StepRunRecord:
    """One step of one pipeline run: ``succeeded``, ``cached``, ``failed`` or ``skipped``."""

    name: str
    run_id: str
    status: str
    started_at: datetime | None = None
    ended_at: datetime | None = None
    cache_key: str | None = None
    cache_hit: bool = False
    #: the step run whose outputs a cached step reused
    cached_from: str | None = None
    output_digests: dict[str, str] = field(default_factory=dict)
    input_digests: dict[str, str] = field(default_factory=dict)
    pid: int | None = None
    error: str | None = None

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "run_id": self.run_id,
            "status": self.status,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "duration_s": self.duration_s,
            "cache_key": self.cache_key,
            "cache_hit": self.cache_hit,
            "cached_from": self.cached_from,
            "output_digests": dict(self.output_digests),
            "input_digests": dict(self.input_digests),
            "pid": self.pid,
            "error": self.error,
        }


@dataclass(frozen=True)
class PipelineRunResult:
    """A finished pipeline run: its id, each step's record, and its outputs by digest."""

    run_id: str
    pipeline: str
    status: str
    started_at: datetime
    ended_at: datetime
    #: step name -> record, in topological order
    steps: dict[str, StepRunRecord]
    #: every output produced (or reused) in this run: name -> digest
    output_digests: dict[str, str]
    #: outputs no step consumes
    final_outputs: tuple[str, ...]
    executor: str = "inprocess"
    _store: ArtifactStore | None = field(default=None, repr=False, compare=False)

    @property
    def duration_s(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()

    @property
    def cache_hits(self) -> tuple[str, ...]:
        """Names of the steps whose outputs came from the cache."""
        return tuple(n for n, s in self.steps.items() if s.cache_hit)

    def step(self, name: str) -> StepRunRecord:
        try:
            return self.steps[name]
        except KeyError:
            raise PipelineError(
                f"pipeline run {self.run_id} has no step '{name}'; steps: {', '.join(self.steps)}"
            ) from None

    def output(self, name: str) -> Any:
        """Load output ``name`` from the artifact store (a new object on each call).

        Raises:
            PipelineError: the run has no output of that name.
        """
        digest = self.output_digests.get(name)
        if digest is None:
            known = ", ".join(f"'{n}'" for n in self.output_digests) or "(none)"
            raise PipelineError(f"pipeline run {self.run_id} has no output '{name}'; outputs: {known}")
        if self._store is None:
            raise PipelineError(f"pipeline run {self.run_id}: this result is not bound to an artifact store")
        from loopml.runner._worker import load_value

        return load_value(self._store, digest)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "status": self.status,
            "executor": self.executor,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "duration_s": self.duration_s,
            "steps": [s.to_dict() for s in self.steps.values()],
            "output_digests": dict(self.output_digests),
            "final_outputs": list(self.final_outputs),
        }
