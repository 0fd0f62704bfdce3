"""``run_pipeline``: records, cache hits and misses, failure and resume, outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import runner_light_steps as light
import runner_steps as rs
from sklearn.linear_model import LogisticRegression

from loopml.kernel.exceptions import PipelineError, StepFailed
from loopml.pipeline import Pipeline, step
from loopml.runner import PipelineRunResult, run_pipeline
from loopml.tracking import RunRecord, get_run, list_runs


def rows(ws: Any, parent_id: str) -> dict[str, RunRecord]:
    return {r.name: r for r in list_runs(ws, parent_id=parent_id)}


def artifacts(ws: Any, run_id: str) -> dict[str, str]:
    return {a.name: a.digest for a in get_run(ws, run_id).artifacts}


def params(ws: Any, run_id: str) -> dict[str, str]:
    return dict(get_run(ws, run_id).params)


def test_run_records_a_pipeline_run_with_one_step_run_per_step(workspace: Any, tmp_path: Path) -> None:
    result = run_pipeline(workspace, rs.training_pipeline(), {"calls_dir": str(tmp_path), "c": 0.5},
                          trigger={"type": "manual"})
    assert isinstance(result, PipelineRunResult)
    assert result.status == "succeeded"
    assert list(result.steps) == ["raw", "clean", "split", "model", "report"]
    assert all(s.status == "succeeded" and not s.cache_hit for s in result.steps.values())
    assert result.final_outputs == ("report",)

    prun = get_run(workspace, result.run_id)
    assert (prun.kind, prun.status, prun.experiment, prun.trigger) == ("pipeline", "succeeded", "training", {"type": "manual"})
    assert prun.ended_at is not None and prun.ended_at >= prun.started_at
    assert prun.tags["loopml.executor"] == "inprocess"
    assert params(workspace, result.run_id) == {"calls_dir": str(tmp_path), "rows": "40", "c": "0.5", "fail_flag": ""}

    children = rows(workspace, result.run_id)
    assert set(children) == set(result.steps)
    model_run = children["model"]
    assert (model_run.kind, model_run.status) == ("step", "succeeded")
    assert model_run.cache_key == result.steps["model"].cache_key and len(model_run.cache_key or "") == 64
    assert model_run.ended_at is not None and model_run.ended_at >= model_run.started_at
    assert params(workspace, model_run.id) == {"calls_dir": str(tmp_path), "c": "0.5"}
    assert artifacts(workspace, children["split"].id).keys() >= {"outputs/train", "outputs/test"}
    assert model_run.tags["loopml.input.train"] == result.output_digests["train"]


def test_outputs_round_trip_dataframe_dict_and_estimator(workspace: Any, tmp_path: Path) -> None:
    result = run_pipeline(workspace, rs.training_pipeline(), {"calls_dir": str(tmp_path)})
    train = result.output("train")
    assert isinstance(train, pd.DataFrame) and list(train.columns) == ["x", "y"] and len(train) == 30
    pd.testing.assert_frame_equal(result.output("raw"), rs.raw.func(calls_dir=str(tmp_path)))
    model = result.output("model")
    assert isinstance(model, LogisticRegression) and hasattr(model, "coef_")
    report = result.output("report")
    assert report["rows"] == 10 and 0.0 <= report["accuracy"] <= 1.0

    meta = {n: workspace.artifacts.info(d).meta for n, d in result.output_digests.items()}
    assert meta["train"]["serializer"] == "parquet"
    assert meta["model"]["serializer"] == "cloudpickle"
    assert meta["model"]["python_type"].endswith("LogisticRegression")
    with pytest.raises(PipelineError, match=r"pipeline run \w+ has no output 'nope'; outputs: 'raw', 'clean'"):
        result.output("nope")


def test_rerun_is_all_cache_hits_and_calls_no_function(workspace: Any, tmp_path: Path) -> None:
    p = rs.training_pipeline()
    first = run_pipeline(workspace, p, {"calls_dir": str(tmp_path)})
    second = run_pipeline(workspace, p, {"calls_dir": str(tmp_path)})
    assert second.status == "succeeded"
    assert second.cache_hits == ("raw", "clean", "split", "model", "report")
    for name in ("raw", "clean", "split", "model", "report"):
        assert rs.calls(tmp_path, name) == 1
        assert second.steps[name].cached_from == first.steps[name].run_id
        assert second.steps[name].output_digests == first.steps[name].output_digests
    children = rows(workspace, second.run_id)
    assert {r.status for r in children.values()} == {"cached"}
    assert children["report"].tags["loopml.cached_from"] == first.steps["report"].run_id
    assert artifacts(workspace, children["split"].id)["outputs/test"] == first.output_digests["test"]
    assert second.output("report") == first.output("report")


def test_param_change_misses_only_the_steps_that_take_it(workspace: Any, tmp_path: Path) -> None:
    p = rs.training_pipeline()
    run_pipeline(workspace, p, {"calls_dir": str(tmp_path), "c": 1.0})
    again = run_pipeline(workspace, p, {"calls_dir": str(tmp_path), "c": 0.01})
    assert again.cache_hits == ("raw", "clean", "split")
    assert again.steps["model"].status == "succeeded" and not again.steps["model"].cache_hit
    assert rs.calls(tmp_path, "model") == 2
    assert again.output("model").C == 0.01


def test_resume_false_recomputes_everything(sqlite_workspace: Any, tmp_path: Path) -> None:
    p = rs.training_pipeline()
    run_pipeline(sqlite_workspace, p, {"calls_dir": str(tmp_path)})
    again = run_pipeline(sqlite_workspace, p, {"calls_dir": str(tmp_path)}, resume=False)
    assert again.cache_hits == ()
    assert rs.calls(tmp_path, "raw") == 2


def test_source_change_misses_the_cache(sqlite_workspace: Any) -> None:
    @step
    def numbers() -> list[int]:
        return [1, 2, 3]

    @step(name="total")
    def total_v1(numbers: list[int]) -> int:
        return sum(numbers)

    @step(name="total")
    def total_v2(numbers: list[int]) -> int:
        return sum(numbers) * 10

    run_pipeline(sqlite_workspace, Pipeline([numbers, total_v1], name="sums"))
    same = run_pipeline(sqlite_workspace, Pipeline([numbers, total_v1], name="sums"))
    changed = run_pipeline(sqlite_workspace, Pipeline([numbers, total_v2], name="sums"))
    assert same.cache_hits == ("numbers", "total")
    assert changed.cache_hits == ("numbers",)
    assert changed.output("total") == 60


def test_cache_none_always_runs(sqlite_workspace: Any) -> None:
    @step(cache=False)
    def now() -> int:
        return 1

    run_pipeline(sqlite_workspace, Pipeline([now], name="n"))
    again = run_pipeline(sqlite_workspace, Pipeline([now], name="n"))
    assert again.steps["now"].status == "succeeded" and again.steps["now"].cache_key is None


def test_missing_artifact_is_a_cache_miss(sqlite_workspace: Any, tmp_path: Path) -> None:
    p = rs.training_pipeline()
    first = run_pipeline(sqlite_workspace, p, {"calls_dir": str(tmp_path)})
    sqlite_workspace.artifacts.backend.delete(f"objects/{first.output_digests['model'][:2]}/{first.output_digests['model'][2:]}")
    again = run_pipeline(sqlite_workspace, p, {"calls_dir": str(tmp_path)})
    assert again.cache_hits == ("raw", "clean", "split", "report")  # report's inputs are unchanged
    assert rs.calls(tmp_path, "model") == 2


def test_failure_records_traceback_and_resume_reruns_only_the_failed_step(workspace: Any, tmp_path: Path) -> None:
    flag = tmp_path / "fail.flag"
    flag.write_text("1")
    calls = tmp_path / "calls"
    calls.mkdir()
    p = rs.training_pipeline()
    run_params = {"calls_dir": str(calls), "fail_flag": str(flag)}
    with pytest.raises(StepFailed, match=r"step 'report' failed: ValueError: report refused: fail.flag is set") as info:
        run_pipeline(workspace, p, run_params)
    err = info.value
    assert err.step == "report" and isinstance(err.cause, ValueError)
    assert "raise ValueError" in err.traceback_text
    failed_run_id = err.run_id  # type: ignore[attr-defined]
    prun = get_run(workspace, failed_run_id)
    assert prun.status == "failed" and prun.ended_at is not None
    assert "step 'report' failed" in (prun.error or "")
    children = rows(workspace, failed_run_id)
    assert {n: r.status for n, r in children.items()} == {
        "raw": "succeeded", "clean": "succeeded", "split": "succeeded", "model": "succeeded", "report": "failed",
    }
    assert "Traceback (most recent call last)" in (children["report"].error or "")
    assert "report refused" in (children["report"].error or "")
    assert "outputs/report" not in artifacts(workspace, children["report"].id)

    flag.unlink()
    resumed = run_pipeline(workspace, p, run_params)
    assert resumed.status == "succeeded"
    assert resumed.cache_hits == ("raw", "clean", "split", "model")
    assert resumed.steps["report"].status == "succeeded"
    assert [rs.calls(calls, n) for n in ("raw", "clean", "split", "model", "report")] == [1, 1, 1, 1, 2]


def test_failure_skips_downstream_steps(sqlite_workspace: Any) -> None:
    @step
    def after(boom: int) -> int:
        return boom

    p = Pipeline([light.seed, light.boom, after], name="fails")
    with pytest.raises(StepFailed, match=r"step 'boom' failed: RuntimeError: boom in step") as info:
        run_pipeline(sqlite_workspace, p)
    partial = info.value.result  # type: ignore[attr-defined]
    assert {n: s.status for n, s in partial.steps.items()} == {"seed": "succeeded", "boom": "failed", "after": "skipped"}
    children = rows(sqlite_workspace, info.value.run_id)  # type: ignore[attr-defined]
    assert children["after"].status == "skipped" and "step 'boom' failed" in (children["after"].error or "")
    assert "about to fail" in sqlite_workspace.artifacts.get_bytes(artifacts(sqlite_workspace, children["boom"].id)["logs.txt"]).decode()


def test_wrong_output_shape_is_a_step_failure(sqlite_workspace: Any) -> None:
    p = Pipeline([light.seed, light.wrong_arity], name="arity")
    with pytest.raises(StepFailed, match=r"step 'wrong_arity' failed: PipelineError: step 'wrong_arity' declares 2 outputs \('a', 'b'\) but returned 3 values"):
        run_pipeline(sqlite_workspace, p)


def test_logs_are_captured_per_step(sqlite_workspace: Any, tmp_path: Path) -> None:
    result = run_pipeline(sqlite_workspace, rs.training_pipeline(), {"calls_dir": str(tmp_path)})
    clean_run = result.steps["clean"].run_id
    text = sqlite_workspace.artifacts.get_bytes(artifacts(sqlite_workspace, clean_run)["logs.txt"]).decode()
    assert "cleaning 40 rows" in text
    assert "a warning on stderr" in text
    assert "INFO runner_steps: dropped 0 rows" in text
    assert "logs.txt" not in artifacts(sqlite_workspace, result.steps["split"].run_id)  # nothing printed


def test_bad_arguments_fail_before_anything_is_recorded(sqlite_workspace: Any, tmp_path: Path) -> None:
    p = rs.training_pipeline()
    with pytest.raises(PipelineError, match=r"unknown parameter 'C' for pipeline 'training'"):
        run_pipeline(sqlite_workspace, p, {"calls_dir": str(tmp_path), "C": 1})
    with pytest.raises(PipelineError, match=r"step 'raw' needs parameter 'calls_dir', which no step produces"):
        run_pipeline(sqlite_workspace, p)
    with pytest.raises(PipelineError, match=r"unknown executor 'dask'; choose 'inprocess', 'process', 'ray', "
                       r"'ray://HOST:PORT' or pass an Executor instance"):
        run_pipeline(sqlite_workspace, p, {"calls_dir": str(tmp_path)}, executor="dask")
    with pytest.raises(PipelineError, match=r"run_pipeline needs a Pipeline, not list"):
        run_pipeline(sqlite_workspace, [rs.raw])  # type: ignore[arg-type]
    assert list_runs(sqlite_workspace) == []


def test_steps_defined_in_a_function_run_by_value(sqlite_workspace: Any) -> None:
    offset = 5

    @step
    def base() -> int:
        return offset

    result = run_pipeline(sqlite_workspace, Pipeline([base], name="local"), executor="inprocess")
    assert result.output("base") == 5


def test_interrupt_leaves_no_run_running(sqlite_workspace: Any) -> None:
    @step
    def stop(seed: list[int]) -> int:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_pipeline(sqlite_workspace, Pipeline([light.seed, stop], name="interrupted"))
    (prun,) = list_runs(sqlite_workspace, kind="pipeline")
    assert prun.status == "failed" and "aborted: KeyboardInterrupt" in (prun.error or "")
    assert {n: r.status for n, r in rows(sqlite_workspace, prun.id).items()} == {"seed": "succeeded", "stop": "failed"}
