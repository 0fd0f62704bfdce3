"""``loopml lineage OBJECT``: table, JSON, DOT and Mermaid, upstream or downstream."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from loopml.cli.main import app
from loopml.kernel.config import reset_settings
from loopml.kernel.types import utcnow
from loopml.metadata._orm import Run
from loopml.register import register_model


@pytest.fixture
def cli(workspace, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LOOPML_ROOT", str(workspace.root))
    monkeypatch.setenv("LOOPML_DB_URL", workspace.store.url)
    reset_settings()
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


@pytest.fixture
def graph(workspace) -> None:  # type: ignore[no-untyped-def]
    with workspace.store.write("tester") as tx:
        tx.session.add(Run(id="r1", name="train", experiment="default", kind="pipeline", status="succeeded",
                           started_at=utcnow(), tags={}, created_by="tester"))
    register_model(workspace, "churn", {"w": 1}, flavor="custom", run_id="r1", aliases=["champion"])
    with workspace.store.write("tester") as tx:
        tx.link(("model_version", "churn/1"), "deployed_to", ("deployment", "web"))


def test_lineage_formats(cli, graph) -> None:  # type: ignore[no-untyped-def]
    up = cli("lineage", "model:churn@champion", "--upstream", "--json")
    assert up.exit_code == 0, up.output
    data = json.loads(up.stdout)
    assert data["root"] == "model_version:churn/1" and data["direction"] == "upstream"
    assert data["edges"] == [{"src": "run:r1", "relation": "produced", "dst": "model_version:churn/1"}]
    down = json.loads(cli("lineage", "run:r1", "--downstream", "--format", "json").stdout)
    assert [e["dst"] for e in down["edges"]] == ["model_version:churn/1", "deployment:web"]
    dot = cli("lineage", "model_version:churn/1", "--format", "dot")
    assert dot.exit_code == 0 and '"run:r1" -> "model_version:churn/1" [label="produced"];' in dot.stdout
    mermaid = cli("lineage", "model_version:churn/1", "-f", "mermaid")
    assert mermaid.stdout.startswith("flowchart LR") and "-->|deployed_to|" in mermaid.stdout
    table = cli("lineage", "model:churn")
    assert table.exit_code == 0 and "produced" in table.stdout and "deployed_to" in table.stdout


def test_lineage_errors(cli, graph) -> None:  # type: ignore[no-untyped-def]
    missing = cli("lineage", "model:churn@prod")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == "error: model 'churn' has no alias 'prod'; aliases: champion"
    both = cli("lineage", "run:r1", "--upstream", "--downstream")
    assert both.exit_code == 2 and "not both" in both.stderr
    fmt = cli("lineage", "run:r1", "--format", "png")
    assert fmt.exit_code == 2 and "--format 'png' is invalid" in fmt.stderr
