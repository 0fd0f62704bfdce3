"""``loopml deploy`` and ``loopml rollout ...``: start, watch, promote, roll back, audit a rollout."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from loopml.cli.main import app
from loopml.kernel.config import reset_settings
from loopml.register import register_model, resolve


@pytest.fixture
def cli(workspace, monkeypatch):  # type: ignore[no-untyped-def]
    """Run the CLI against the test workspace (SQLite and PostgreSQL)."""
    monkeypatch.setenv("LOOPML_ROOT", str(workspace.root))
    monkeypatch.setenv("LOOPML_DB_URL", workspace.store.url)
    reset_settings()
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def _register(ws, n: int = 2, passed: bool = True) -> list[int]:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    model = LogisticRegression().fit(x, (x.a > 0).astype(int))
    return [register_model(ws, "churn", model, gates_passed=passed).version for _ in range(n)]


def test_deploy_canary_status_promote_and_history(workspace, cli) -> None:  # type: ignore[no-untyped-def]
    v1, v2 = _register(workspace)
    first = cli("deploy", "churn-api", f"churn/{v1}", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["rollout"]["status"] == "promoted"
    out = cli("deploy", "churn-api", f"churn/{v2}", "--strategy", "canary", "--steps", "0.1,0.5,1",
              "--min-requests", "20", "--min-seconds", "0", "--set", "interval_s=2")
    assert out.exit_code == 0, out.output
    assert "canary of churn/2 on churn-api (running)" in out.stdout and "10%" in out.stdout
    status = json.loads(cli("rollout", "status", "churn-api", "--json").stdout)
    assert status["rollout"]["config"]["steps"] == [0.1, 0.5, 1.0]
    assert status["rollout"]["config"]["interval_s"] == 2
    assert status["endpoint"]["serving_versions"] == [v1, v2]
    text = cli("rollout", "status", "churn-api")
    assert text.exit_code == 0 and "v1 90% (baseline), v2 10% (candidate)" in text.stdout
    assert "not analysed yet" in text.stdout
    promoted = cli("rollout", "promote", "churn-api", "--reason", "looks good")
    assert promoted.exit_code == 0 and "promoted" in promoted.stdout
    assert resolve(workspace, "churn@champion").version == v2
    history = json.loads(cli("rollout", "history", "churn-api", "--json").stdout)
    assert [c["revision"] for c in history["changes"]] == [1, 2, 3]
    assert history["versions_served"] == [v1, v2]
    assert history["changes"][-1]["reason"] == "looks good"
    table = cli("rollout", "history", "churn-api", "--since", "1h")
    assert table.exit_code == 0 and "versions that served churn-api" in table.stdout and "v1, v2" in table.stdout


def test_rollback_pause_resume_and_analyze(workspace, cli) -> None:  # type: ignore[no-untyped-def]
    v1, v2 = _register(workspace)
    cli("deploy", "e", f"churn/{v1}")
    assert cli("deploy", "e", f"churn/{v2}", "--strategy", "ab", "--split", "0.3").exit_code == 0
    paused = cli("rollout", "pause", "e", "--reason", "weekend", "--json")
    assert paused.exit_code == 0 and json.loads(paused.stdout)["status"] == "paused"
    nothing = cli("rollout", "analyze", "e")
    assert nothing.exit_code == 1 and "is paused" in nothing.output
    assert json.loads(cli("rollout", "resume", "e", "--json").stdout)["status"] == "running"
    analysed = cli("rollout", "analyze", "e", "--json")
    assert analysed.exit_code == 0, analysed.output
    assert json.loads(analysed.stdout)["action"] == "hold"  # no traffic yet
    assert "last analysis" in cli("rollout", "status", "e").stdout
    missing_reason = cli("rollout", "rollback", "e")
    assert missing_reason.exit_code != 0
    back = cli("rollout", "rollback", "e", "--reason", "too risky")
    assert back.exit_code == 0 and "rolled_back" in back.stdout
    assert resolve(workspace, "churn@champion").version == v1


def test_deploy_errors_are_one_line(workspace, cli) -> None:  # type: ignore[no-untyped-def]
    v1, v2 = _register(workspace)
    (v3,) = _register(workspace, 1, passed=False)
    cli("deploy", "e", f"churn/{v1}")
    wrong = cli("deploy", "e", f"churn/{v2}", "--strategy", "canary", "--split", "0.5")
    assert wrong.exit_code == 2 and "unknown option(s) split" in wrong.output
    gated = cli("deploy", "e", f"churn/{v3}", "--strategy", "canary")
    assert gated.exit_code == 1 and "--override-reason" in gated.output
    overridden = cli("deploy", "e", f"churn/{v3}", "--strategy", "canary", "--override-reason", "hotfix")
    assert overridden.exit_code == 0, overridden.output
    assert cli("rollout", "status", "nope").exit_code == 1


def test_deploy_from_a_yaml_spec(workspace, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    v1, v2 = _register(workspace)
    cli("deploy", "e", f"churn/{v1}")
    spec = tmp_path / "deploy.yaml"
    spec.write_text(f"endpoint: e\nmodel: churn/{v2}\nstrategy: blue-green\noptions:\n  min_requests: 5\n")
    out = cli("deploy", "--file", str(spec), "--json")
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["rollout"]["strategy"] == "blue-green" and result["rollout"]["config"]["min_requests"] == 5
    assert result["endpoint"]["policy"]["standby"] == [v2]
    bad = tmp_path / "bad.yaml"
    bad.write_text("endpoint: e\nmodle: churn/1\n")
    assert "unknown key(s) modle" in cli("deploy", "--file", str(bad)).output


def test_who_answered_a_request(sqlite_workspace, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from loopml.predictions import open_prediction_log
    from loopml.serve import PredictionRecord

    ws = sqlite_workspace
    monkeypatch.setenv("LOOPML_ROOT", str(ws.root))
    reset_settings()
    now = datetime.now(UTC)

    def rec(endpoint: str, rid: str, version: int) -> PredictionRecord:
        return PredictionRecord(request_id=rid, ts=now, endpoint=endpoint, model_name="churn", model_version=version,
                                inputs={"a": np.array([1.0])}, outputs={"predict": np.array([1])}, latency_ms=1.5,
                                status=200)

    with open_prediction_log(ws) as plog:
        plog.submit([rec("e", "r-1", 1), rec("e", "r-2", 2), rec("e.shadow", "r-2", 3)])
    runner = CliRunner()
    out = runner.invoke(app, ["rollout", "who", "r-2", "--endpoint", "e", "--json"])
    assert out.exit_code == 0, out.output
    found = json.loads(out.stdout)
    assert [a["model_version"] for a in found["answered_by"]] == [2]
    assert [a["model_version"] for a in found["shadows"]] == [3]
    table = runner.invoke(app, ["rollout", "who", "r-1"])
    assert table.exit_code == 0 and "churn/1" in table.stdout
    missing = runner.invoke(app, ["rollout", "who", "r-9", "--endpoint", "e"])
    assert missing.exit_code == 1 and "not in the prediction log" in missing.output
