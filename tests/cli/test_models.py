"""``loopml models``: list, show, versions, alias, history."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from loopml.cli.main import app
from loopml.kernel.config import reset_settings
from loopml.register import register_model


@pytest.fixture
def cli(workspace, monkeypatch):  # type: ignore[no-untyped-def]
    """Run the CLI against the test workspace (SQLite and PostgreSQL)."""
    monkeypatch.setenv("LOOPML_ROOT", str(workspace.root))
    monkeypatch.setenv("LOOPML_DB_URL", workspace.store.url)
    reset_settings()
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_models_list_show_versions(workspace, cli) -> None:  # type: ignore[no-untyped-def]
    register_model(workspace, "churn", {"w": 1}, flavor="custom", evaluation={"auc": 0.8}, aliases=["champion"])
    register_model(workspace, "churn", {"w": 2}, flavor="custom",
                   evaluation={"task": "classification", "n_rows": 111, "metrics": {"roc_auc": 0.91}})
    out = cli("models", "list", "--json")
    assert out.exit_code == 0, out.output
    assert [(m["name"], m["latest_version"], m["aliases"]) for m in json.loads(out.stdout)] == [
        ("churn", 2, {"champion": 1}),
    ]
    shown = json.loads(cli("models", "show", "churn@champion", "--json").stdout)
    assert (shown["ref"], shown["aliases"], shown["evaluation"]) == ("churn/1", ["champion"], {"auc": 0.8})
    assert [v["version"] for v in json.loads(cli("models", "versions", "churn", "--json").stdout)] == [1, 2]
    table = cli("models", "list")
    assert table.exit_code == 0 and "churn" in table.stdout and "champion→1" in table.stdout
    text = cli("models", "show", "churn/1")
    assert text.exit_code == 0 and "churn/1" in text.stdout and "auc=0.8" in text.stdout
    recipe_shaped = cli("models", "show", "churn/2")  # an Evaluation record: its metrics, not its row counts
    assert "roc_auc=0.91" in recipe_shaped.stdout and "n_rows" not in recipe_shaped.stdout


def test_models_alias_moves_and_reports(workspace, cli) -> None:  # type: ignore[no-untyped-def]
    for i in range(2):
        register_model(workspace, "churn", {"w": i}, flavor="custom")
    first = cli("models", "alias", "churn", "champion", "1")
    assert first.exit_code == 0 and "churn@champion → version 1" in first.stdout
    moved = cli("models", "alias", "churn", "champion", "2", "--reason", "better", "--json")
    assert moved.exit_code == 0, moved.output
    assert (json.loads(moved.stdout)["version"], json.loads(moved.stdout)["previous_version"]) == (2, 1)
    history = json.loads(cli("models", "history", "churn", "--json").stdout)
    assert [(h["from_version"], h["to_version"], h["reason"]) for h in history] == [(None, 1, None), (1, 2, "better")]


def test_models_errors_are_one_line(workspace, cli) -> None:  # type: ignore[no-untyped-def]
    register_model(workspace, "churn", {"w": 1}, flavor="custom", aliases=["champion"])
    out = cli("models", "show", "churn@prod")
    assert out.exit_code == 1
    assert out.stderr.strip() == "error: model 'churn' has no alias 'prod'; aliases: champion"
    bad = cli("models", "alias", "churn", "9", "1")
    assert bad.exit_code == 2 and "an alias cannot be a number" in bad.stderr


def test_a_bad_setting_is_one_line_not_a_traceback(workspace, cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LOOPML_SERVE__PORT", "abc")
    reset_settings()
    out = cli("models", "list")
    assert out.exit_code == 1 and isinstance(out.exception, SystemExit)  # a clean exit, no traceback
    assert len(out.stderr.strip().splitlines()) == 1 and "serve.port" in out.stderr and "abc" in out.stderr


def test_error_text_in_square_brackets_is_printed_not_taken_as_markup(workspace, cli) -> None:  # type: ignore[no-untyped-def]
    out = cli("models", "show", "ch[urn]/1")  # as "pip install 'loopml[tune]'" in a missing-extra error
    assert out.exit_code == 2 and "model 'ch[urn]' is invalid" in out.stderr
