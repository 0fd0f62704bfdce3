"""The Ray executor on a real local Ray cluster (2 CPUs, started once for this module)."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'loopml[ray]')")

import runner_light_steps as light
import runner_steps as rs

from loopml.kernel.exceptions import PipelineError, StepFailed
from loopml.pipeline import Pipeline
from loopml.runner import get_executor, run_pipeline
from loopml.runner._ray import RayExecutor, ray_options
from loopml.tracking import list_runs

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """One local Ray for the module; its workers import the test step modules by name."""
    path = os.pathsep.join([str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield
    ray.shutdown()


@pytest.fixture
def exe(ray_cluster: None) -> RayExecutor:
    return RayExecutor()


def test_get_executor_knows_ray_without_starting_it() -> None:
    local, owned = get_executor("ray")
    assert isinstance(local, RayExecutor) and owned and local.address is None
    client, _ = get_executor("ray://head.example:10001")
    assert client.address == "ray://head.example:10001"
    assert get_executor("ray:auto")[0].address == "auto"
    with pytest.raises(PipelineError, match=r"Ray address 'nowhere' is not valid; use 'auto', 'ray://HOST:PORT'"):
        RayExecutor("nowhere")


def test_step_resources_become_ray_options() -> None:
    assert ray_options({}) == {"num_cpus": 1}
    assert ray_options({"cpus": 2, "gpus": 1, "memory": 2e9, "tpu_slice": 1}) == {
        "num_cpus": 2, "num_gpus": 1, "memory": 2_000_000_000, "resources": {"tpu_slice": 1.0},
    }


def test_pipeline_runs_on_ray_workers_caches_and_records(sqlite_workspace: Any, exe: RayExecutor,
                                                        tmp_path: Path) -> None:
    params = {"calls_dir": str(tmp_path)}
    first = run_pipeline(sqlite_workspace, rs.training_pipeline(), params, executor=exe)
    assert first.status == "succeeded" and first.executor == "ray"
    assert first.output("report")["rows"] == 10
    assert all(r.pid and r.pid != os.getpid() for r in first.steps.values())  # ran on Ray workers
    steps = list_runs(sqlite_workspace, kind="step")
    assert {s.status for s in steps} == {"succeeded"} and len(steps) == 5
    # the same cache as in-process: a re-run in this process is all hits
    again = run_pipeline(sqlite_workspace, rs.training_pipeline(), params, executor="inprocess")
    assert again.cache_hits == ("raw", "clean", "split", "model", "report")
    assert rs.calls(tmp_path, "raw") == 1


def test_independent_steps_run_in_parallel(sqlite_workspace: Any, exe: RayExecutor, tmp_path: Path) -> None:
    # left and right each wait for the other: both finish only if they run at once
    result = run_pipeline(sqlite_workspace, light.parallel_pipeline(), {"barrier_dir": str(tmp_path)}, executor=exe)
    left, right = result.output("left"), result.output("right")
    assert left["pid"] != right["pid"]
    assert left["start"] < right["end"] and right["start"] < left["end"]


def test_a_step_failing_on_a_worker_reports_its_traceback_and_the_run_resumes(
    sqlite_workspace: Any, exe: RayExecutor, tmp_path: Path
) -> None:
    flag = tmp_path / "FAIL"
    flag.write_text("1")
    params = {"calls_dir": str(tmp_path), "fail_flag": str(flag)}
    with pytest.raises(StepFailed, match=r"step 'report' failed: ValueError: report refused: FAIL is set") as info:
        run_pipeline(sqlite_workspace, rs.training_pipeline(), params, executor=exe)
    assert isinstance(info.value.cause, ValueError)
    assert 'raise ValueError(f"report refused' in info.value.traceback_text  # the worker's traceback
    failed = [r for r in list_runs(sqlite_workspace, kind="pipeline") if r.status == "failed"]
    assert len(failed) == 1
    flag.unlink()
    resumed = run_pipeline(sqlite_workspace, rs.training_pipeline(), params, executor=exe)
    assert resumed.cache_hits == ("raw", "clean", "split", "model")
    assert resumed.steps["report"].status == "succeeded"
    assert rs.calls(tmp_path, "model") == 1 and rs.calls(tmp_path, "report") == 2


def test_a_step_raising_an_unpicklable_error_still_fails_cleanly(sqlite_workspace: Any, exe: RayExecutor) -> None:
    with pytest.raises(StepFailed, match=r"step 'boom' failed: RuntimeError: boom in step"):
        run_pipeline(sqlite_workspace, Pipeline([light.seed, light.boom], name="fails"), executor=exe)


def test_the_recipe_runs_on_ray_with_context_steps_and_trials(sqlite_workspace: Any, ray_cluster: None,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The continuous-training recipe (ingest, search trials, register) through the ``executor`` setting."""
    from loopml.kernel.config import reset_settings
    from loopml.recipes import QUICKSTART_RECIPE, prepare_quickstart, run_recipe
    from loopml.register import resolve
    from loopml.workspace import open_workspace

    root = sqlite_workspace.root
    prepare_quickstart(root)
    spec = copy.deepcopy(QUICKSTART_RECIPE)
    spec["data"]["source"] = str(root / spec["data"]["source"])
    spec["data"]["contract"] = str(root / spec["data"]["contract"])
    spec["train"]["search"]["n_trials"] = 2
    spec["train"]["params"]["max_iter"] = 20
    monkeypatch.setenv("LOOPML_EXECUTOR", "ray")
    reset_settings()
    ws = open_workspace(root, actor="tester")
    assert ws.settings.executor == "ray"
    result = run_recipe(ws, spec)
    assert result.status == "succeeded"
    assert resolve(ws, "rain-tomorrow@champion").version == 1
    assert len(list_runs(ws, kind="trial")) == 2
    pipeline_run = list_runs(ws, kind="pipeline")[0]
    assert pipeline_run.tags["loopml.executor"] == "ray"
    # in-process, the same cache: only gate and register re-check (the champion moved)
    again = run_recipe(ws, spec, executor="inprocess")
    assert [s["status"] for s in again.steps][:5] == ["cached"] * 5
