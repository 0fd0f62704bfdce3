"""``loopml monitor define | run | list | report`` through typer's CliRunner."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from loopml.cli.main import app
from loopml.kernel.config import reset_settings
from loopml.workspace import init_workspace
from tests.monitor.test_monitor_run import log_rows, make_model

runner = CliRunner()


@pytest.fixture
def cli_ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LOOPML_ROOT", str(tmp_path))
    reset_settings()
    ws = init_workspace(tmp_path, actor="tester")
    make_model(ws)
    yield ws
    ws.store.dispose()


def test_run_prints_checks_and_alert_lines_and_exits_0_on_drift(cli_ws: Any, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    log_rows(cli_ws, 1200, t0=now - timedelta(hours=1), tenure_shift=4.0, charges_scale=7.0)
    out = runner.invoke(app, ["monitor", "run", "churn"])
    assert out.exit_code == 0, out.output
    assert "data_drift" in out.output and "fail" in out.output and "ALERT" in out.output
    assert "tenure" in out.output
    out = runner.invoke(app, ["monitor", "run", "churn", "--json"])
    data = json.loads(out.stdout)
    assert data["status"] == "drift" and data["report"]["alerts"]
    html_file = tmp_path / "r.html"
    out = runner.invoke(app, ["monitor", "report", "churn", "--output", str(html_file)])
    assert out.exit_code == 0, out.output
    assert html_file.read_text().startswith("<!doctype html>")
    out = runner.invoke(app, ["monitor", "report", str(data["id"]), "--json"])
    assert json.loads(out.stdout)["id"] == data["id"]


def test_define_list_and_errors(cli_ws: Any, tmp_path: Path) -> None:
    spec = tmp_path / "m.yaml"
    spec.write_text("name: churn-hourly\nendpoint: churn\nschedule: '0 * * * *'\nchecks: [data_drift, health]\n")
    out = runner.invoke(app, ["monitor", "define", str(spec)])
    assert out.exit_code == 0, out.output
    assert "churn-hourly" in out.output
    out = runner.invoke(app, ["monitor", "list", "--json"])
    rows = json.loads(out.stdout)
    assert [r["name"] for r in rows] == ["churn-hourly"] and rows[0]["latest_report"] is None
    out = runner.invoke(app, ["monitor", "list"])
    assert "churn-hourly" in out.output and "0 * * * *" in out.output
    spec.write_text("endpoint: churn\nchecks: {drift: {}}\n")
    out = runner.invoke(app, ["monitor", "define", str(spec)])
    assert out.exit_code == 2 and "unknown check 'drift'" in out.output
    out = runner.invoke(app, ["monitor", "run", "nowhere"])
    assert out.exit_code == 1 and "no monitor is named 'nowhere'" in out.output
    out = runner.invoke(app, ["monitor", "report", "999"])
    assert out.exit_code == 1 and "monitor report 999 does not exist" in out.output
