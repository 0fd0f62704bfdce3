"""The runner's rows, written through ``loopml.tracking``: pipeline runs, step runs, the cache index.

A pipeline run is a tracking run of kind ``pipeline``; each step is a child
run of kind ``step`` whose ``cache_key`` is the cache index. A step's outputs
are its run artifacts named ``outputs/<name>``, its captured logs ``logs.txt``.
Output rows point at digests the worker already stored, so they are attached by
digest (``ActiveRun.attach_artifacts``: ``log_artifact`` takes bytes, and
re-reading a large output only to log it again would cost a full copy); they are
written in the transaction that ends the step run, so a ``succeeded`` (or
``cached``) step run always lists its outputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loopml.kernel.types import utcnow
from loopml.runner._task import StepResult
from loopml.tracking import ActiveRun, ArtifactRef, find_cached_artifacts, start_run
from loopml.workspace import Workspace

__all__ = [
    "LOGS_ARTIFACT",
    "OUTPUT_PREFIX",
    "CacheHit",
    "find_cached",
    "finish_pipeline_run",
    "finish_step_run",
    "record_cached_step",
    "record_skipped_steps",
    "start_pipeline_run",
    "start_step_run",
]

OUTPUT_PREFIX = "outputs/"
LOGS_ARTIFACT = "logs.txt"

#: output name -> (digest, size, media_type)
Outputs = dict[str, tuple[str, int, str | None]]


@dataclass(frozen=True)
class CacheHit:
    """A succeeded step run whose outputs are all still in the artifact store."""

    run_id: str
    outputs: Outputs


def _attach_outputs(run: ActiveRun, outputs: Outputs) -> None:
    run.attach_artifacts(ArtifactRef(OUTPUT_PREFIX + n, d, s, m) for n, (d, s, m) in outputs.items())


def start_pipeline_run(
    ws: Workspace,
    *,
    name: str,
    experiment: str,
    params: Mapping[str, Any],
    trigger: Mapping[str, Any] | None,
    tags: Mapping[str, str],
) -> ActiveRun:
    """Start the ``running`` pipeline run and log its params."""
    run = start_run(ws, name, experiment=experiment, kind="pipeline", tags=tags, trigger=trigger)
    if params:
        run.log_params(params)
    return run


def finish_pipeline_run(run: ActiveRun, *, status: str, error: str | None = None) -> datetime:
    """End the pipeline run (``succeeded`` or ``failed``)."""
    run.end(status, error=error)
    return utcnow()


def find_cached(ws: Workspace, cache_key: str, outputs: tuple[str, ...]) -> CacheHit | None:
    """The newest succeeded step run with ``cache_key``, if all its outputs are still stored."""
    cached = find_cached_artifacts(ws, cache_key, kind="step")
    if cached is None:
        return None
    run_id, artifacts = cached
    found: Outputs = {
        a.name[len(OUTPUT_PREFIX):]: (a.digest, a.size, a.media_type)
        for a in artifacts
        if a.name.startswith(OUTPUT_PREFIX)
    }
    if set(found) != set(outputs) or not all(ws.artifacts.exists(d) for d, _, _ in found.values()):
        return None
    return CacheHit(run_id, found)


def _step_tags(pipeline: str, step_ref: str, input_digests: Mapping[str, str]) -> dict[str, str]:
    tags = {"loopml.pipeline": pipeline, "loopml.step_ref": step_ref}
    tags.update({f"loopml.input.{k}": v for k, v in input_digests.items()})
    return tags


def start_step_run(
    ws: Workspace,
    *,
    parent_id: str,
    experiment: str,
    pipeline: str,
    step: str,
    step_ref: str,
    cache_key: str | None,
    params: Mapping[str, Any],
    input_digests: Mapping[str, str],
) -> ActiveRun:
    """Start the ``running`` step run before its task is submitted."""
    run = start_run(
        ws, step, experiment=experiment, kind="step", parent_id=parent_id,
        tags=_step_tags(pipeline, step_ref, input_digests), cache_key=cache_key,
    )
    if params:
        run.log_params(params)
    return run


def record_cached_step(
    ws: Workspace,
    *,
    parent_id: str,
    experiment: str,
    pipeline: str,
    step: str,
    step_ref: str,
    cache_key: str,
    params: Mapping[str, Any],
    input_digests: Mapping[str, str],
    hit: CacheHit,
) -> tuple[str, datetime]:
    """Record a step run of status ``cached`` that points at the reused outputs."""
    tags = _step_tags(pipeline, step_ref, input_digests)
    tags["loopml.cached_from"] = hit.run_id
    run = start_run(ws, step, experiment=experiment, kind="step", parent_id=parent_id, tags=tags,
                    cache_key=cache_key)
    if params:
        run.log_params(params)
    _attach_outputs(run, hit.outputs)
    run.end("cached")  # one transaction: params, outputs, end state
    return run.id, utcnow()


def finish_step_run(ws: Workspace, run: ActiveRun, result: StepResult) -> None:
    """Attach the step's outputs and logs, then end its run ``succeeded`` or ``failed``."""
    run.set_tags({
        "loopml.pid": str(result.pid),
        "loopml.host": result.host,
        "loopml.worker_started_at": result.started_at.isoformat(),
        "loopml.worker_ended_at": result.ended_at.isoformat(),
    })
    if result.logs:
        run.log_artifact(LOGS_ARTIFACT, result.logs, media_type="text/plain; charset=utf-8")
    if result.ok:
        _attach_outputs(run, {
            name: (digest, int(result.output_info.get(name, {}).get("size", 0)),
                   result.output_info.get(name, {}).get("media_type"))
            for name, digest in result.output_digests.items()
        })
        run.end("succeeded")
    else:
        run.end("failed", error=f"{result.error}\n\n{result.traceback or ''}".rstrip())


def record_skipped_steps(
    ws: Workspace, *, parent_id: str, experiment: str, pipeline: str, steps: Iterable[tuple[str, str]], reason: str
) -> dict[str, str]:
    """Record a ``skipped`` step run for each ``(step, step_ref)`` that did not run; name -> run id."""
    ids: dict[str, str] = {}
    for step, ref in steps:
        run = start_run(ws, step, experiment=experiment, kind="step", parent_id=parent_id,
                        tags=_step_tags(pipeline, ref, {}))
        run.end("skipped", error=reason)
        ids[step] = run.id
    return ids
