"""Executors: the in-process default, the process pool (parallel layers), the extension seam."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
import runner_light_steps as light
import runner_steps as rs

from loopml.kernel.exceptions import PipelineError, StepFailed
from loopml.pipeline import Pipeline, step
from loopml.runner import (
    Executor,
    InProcessExecutor,
    ProcessPoolExecutor,
    StepRef,
    StepResult,
    StepTask,
    execute,
    get_executor,
    run_pipeline,
)


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    """One pool for the module: its workers start once and serve several runs."""
    with ProcessPoolExecutor(max_workers=2) as executor:
        yield executor


def test_process_pool_runs_independent_steps_in_parallel(
    sqlite_workspace: Any, tmp_path: Path, pool: ProcessPoolExecutor
) -> None:
    # left and right each wait until the other has started: run one after the
    # other, they would time out. Their recorded windows must overlap.
    result = run_pipeline(sqlite_workspace, light.parallel_pipeline(), {"barrier_dir": str(tmp_path)}, executor=pool)
    assert result.status == "succeeded" and result.executor == "process"
    left, right = result.steps["left"], result.steps["right"]
    assert left.pid != right.pid
    assert left.started_at is not None and right.started_at is not None
    assert left.ended_at is not None and right.ended_at is not None
    assert left.started_at < right.ended_at and right.started_at < left.ended_at
    assert sorted(result.output("join")) == sorted([left.pid, right.pid])


def test_process_pool_ships_dataframes_caches_and_reports_failures(
    sqlite_workspace: Any, pool: ProcessPoolExecutor
) -> None:
    p = light.chain_pipeline()
    first = run_pipeline(sqlite_workspace, p, {"n": 5}, executor=pool)
    assert first.status == "succeeded" and first.output("total") == 10
    frame = first.output("frame")
    assert list(frame["v"]) == [0, 1, 2, 3, 4] and int(frame["pid"][0]) == first.steps["frame"].pid != os.getpid()
    again = run_pipeline(sqlite_workspace, p, {"n": 5}, executor=pool)
    assert again.cache_hits == ("seed", "frame", "total")

    with pytest.raises(StepFailed, match=r"step 'boom' failed: RuntimeError: boom in step") as info:
        run_pipeline(sqlite_workspace, Pipeline([light.seed, light.boom], name="fails"), executor=pool)
    assert isinstance(info.value.cause, RuntimeError)
    assert "raise RuntimeError" in info.value.traceback_text


def test_process_executor_by_name_starts_and_stops_its_own_pool(sqlite_workspace: Any) -> None:
    result = run_pipeline(sqlite_workspace, Pipeline([light.seed], name="one"), executor="process")
    assert result.executor == "process" and result.steps["seed"].pid != os.getpid()


def test_step_ref_is_by_reference_when_importable_else_by_value() -> None:
    ref = StepRef.of(rs.clean)
    assert (ref.module, ref.qualname, ref.pickled) == ("runner_steps", "clean", None)
    assert ref.load() is rs.clean

    @step
    def local() -> int:
        return 1

    by_value = StepRef.of(local)
    assert by_value.pickled is not None and "<locals>" in by_value.qualname
    assert by_value.load()() == 1
    with pytest.raises(PipelineError, match=r"cannot import step runner_steps:nope"):
        StepRef("runner_steps", "nope").load()
    with pytest.raises(PipelineError, match=r"runner_steps:calls is a function, not a step"):
        StepRef("runner_steps", "calls").load()


def test_execute_runs_one_task_against_the_artifact_store(sqlite_workspace: Any) -> None:
    url = sqlite_workspace.settings.resolved_artifacts_url
    seed = execute(StepTask("seed", StepRef.of(light.seed), ("seed",), {}, {"n": 4}, url))
    assert seed.ok and seed.output_info["seed"]["serializer"] == "cloudpickle"
    boom = execute(StepTask("boom", StepRef.of(light.boom), ("boom",), dict(seed.output_digests), {}, url))
    assert not boom.ok and boom.error == "RuntimeError: boom in step"
    assert boom.logs == "about to fail\n"


class RecordingExecutor(Executor):
    """A third-party executor: only ``_submit`` is implemented."""

    name = "recording"

    def __init__(self) -> None:
        self.tasks: list[StepTask] = []

    def _submit(self, task: StepTask) -> Future[StepResult]:
        self.tasks.append(task)
        fut: Future[StepResult] = Future()
        fut.set_result(execute(task))
        return fut


class BrokenExecutor(Executor):
    name = "broken"

    def _submit(self, task: StepTask) -> Future[StepResult]:
        raise OSError("no workers left")


def test_custom_executor_gets_self_contained_tasks(sqlite_workspace: Any, tmp_path: Path) -> None:
    exe = RecordingExecutor()
    result = run_pipeline(sqlite_workspace, rs.training_pipeline(), {"calls_dir": str(tmp_path)}, executor=exe)
    assert [t.step_name for t in exe.tasks] == ["raw", "clean", "split", "model", "report"]
    report = exe.tasks[-1]
    assert report.step == StepRef("runner_steps", "report")
    assert report.input_digests == {"model": result.output_digests["model"], "test": result.output_digests["test"]}
    assert report.params == {"calls_dir": str(tmp_path), "fail_flag": ""}
    assert report.artifacts_url == sqlite_workspace.settings.resolved_artifacts_url
    assert report.run_id == result.steps["report"].run_id


def test_a_failing_mechanism_becomes_a_step_failure(sqlite_workspace: Any) -> None:
    with pytest.raises(StepFailed, match=r"step 'seed' failed: OSError: no workers left \(broken executor could not start the step\)"):
        run_pipeline(sqlite_workspace, Pipeline([light.seed], name="p"), executor=BrokenExecutor())


def test_get_executor_by_name() -> None:
    exe, owned = get_executor("inprocess")
    assert isinstance(exe, InProcessExecutor) and owned
    pool, owned = get_executor("process")
    assert isinstance(pool, ProcessPoolExecutor) and owned and pool.max_workers >= 1
    mine = InProcessExecutor()
    assert get_executor(mine) == (mine, False)
    with pytest.raises(PipelineError, match=r"max_workers must be at least 1, got 0"):
        ProcessPoolExecutor(max_workers=0)
    with pytest.raises(PipelineError, match=r"start_method 'teleport' is not available here"):
        ProcessPoolExecutor(start_method="teleport")
