"""Plain records returned by the tracking services (never ORM rows)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["ArtifactRef", "MetricPoint", "RunRecord"]


@dataclass(frozen=True)
class ArtifactRef:
    """A named artifact of a run: its bytes live in the artifact store under ``digest``."""

    name: str
    digest: str
    size: int
    media_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "digest": self.digest, "size": self.size, "media_type": self.media_type}


@dataclass(frozen=True)
class MetricPoint:
    """The latest point of one metric: highest step, then latest time."""

    value: float
    step: int
    ts: float


@dataclass(frozen=True)
class RunRecord:
    """One run as the API returns it: attributes, params, latest metrics, tags, artifacts."""

    id: str
    name: str
    experiment: str
    kind: str
    status: str
    parent_id: str | None
    started_at: datetime
    ended_at: datetime | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    metric_steps: dict[str, int] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: tuple[ArtifactRef, ...] = ()
    git_commit: str | None = None
    git_dirty: bool | None = None
    cache_key: str | None = None
    trigger: dict[str, Any] | None = None
    error: str | None = None
    created_by: str = ""

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end (``None`` while running)."""
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    def artifact(self, name: str) -> ArtifactRef | None:
        return next((a for a in self.artifacts if a.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ISO times, NaN metrics as ``None``."""
        return {
            "id": self.id,
            "name": self.name,
            "experiment": self.experiment,
            "kind": self.kind,
            "status": self.status,
            "parent_id": self.parent_id,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "duration_s": self.duration_s,
            "params": dict(self.params),
            "metrics": {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in self.metrics.items()},
            "metric_steps": dict(self.metric_steps),
            "tags": dict(self.tags),
            "artifacts": [a.to_dict() for a in self.artifacts],
            "git": {"commit": self.git_commit, "dirty": self.git_dirty},
            "cache_key": self.cache_key,
            "trigger": self.trigger,
            "error": self.error,
            "created_by": self.created_by,
        }
