"""``run_pipeline``: schedule steps as their inputs become ready, cache, record, report.

The engine runs in the calling process and is the only writer of metadata
rows. For each step whose upstream steps are done, it computes the cache key;
on a hit it records a ``cached`` step run and reuses the outputs by digest; on
a miss it records a ``running`` step run and hands a ``StepTask`` to the
executor (at most ``executor.max_workers`` at once). When a step fails, no new
step starts, the steps in flight finish and are recorded, the rest are
recorded ``skipped``, the pipeline run is marked ``failed`` and ``StepFailed``
is raised. Re-running resumes: every step that succeeded is a cache hit.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from loopml.kernel.exceptions import PipelineError, StepFailed
from loopml.kernel.types import utcnow
from loopml.pipeline import CacheContext, Pipeline, Step
from loopml.runner._context import WorkspaceCoordinates
from loopml.runner import _records as records
from loopml.runner._executors import Executor, get_executor
from loopml.runner._progress import Reporter, make_reporter
from loopml.runner._result import PipelineRunResult, StepRunRecord
from loopml.runner._task import StepRef, StepResult, StepTask
from loopml.tracking import ActiveRun
from loopml.workspace import Workspace

__all__ = ["run_pipeline"]


@dataclass
class _InFlight:
    step: Step
    run: ActiveRun
    cache_key: str | None
    input_digests: dict[str, str]


@dataclass
class _State:
    produced: dict[str, str] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    records: dict[str, StepRunRecord] = field(default_factory=dict)
    in_flight: dict[Future[StepResult], _InFlight] = field(default_factory=dict)
    #: the step being handed to the executor (an in-process step runs inside run_step)
    starting: _InFlight | None = None
    failure: tuple[Step, StepResult, str] | None = None
    _coords: WorkspaceCoordinates | None = None

    def coordinates(self, ws: Workspace, run_id: str, experiment: str) -> WorkspaceCoordinates:
        """Computed once per run (it asks git), only when a step takes a context."""
        if self._coords is None:
            self._coords = WorkspaceCoordinates.of(ws, pipeline_run_id=run_id, experiment=experiment)
        return self._coords


def run_pipeline(
    ws: Workspace,
    pipeline: Pipeline,
    params: Mapping[str, Any] | None = None,
    *,
    executor: str | Executor | None = None,
    resume: bool = True,
    experiment: str | None = None,
    trigger: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    progress: bool | Reporter = False,
) -> PipelineRunResult:
    """Run ``pipeline`` in workspace ``ws`` and record it as a pipeline run with one child run per step.

    Args:
        params: run-time parameters, over the steps' defaults.
        executor: ``"inprocess"``, ``"process"`` or an ``Executor`` (default: the
            ``executor`` setting, ``inprocess`` unless configured).
        resume: reuse the outputs of earlier step runs with the same cache key;
            ``False`` recomputes every step (and records fresh cache entries).
        experiment: the experiment the runs belong to (default: the pipeline's name).
        trigger: why the run started, e.g. ``{"type": "schedule", "id": ...}``.
        tags: extra tags on the pipeline run.
        progress: ``True`` shows a Rich status line per step on stderr.

    Raises:
        PipelineError: bad params or executor (before anything is recorded).
        StepFailed: a step raised; the pipeline run is recorded ``failed``. The
            exception has ``run_id`` (the pipeline run) and ``step_run_id``.
    """
    if not isinstance(pipeline, Pipeline):
        raise PipelineError(f"run_pipeline needs a Pipeline, not {type(pipeline).__name__}")
    step_params = pipeline.resolve_params(params)
    run_params = {p: v for values in step_params.values() for p, v in values.items()}
    exe, owned = get_executor(executor if executor is not None else ws.settings.executor)
    experiment = experiment or pipeline.name
    refs = {s.name: StepRef.of(s) for s in pipeline.steps}

    prun = records.start_pipeline_run(
        ws, name=pipeline.name, experiment=experiment, params=run_params, trigger=trigger,
        tags={"loopml.executor": exe.name, "loopml.steps": str(len(pipeline)), **(tags or {})},
    )
    run_id, started = prun.id, utcnow()
    state = _State()
    reporter = make_reporter(progress, pipeline)
    try:
        with reporter:
            _schedule(ws, pipeline, exe, state, run_id, experiment, step_params, refs, resume, reporter)
    except BaseException as exc:  # interrupted, or the store failed: leave consistent rows
        _abort(ws, pipeline, state, prun, experiment, refs, exc, exe if owned else None)
        raise
    finally:
        if owned:
            exe.shutdown()

    failed = state.failure
    status = "failed" if failed else "succeeded"
    error = None
    if failed:
        pending = [s for s in pipeline.steps if s.name not in state.records]
        skipped = records.record_skipped_steps(
            ws, parent_id=run_id, experiment=experiment, pipeline=pipeline.name,
            steps=[(s.name, str(refs[s.name])) for s in pending],
            reason=f"not run: step '{failed[0].name}' failed",
        )
        for s in pending:
            state.records[s.name] = StepRunRecord(name=s.name, run_id=skipped[s.name], status="skipped")
            reporter.step_finished(s.name, "skipped", None)
        error = f"step '{failed[0].name}' failed: {failed[1].error}"
    ended = records.finish_pipeline_run(prun, status=status, error=error)
    result = PipelineRunResult(
        run_id=run_id,
        pipeline=pipeline.name,
        status=status,
        started_at=started,
        ended_at=ended,
        steps={s.name: state.records[s.name] for s in pipeline.steps},
        output_digests=dict(state.produced),
        final_outputs=pipeline.final_outputs,
        executor=exe.name,
        _store=ws.artifacts,
    )
    if failed:
        step, step_result, step_run_id = failed
        raise _step_failed(step, step_result, run_id, step_run_id, result)
    return result


def _schedule(
    ws: Workspace,
    pipeline: Pipeline,
    exe: Executor,
    state: _State,
    run_id: str,
    experiment: str,
    step_params: dict[str, dict[str, Any]],
    refs: dict[str, StepRef],
    resume: bool,
    reporter: Reporter,
) -> None:
    waiting = list(pipeline.steps)  # topological order: ties start in declaration order
    while waiting or state.in_flight:
        progressed = True
        while progressed and state.failure is None:
            progressed = False
            for s in list(waiting):
                if len(state.in_flight) >= exe.max_workers:
                    break
                if not all(u in state.done for u in pipeline.upstream(s.name)):
                    continue
                waiting.remove(s)
                progressed = True
                _start(ws, pipeline, exe, state, s, run_id, experiment, step_params[s.name], refs[s.name],
                       resume, reporter)
        if not state.in_flight:
            if waiting and state.failure is None:  # pragma: no cover - a DAG always has a ready step
                raise PipelineError(f"pipeline '{pipeline.name}': no step is ready ({[s.name for s in waiting]})")
            return
        finished, _ = wait(list(state.in_flight), return_when=FIRST_COMPLETED)
        order = {s.name: i for i, s in enumerate(pipeline.steps)}
        for fut in sorted(finished, key=lambda f: order[state.in_flight[f].step.name]):
            _finish(ws, state, state.in_flight.pop(fut), fut.result(), reporter)
        if state.failure is not None:
            waiting.clear()


def _start(
    ws: Workspace,
    pipeline: Pipeline,
    exe: Executor,
    state: _State,
    s: Step,
    run_id: str,
    experiment: str,
    params: dict[str, Any],
    ref: StepRef,
    resume: bool,
    reporter: Reporter,
) -> None:
    inputs = {i: state.produced[i] for i in pipeline.inputs(s.name)}
    key = s.cache.compute_key(CacheContext(s, inputs, params))
    hit = records.find_cached(ws, key, s.outputs) if (resume and key) else None
    if hit is not None and key is not None:
        cached_run, now = records.record_cached_step(
            ws, parent_id=run_id, experiment=experiment, pipeline=pipeline.name, step=s.name,
            step_ref=str(ref), cache_key=key, params=params, input_digests=inputs, hit=hit,
        )
        digests = {n: d for n, (d, _, _) in hit.outputs.items()}
        state.produced.update(digests)
        state.done.add(s.name)
        state.records[s.name] = StepRunRecord(
            name=s.name, run_id=cached_run, status="cached", started_at=now, ended_at=now, cache_key=key,
            cache_hit=True, cached_from=hit.run_id, output_digests=digests, input_digests=inputs,
        )
        reporter.step_finished(s.name, "cached", None)
        return
    step_run = records.start_step_run(
        ws, parent_id=run_id, experiment=experiment, pipeline=pipeline.name, step=s.name,
        step_ref=str(ref), cache_key=key, params=params, input_digests=inputs,
    )
    task = StepTask(
        step_name=s.name, step=ref, outputs=s.outputs, input_digests=inputs, params=params,
        artifacts_url=ws.settings.resolved_artifacts_url, run_id=step_run.id, resources=dict(s.resources),
        workspace=state.coordinates(ws, run_id, experiment) if s.wants_context else None,
    )
    reporter.step_started(s.name)
    flight = _InFlight(s, step_run, key, inputs)
    state.starting = flight
    fut = exe.run_step(task)
    state.starting = None
    state.in_flight[fut] = flight


def _finish(ws: Workspace, state: _State, flight: _InFlight, result: StepResult, reporter: Reporter) -> None:
    records.finish_step_run(ws, flight.run, result)
    status = "succeeded" if result.ok else "failed"
    state.records[flight.step.name] = StepRunRecord(
        name=flight.step.name, run_id=flight.run.id, status=status, started_at=result.started_at,
        ended_at=result.ended_at, cache_key=flight.cache_key, cache_hit=False,
        output_digests=dict(result.output_digests), input_digests=flight.input_digests,
        pid=result.pid, error=result.error,
    )
    reporter.step_finished(flight.step.name, status, result.duration_s)
    if result.ok:
        state.produced.update(result.output_digests)
        state.done.add(flight.step.name)
    elif state.failure is None:
        state.failure = (flight.step, result, flight.run.id)


def _abort(
    ws: Workspace,
    pipeline: Pipeline,
    state: _State,
    prun: ActiveRun,
    experiment: str,
    refs: dict[str, StepRef],
    exc: BaseException,
    owned_exe: Executor | None,
) -> None:
    """Best effort after an interrupt or a store failure: no row stays ``running``."""
    reason = f"pipeline run aborted: {type(exc).__name__}: {exc}"
    if owned_exe is not None:
        owned_exe.shutdown(wait=False)
    try:
        now = utcnow()
        flights = [*state.in_flight.values(), *([state.starting] if state.starting else [])]
        for flight in flights:
            records.finish_step_run(ws, flight.run, StepResult(
                step_name=flight.step.name, started_at=now, ended_at=now, error=reason, traceback="",
            ))
        running = {f.step.name for f in flights}
        pending = [s for s in pipeline.steps if s.name not in state.records and s.name not in running]
        records.record_skipped_steps(
            ws, parent_id=prun.id, experiment=experiment, pipeline=pipeline.name,
            steps=[(s.name, str(refs[s.name])) for s in pending], reason=reason,
        )
        records.finish_pipeline_run(prun, status="failed", error=reason)
    except Exception as inner:  # the store itself may be what failed; keep the first error
        exc.add_note(f"loopml: could not record the failure of pipeline run {prun.id}: {inner}")


def _step_failed(
    step: Step, result: StepResult, run_id: str, step_run_id: str, partial: PipelineRunResult
) -> StepFailed:
    cause = result.exception if result.exception is not None else PipelineError(result.error or "unknown error")
    err = StepFailed(step.name, cause, result.traceback or "")
    err.args = (f"step '{step.name}' failed: {result.error}",)
    err.add_note(
        f"pipeline run {run_id}, step run {step_run_id}; the traceback is on the step run. "
        "Running the pipeline again resumes from the cache."
    )
    # Where to look: the CLI prints these; tests and notebooks read them.
    setattr(err, "run_id", run_id)  # noqa: B010
    setattr(err, "step_run_id", step_run_id)  # noqa: B010
    setattr(err, "result", partial)  # noqa: B010
    return err
