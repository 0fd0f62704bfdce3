"""``loopml alerts list | ack`` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopml.cli.main import app
from loopml.kernel.config import reset_settings
from loopml.monitor.alerts import raise_alert
from loopml.workspace import init_workspace

runner = CliRunner()


@pytest.fixture
def alert_ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LOOPML_ROOT", str(tmp_path))
    reset_settings()
    ws = init_workspace(tmp_path, actor="tester")
    raise_alert(ws, rule="monitor.data_drift", message="churn: data drift in tenure", endpoint="churn")
    raise_alert(ws, rule="monitor.health", message="fraud: error rate 9%", endpoint="fraud", severity="critical")
    yield ws
    ws.store.dispose()


def test_list_filters_and_ack(alert_ws) -> None:  # type: ignore[no-untyped-def]
    out = runner.invoke(app, ["alerts", "list"])
    assert out.exit_code == 0, out.output
    assert "alerts (2)" in out.output and "critical" in out.output
    out = runner.invoke(app, ["alerts", "list", "--endpoint", "churn", "--json"])
    rows = json.loads(out.stdout)
    assert [r["endpoint"] for r in rows] == ["churn"]
    alert_id = rows[0]["id"]
    out = runner.invoke(app, ["alerts", "ack", str(alert_id), "--note", "looking at it"])
    assert out.exit_code == 0 and f"alert {alert_id} acknowledged by tester" in out.output
    out = runner.invoke(app, ["alerts", "list", "--status", "acknowledged", "--json"])
    assert [r["id"] for r in json.loads(out.stdout)] == [alert_id]


def test_errors_are_one_line(alert_ws) -> None:  # type: ignore[no-untyped-def]
    out = runner.invoke(app, ["alerts", "ack", "999"])
    assert out.exit_code == 1 and "alert 999 does not exist" in out.output
    out = runner.invoke(app, ["alerts", "list", "--status", "closed"])
    assert out.exit_code == 2 and "--status 'closed' is unknown" in out.output
