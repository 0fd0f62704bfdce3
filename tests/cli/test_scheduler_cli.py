"""``loopml scheduler --once``: one tick, the runs it queued, and the notifications it raised, delivered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from loopml.cli.main import app
from loopml.kernel.config import reset_settings
from loopml.monitor.alerts import raise_alert
from loopml.workspace import init_workspace


def test_once_delivers_the_outbox_to_a_real_webhook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     http_receiver: Any) -> None:
    monkeypatch.setenv("LOOPML_ROOT", str(tmp_path))
    reset_settings()
    ws = init_workspace(tmp_path, actor="tester")
    raise_alert(ws, rule="monitor.data_drift", message="churn: data drift in tenure", endpoint="churn",
                channels=[{"type": "webhook", "url": http_receiver.url}])
    ws.store.dispose()
    out = CliRunner().invoke(app, ["scheduler", "--once", "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["leader"] is True and report["notified"] == 1 and report["executed"] == []
    assert [b["text"] for b in http_receiver.bodies] == ["churn: data drift in tenure"]
    again = CliRunner().invoke(app, ["scheduler", "--once"])  # sent once: the outbox row is done
    assert again.exit_code == 0 and "notifications sent: 0" in again.stdout
    assert len(http_receiver.bodies) == 1
