"""What the registry returns: plain frozen records, never ORM rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["AliasChange", "AliasRecord", "LoadedModel", "ModelVersionRecord", "RegisteredModelRecord"]


@dataclass(frozen=True)
class ModelVersionRecord:
    """One registered model version: every column of its row, its model's name and aliases."""

    id: int
    model_id: int
    name: str
    version: int
    artifact_digest: str
    flavor: str
    task: str | None
    signature: dict[str, Any] | None
    profile: dict[str, Any] | None
    evaluation: dict[str, Any] | None
    gate_report: dict[str, Any] | None
    gates_passed: bool | None
    run_id: str | None
    git_commit: str | None
    git_dirty: bool | None
    tags: dict[str, Any]
    description: str | None
    created_at: datetime
    created_by: str
    aliases: tuple[str, ...] = ()
    #: ``NAME@VERSION`` of the dataset versions it was trained on (from the lineage graph).
    dataset_versions: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """``NAME/VERSION``: the reference that always means this exact version."""
        return f"{self.name}/{self.version}"

    @property
    def node(self) -> tuple[str, str]:
        """This version's node in the lineage graph."""
        return ("model_version", self.ref)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "model_id": self.model_id, "name": self.name, "version": self.version,
            "ref": self.ref, "artifact_digest": self.artifact_digest, "flavor": self.flavor,
            "task": self.task, "signature": self.signature, "profile": self.profile,
            "evaluation": self.evaluation, "gate_report": self.gate_report,
            "gates_passed": self.gates_passed, "run_id": self.run_id, "git_commit": self.git_commit,
            "git_dirty": self.git_dirty, "tags": dict(self.tags), "description": self.description,
            "created_at": self.created_at.isoformat(), "created_by": self.created_by,
            "aliases": list(self.aliases), "dataset_versions": list(self.dataset_versions),
        }


@dataclass(frozen=True)
class RegisteredModelRecord:
    """A registered model: its versions' count, the latest, and where its aliases point."""

    id: int
    name: str
    project: str
    description: str | None
    latest_version: int | None
    n_versions: int
    aliases: dict[str, int]
    created_at: datetime
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "project": self.project, "description": self.description,
            "latest_version": self.latest_version, "n_versions": self.n_versions,
            "aliases": dict(self.aliases), "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class AliasRecord:
    """Where an alias points now (or pointed, for a deleted one) and where it pointed before."""

    name: str
    alias: str
    version: int
    version_id: int
    updated_at: datetime
    previous_version: int | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.alias}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "alias": self.alias, "ref": self.ref, "version": self.version,
            "version_id": self.version_id, "updated_at": self.updated_at.isoformat(),
            "previous_version": self.previous_version,
        }


@dataclass(frozen=True)
class AliasChange:
    """One row of an alias's history: ``from_version`` → ``to_version`` (``None``: unset)."""

    name: str
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str | None
    ts: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "alias": self.alias, "from_version": self.from_version,
            "to_version": self.to_version, "actor": self.actor, "reason": self.reason,
            "ts": self.ts.isoformat(),
        }


@dataclass(frozen=True)
class LoadedModel:
    """A model version loaded for use: the estimator plus what serving needs to know."""

    name: str
    version: int
    estimator: Any
    signature: dict[str, Any] | None
    task: str | None
    record: ModelVersionRecord = field(repr=False)

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"
