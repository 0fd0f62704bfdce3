"""``loopml audit``: log, verify (exit 1 on a broken chain), export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from loopml.cli.main import app
from loopml.kernel.config import reset_settings
from loopml.register import register_model, set_alias


@pytest.fixture
def cli(workspace, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LOOPML_ROOT", str(workspace.root))
    monkeypatch.setenv("LOOPML_DB_URL", workspace.store.url)
    reset_settings()
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def _history(ws) -> None:  # type: ignore[no-untyped-def]
    register_model(ws, "churn", {"w": 1}, flavor="custom")
    register_model(ws, "churn", {"w": 2}, flavor="custom")
    set_alias(ws, "churn", "champion", 2, reason="better")


def test_audit_log_filters_and_prints(workspace, cli) -> None:  # type: ignore[no-untyped-def]
    _history(workspace)
    out = cli("audit", "log", "--action", "model.alias", "--json")
    assert out.exit_code == 0, out.output
    (event,) = json.loads(out.stdout)
    assert (event["object"], event["after"], event["reason"], event["actor"]) == (
        "model_alias:churn@champion", {"version": 2}, "better", "tester",
    )
    assert len(json.loads(cli("audit", "log", "--object", "model_version:churn/*", "--json").stdout)) == 2
    assert len(json.loads(cli("audit", "log", "--limit", "1", "--since", "1h", "--json").stdout)) == 1
    table = cli("audit", "log")
    assert table.exit_code == 0 and "Audit log" in table.stdout and "tester" in table.stdout
    bad = cli("audit", "log", "--since", "whenever")
    assert bad.exit_code == 2 and "since 'whenever' is not a time" in bad.stderr


def test_audit_verify_passes_then_names_the_broken_event(workspace, cli) -> None:  # type: ignore[no-untyped-def]
    _history(workspace)
    ok = cli("audit", "verify")
    assert ok.exit_code == 0 and "audit chain intact" in ok.stdout
    with workspace.store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    broken = cli("audit", "verify")
    assert broken.exit_code == 1
    assert "audit chain broken at event 2: event 2 (model.register on model_version:churn/1 by mallory) was edited" in broken.stderr
    as_json = cli("audit", "verify", "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["problems"][0] == {
        "seq": 2, "kind": "edited",
        "message": "event 2 (model.register on model_version:churn/1 by mallory) was edited: "
                   "its content no longer matches its hash",
    }


def test_audit_export(workspace, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _history(workspace)
    target = tmp_path / "audit.jsonl"
    out = cli("audit", "export", str(target), "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == {"path": str(target), "events": 4}
    assert [json.loads(line)["action"] for line in target.read_text().splitlines()] == [
        "model.create", "model.register", "model.register", "model.alias",
    ]
