"""The continuous-training recipe end to end, on the real quickstart data."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from loopml.kernel.exceptions import SpecError, StepFailed
from loopml.metadata.lineage import lineage
from loopml.recipes import QUICKSTART_RECIPE, prepare_quickstart, run_recipe
from loopml.register import resolve
from loopml.tracking import list_runs


def _small_recipe(root: Path) -> dict:
    prepare_quickstart(root)
    spec = copy.deepcopy(QUICKSTART_RECIPE)
    spec["data"]["source"] = str(root / spec["data"]["source"])
    spec["data"]["contract"] = str(root / spec["data"]["contract"])
    spec["train"]["search"]["n_trials"] = 3
    spec["train"]["params"]["max_iter"] = 30
    return spec


def test_recipe_registers_a_champion_with_lineage_and_trials(workspace) -> None:
    spec = _small_recipe(workspace.root)
    result = run_recipe(workspace, spec)
    assert result.status == "succeeded"
    assert [s["status"] for s in result.steps] == ["succeeded"] * 7
    assert result.gate_report["passed"] is True
    champion = resolve(workspace, "rain-tomorrow@champion")
    assert champion.version == result.model_version["version"] == 1
    assert champion.gates_passed and champion.signature["columns"].keys() >= {"temp_max", "season"}
    assert "rain_tomorrow" not in champion.signature["columns"]
    assert champion.evaluation["slices"]["season"]
    trials = list_runs(workspace, kind="trial")
    assert len(trials) == 3 and all(t.parent_id for t in trials)
    upstream = lineage(workspace, "model:rain-tomorrow@champion", direction="upstream").to_dict()
    keys = {n["key"] for n in upstream["nodes"]}
    assert "dataset_version:seattle-weather@1" in keys
    assert f"run:{result.run_id}" in keys


def test_rerun_is_all_cache_hits_and_adds_no_version(sqlite_workspace) -> None:
    spec = _small_recipe(sqlite_workspace.root)
    run_recipe(sqlite_workspace, spec)
    run_recipe(sqlite_workspace, spec)  # the champion moved: gate and register re-check once
    third = run_recipe(sqlite_workspace, spec)
    assert [s["status"] for s in third.steps] == ["cached"] * 7
    assert resolve(sqlite_workspace, "rain-tomorrow").version == 1


def test_failed_gate_registers_a_challenger_not_a_champion(sqlite_workspace) -> None:
    spec = _small_recipe(sqlite_workspace.root)
    spec["gates"] = ["roc_auc >= 0.99"]
    result = run_recipe(sqlite_workspace, spec)
    assert result.gate_report["passed"] is False
    assert result.model_version["aliases"] == ["challenger"]
    with pytest.raises(LookupError, match="no alias 'champion'"):
        resolve(sqlite_workspace, "rain-tomorrow@champion")


def test_missing_target_fails_the_step_and_a_fixed_rerun_resumes(sqlite_workspace) -> None:
    spec = _small_recipe(sqlite_workspace.root)
    bad = copy.deepcopy(spec)
    bad["data"]["target"] = "rain_in_a_week"
    with pytest.raises(StepFailed, match="rain_in_a_week"):
        run_recipe(sqlite_workspace, bad)
    assert list_runs(sqlite_workspace, kind="pipeline")[0].status == "failed"
    assert run_recipe(sqlite_workspace, spec).status == "succeeded"


@pytest.mark.parametrize(
    ("gates", "space", "message"),
    [
        (["roc_auc >> 0.8"], None, r"gate #1 'roc_auc >> 0\.8': a string rule reads 'METRIC OP NUMBER'"),
        (["auc >= 0.8"], None, r"metric 'auc' is unknown; allowed: accuracy, .*roc_auc"),
        ([{"metric": "roc_auc", "max_regresion": 0.1}], None, r"unknown key\(s\) 'max_regresion'"),
        ([{"fairness": "month", "metric": "roc_auc", "max_gap": 0.2}], None,
         r"gates: gate #1 .* slices by column 'month', which is not in evaluate\.slices \(season\)"),
        (["roc_auc[weather] >= 0.5"], None, r"slices by column 'weather', which is not in evaluate\.slices"),
        ([], {"max_depth": {"type": "integer", "low": 2, "high": 6}},
         r"search space parameter 'max_depth': type 'integer' is unknown; allowed: int, float, categorical"),
    ],
)
def test_spec_errors_that_need_no_data_fail_before_any_step_runs(sqlite_workspace, gates, space, message) -> None:  # type: ignore[no-untyped-def]
    spec = _small_recipe(sqlite_workspace.root)
    spec["gates"] = gates
    if space is not None:
        spec["train"]["search"]["space"] = space
    with pytest.raises(SpecError, match=message):
        run_recipe(sqlite_workspace, spec)
    assert list_runs(sqlite_workspace) == []


def test_no_source_trains_on_a_registered_version_pinned_before_the_run(sqlite_workspace) -> None:
    import pandas as pd

    from loopml.ingest import ingest
    from loopml.kernel.exceptions import NotFoundError
    from loopml.validate import Contract

    ws = sqlite_workspace
    spec = _small_recipe(ws.root)
    frame = pd.read_csv(spec["data"]["source"])
    ingest(ws, frame, "seattle-weather", target="rain_tomorrow")
    contract = Contract.from_yaml(Path(spec["data"]["contract"]).read_text()).to_dict()
    registered = {**spec, "data": {**spec["data"], "source": None, "contract": contract}}  # the contract inline
    first = run_recipe(ws, registered)
    assert first.status == "succeeded" and first.dataset_version["ref"] == "seattle-weather@1"
    assert first.steps[1] == {**first.steps[1], "name": "validate_data", "status": "succeeded"}

    ingest(ws, frame.iloc[: len(frame) - 30], "seattle-weather", target="rain_tomorrow")  # a newer version
    newest = run_recipe(ws, registered)
    assert newest.dataset_version["ref"] == "seattle-weather@2" and newest.steps[0]["status"] == "succeeded"
    pinned = run_recipe(ws, {**registered, "data": {**registered["data"], "version": 1}})
    assert pinned.dataset_version["ref"] == "seattle-weather@1"
    with pytest.raises(NotFoundError, match="seattle-weather@3|version 3"):
        run_recipe(ws, {**registered, "data": {**registered["data"], "version": 3}})
    with pytest.raises(SpecError, match="version"):
        run_recipe(ws, {**spec, "data": {**spec["data"], "version": 1}})  # a version goes without a source
