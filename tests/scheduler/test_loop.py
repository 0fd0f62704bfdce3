"""The whole loop on real data: serve, replay, monitor, alert, trigger, retrain, gate, register."""

from __future__ import annotations

from pathlib import Path

import yaml

from loopml.monitor.alerts import list_alerts
from loopml.recipes import prepare_quickstart, run_recipe
from loopml.register import resolve
from loopml.scheduler import play_loop
from loopml.tracking import get_run


def _fast_recipe(root: Path) -> Path:
    path = prepare_quickstart(root)
    spec = yaml.safe_load(path.read_text())
    spec["train"]["search"]["n_trials"] = 2
    spec["train"]["params"]["max_iter"] = 40
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_drift_in_replayed_traffic_retrains_and_registers_a_challenger(sqlite_workspace) -> None:
    ws = sqlite_workspace
    recipe = _fast_recipe(ws.root)
    assert run_recipe(ws, recipe).gate_report["passed"]
    lines: list[str] = []
    story = play_loop(ws, recipe, say=lines.append)

    assert story.requests == 181 and story.errors == 0 and story.labels == 181
    assert story.report_status == "drift"
    assert {"temp_max", "month"} <= set(story.drifted_features)
    assert Path(story.report_path).read_text().count("data_drift") >= 1
    [alert] = [a for a in list_alerts(ws) if a.rule == "monitor.data_drift"]
    assert alert.endpoint == "rain-tomorrow" and alert.status == "open"

    run = get_run(ws, story.retrain_run_id)
    assert run.status == "succeeded"
    assert run.trigger["type"] == "alert" and run.trigger["alert_id"] == alert.id
    assert set(run.trigger["drifted_features"]) == set(story.drifted_features)

    assert story.candidate["version"] == 2
    assert story.gate_report["has_champion"] is True  # gated against the champion on the same test data
    champion = resolve(ws, "rain-tomorrow@champion")
    assert champion.version == 1  # the challenger waits for a person or a canary
    if story.candidate["gates_passed"]:
        assert resolve(ws, "rain-tomorrow@challenger").version == 2
    assert any("alert" in line and "fired run request" in line for line in lines)
