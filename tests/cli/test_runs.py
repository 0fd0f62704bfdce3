"""``loopml runs list | show | compare`` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopml.cli.main import app
from loopml.kernel.config import reset_settings
from loopml.tracking import start_run
from loopml.workspace import init_workspace

runner = CliRunner()


@pytest.fixture
def ws_with_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LOOPML_ROOT", str(tmp_path))
    reset_settings()
    ws = init_workspace(tmp_path, actor="tester")
    with start_run(ws, "parent", experiment="cli", tags={"team": "a"}) as parent:
        parent.log_params({"model": "hgb", "lr": 0.1})
        parent.log_metric("acc", 0.8)
        parent.log_artifact("notes.txt", "hi")
        with start_run(ws, "child", experiment="cli", kind="step", parent_id=parent.id) as child:
            child.log_params({"model": "lr", "lr": 0.1})
            child.log_metric("acc", 0.6)
    yield ws, parent.id, child.id
    ws.store.dispose()


def test_list_prints_a_table_and_json(ws_with_runs) -> None:
    _, parent_id, child_id = ws_with_runs
    out = runner.invoke(app, ["runs", "list", "--experiment", "cli"])
    assert out.exit_code == 0, out.output
    assert "parent" in out.output and "child" in out.output and "acc" in out.output
    out = runner.invoke(app, ["runs", "list", "--filter", "metrics.acc > 0.7", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    assert [r["id"] for r in rows] == [parent_id]
    out = runner.invoke(app, ["runs", "list", "--order-by", "metrics.acc", "--kind", "step", "--json"])
    assert [r["id"] for r in json.loads(out.stdout)] == [child_id]


def test_list_with_a_bad_filter_exits_2_with_one_line(ws_with_runs) -> None:
    out = runner.invoke(app, ["runs", "list", "--filter", "metrics.acc >> 1"])
    assert out.exit_code == 2
    assert "error: filter 'metrics.acc >> 1': expected a value" in out.output


def test_show_lists_params_metrics_artifacts_and_children(ws_with_runs) -> None:
    _, parent_id, child_id = ws_with_runs
    out = runner.invoke(app, ["runs", "show", parent_id])
    assert out.exit_code == 0, out.output
    for text in ("params", "hgb", "metrics", "0.8", "notes.txt", "children", child_id):
        assert text in out.output
    data = json.loads(runner.invoke(app, ["runs", "show", parent_id, "--json"]).stdout)
    assert data["params"] == {"lr": "0.1", "model": "hgb"}
    assert data["children"] == [{"id": child_id, "name": "child", "status": "succeeded"}]
    out = runner.invoke(app, ["runs", "show", "0000000000000"])
    assert out.exit_code == 1 and "run '0000000000000' not found" in out.output


def test_compare_highlights_differences(ws_with_runs) -> None:
    _, parent_id, child_id = ws_with_runs
    out = runner.invoke(app, ["runs", "compare", parent_id, child_id])
    assert out.exit_code == 0, out.output
    assert "params.model" in out.output and "3 value(s) differ" in out.output
    data = json.loads(runner.invoke(app, ["runs", "compare", parent_id, child_id, "--json"]).stdout)
    assert data["params"]["lr"] == {"values": ["0.1", "0.1"], "differs": False}
    assert data["metrics"]["acc"]["differs"] is True
    out = runner.invoke(app, ["runs", "compare", parent_id])
    assert out.exit_code == 2 and "compare needs at least two run ids" in out.output
