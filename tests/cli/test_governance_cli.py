"""``loopml approvals``, ``loopml models card``, ``loopml trace`` and ``loopml privacy`` on a workspace."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopml.cli.main import app
from loopml.kernel.config import reset_settings
from loopml.metadata.audit import audit_log


def _load_seed():  # type: ignore[no-untyped-def]
    if "gov_seed" in sys.modules:
        return sys.modules["gov_seed"]
    spec = importlib.util.spec_from_file_location("gov_seed", Path(__file__).parents[1] / "governance" / "gov_seed.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gov_seed"] = module
    spec.loader.exec_module(module)
    return module


gov_seed = _load_seed()


@pytest.fixture
def cli(sqlite_workspace, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LOOPML_ROOT", str(sqlite_workspace.root))
    monkeypatch.setenv("LOOPML_DB_URL", sqlite_workspace.store.url)
    runner = CliRunner()

    def invoke(*args: str, actor: str = "tester"):  # type: ignore[no-untyped-def]
        monkeypatch.setenv("LOOPML_ACTOR", actor)
        reset_settings()
        return runner.invoke(app, list(args))

    return invoke


def test_approvals_policy_request_approve_reject_list(sqlite_workspace, cli) -> None:  # type: ignore[no-untyped-def]
    gov_seed.seed(sqlite_workspace, deploy_v1=False)
    assert cli("approvals", "policy", "set", "model:churn", "--approvals", "1", actor="root").exit_code == 0
    shown = cli("approvals", "policy", "show", "--json")
    assert json.loads(shown.stdout)[0]["required"] == 1
    moved = cli("models", "alias", "churn", "champion", "1")
    assert moved.exit_code == 1 and "needs 1 approval(s)" in moved.stderr
    req = cli("approvals", "request", "churn/1", "--reason", "ready", "--json", actor="ana")
    rid = str(json.loads(req.stdout)["id"])
    own = cli("approvals", "approve", rid, "--reason", "mine", actor="ana")
    assert own.exit_code == 1 and "separation of duties" in own.stderr
    missing = cli("approvals", "approve", rid, actor="bob")
    assert missing.exit_code == 2  # --reason is required
    ok = cli("approvals", "approve", rid, "--reason", "checked", actor="bob")
    assert ok.exit_code == 0 and "approved" in ok.stdout
    assert cli("models", "alias", "churn", "champion", "1").exit_code == 0
    other = json.loads(cli("approvals", "request", "churn/2", "--json").stdout)["id"]
    assert cli("approvals", "reject", str(other), "--reason", "no", actor="eve").exit_code == 0
    listed = json.loads(cli("approvals", "list", "--json").stdout)
    assert [r["status"] for r in listed] == ["rejected", "approved"]
    assert "approval.reject" in [e.action for e in audit_log(sqlite_workspace)]


def test_models_card_trace_and_privacy(sqlite_workspace, cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = gov_seed.seed(sqlite_workspace)
    out = tmp_path / "card.html"
    made = cli("models", "card", "churn/1", "--format", "html", "--output", str(out), "--set", "owner=risk-team",
               "--set", "intended_use=churn scoring")
    assert made.exit_code == 0, made.output
    assert "risk-team" in out.read_text() and "<style>" in out.read_text()
    md = cli("models", "card", "churn@champion")
    assert md.exit_code == 0 and md.stdout.startswith("# Model card: churn/1")
    bad = cli("models", "card", "churn/1", "--set", "colour=red")
    assert bad.exit_code == 2 and "card field 'colour' is unknown" in bad.stderr
    table = cli("trace", s.request_ids[0], "--endpoint", "churn-api")
    assert table.exit_code == 0 and "churn/1" in table.stdout
    traced = json.loads(cli("trace", s.request_ids[0], "--endpoint", "churn-api", "--format", "json").stdout)
    assert traced["summary"]["datasets"][0]["ref"] == s.dataset
    assert cli("trace", s.request_ids[0], "--format", "dot").stdout.startswith("digraph")
    assert cli("trace", "--dataset", s.dataset, "--format", "mermaid").stdout.startswith("flowchart LR")
    assert cli("privacy", "retention", "set", "churn-api", "--days", "30").exit_code == 0
    applied = json.loads(cli("privacy", "retention", "apply", "--json").stdout)
    assert applied[0]["endpoint"] == "churn-api"
    erased = cli("privacy", "erase", "--subject-key", "f_customer_id", "--value", "C1", "--json")
    assert json.loads(erased.stdout)["prediction_rows"] == 2
    event = audit_log(sqlite_workspace, action="privacy.erase")[0]
    assert '"C1"' not in json.dumps(event.to_dict())
