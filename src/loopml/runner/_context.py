"""``StepContext``: what a step that asks for ``context`` gets from the runner.

Most steps are pure functions of their inputs. A few must touch the stores:
ingesting data, registering a model, recording search trials. They declare a
``context`` parameter and receive this object, built wherever the step runs
from the workspace's coordinates (root, metadata URL, artifact URL, actor), so
an in-process, pooled or remote worker opens the same workspace.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.workspace import Workspace

__all__ = ["StepContext", "WorkspaceCoordinates"]


@dataclass(frozen=True)
class WorkspaceCoordinates:
    """Enough to reopen a workspace in another process (picklable, no secrets beyond the URLs)."""

    root: str
    db_url: str
    artifacts_url: str
    actor: str
    pipeline_run_id: str
    experiment: str
    git_commit: str | None = None
    git_dirty: bool | None = None

    @classmethod
    def of(cls, ws: Workspace, *, pipeline_run_id: str, experiment: str) -> WorkspaceCoordinates:
        from loopml.tracking import git_info

        commit, dirty = git_info(ws.root)
        return cls(str(ws.root), ws.store.url, ws.settings.resolved_artifacts_url, ws.actor,
                   pipeline_run_id, experiment, commit, dirty)


class StepContext:
    """The workspace, the run ids, and helpers that record against the step's run."""

    def __init__(self, coords: WorkspaceCoordinates, run_id: str) -> None:
        self.coords = coords
        self.run_id = run_id
        self.pipeline_run_id = coords.pipeline_run_id
        self.experiment = coords.experiment
        self.git_commit = coords.git_commit
        self.git_dirty = coords.git_dirty

    @cached_property
    def workspace(self) -> Workspace:
        from loopml.workspace import open_workspace

        return open_workspace(self.coords.root, actor=self.coords.actor, db_url=self.coords.db_url,
                              artifacts_url=self.coords.artifacts_url)

    def log_params(self, params: dict[str, Any]) -> None:
        from loopml.tracking import log_batch

        log_batch(self.workspace, self.run_id, params={k: str(v) for k, v in params.items()})

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        from loopml.tracking import log_batch

        log_batch(self.workspace, self.run_id, metrics=[(k, float(v), step) for k, v in metrics.items()])

    def link(self, node: tuple[str, str | int], relation: str = "used_by") -> None:
        """Lineage: ``node --relation--> this pipeline run``."""
        with self.workspace.store.write(self.coords.actor) as tx:
            tx.link(node, relation, ("run", self.pipeline_run_id))

    def record_trial(self, trial: Any) -> str:
        """One hyper-parameter trial as a child run (kind ``trial``) of this step's run."""
        from loopml.tracking import start_run

        number = getattr(trial, "number", 0)
        with start_run(self.workspace, f"trial-{number}", experiment=self.experiment, kind="trial",
                       parent_id=self.run_id) as run:
            run.log_params({k: str(v) for k, v in (getattr(trial, "params", None) or {}).items()})
            value = getattr(trial, "value", None)
            if value is not None:
                run.log_metric("value", float(value))
            duration = getattr(trial, "duration_s", None)
            if duration is not None:
                run.log_metric("duration_s", float(duration))
            run.set_tag("state", str(getattr(trial, "state", "")))
            if getattr(trial, "state", "complete") not in ("complete", "COMPLETE"):
                run.set_tag("error", str(getattr(trial, "error", "") or ""))
            return run.id
