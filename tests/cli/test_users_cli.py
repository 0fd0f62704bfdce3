"""``loopml users`` and ``loopml tokens``: create, grant, revoke; a token's secret printed once."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from loopml.cli.main import app
from loopml.governance.identity import authenticate
from loopml.kernel.config import reset_settings
from loopml.metadata.audit import audit_log


@pytest.fixture
def cli(workspace, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LOOPML_ROOT", str(workspace.root))
    monkeypatch.setenv("LOOPML_DB_URL", workspace.store.url)
    reset_settings()
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_users_add_list_grant_revoke(workspace, cli) -> None:  # type: ignore[no-untyped-def]
    added = cli("users", "add", "ana", "--email", "ana@example.org", "--role", "admin", "--role", "viewer@fraud",
                "--json")
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["roles"] == {"default": ["admin"], "fraud": ["viewer"]}
    assert "ana" in cli("users", "list").stdout
    granted = cli("users", "grant", "ana", "ml_engineer", "--project", "fraud", "--json")
    assert json.loads(granted.stdout)["roles"]["fraud"] == ["viewer", "ml_engineer"]
    revoked = cli("users", "revoke", "ana", "viewer", "--project", "fraud", "--json")
    assert json.loads(revoked.stdout)["roles"]["fraud"] == ["ml_engineer"]
    assert [e.action for e in audit_log(workspace, object="user:ana", newest_first=False)] == [
        "user.create", "role.grant", "role.revoke"]


def test_bad_input_is_one_line_and_exit_2(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("users", "add", "bo", "--role", "wizard")
    assert result.exit_code == 2
    assert "role 'wizard' is unknown; roles: viewer, data_scientist, ml_engineer, approver, admin" in result.output
    missing = cli("users", "grant", "nobody", "viewer")
    assert missing.exit_code == 1 and "user 'nobody' not found" in missing.output


def test_token_secret_printed_once_then_listed_and_revoked(workspace, cli) -> None:  # type: ignore[no-untyped-def]
    cli("users", "add", "ci", "--role", "data_scientist")
    created = cli("tokens", "create", "ci", "--name", "pipeline", "--expires-in-days", "7")
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("lml_") and authenticate(workspace, secret).name == "ci"
    token_id = secret.split("_")[1]

    listed = cli("tokens", "list", "--user", "ci", "--json")
    (row,) = json.loads(listed.stdout)
    assert row["id"] == token_id and row["status"] == "active" and secret.split("_", 2)[2] not in listed.stdout
    shown = cli("users", "show", "ci")
    assert token_id in shown.stdout and secret not in shown.stdout

    assert cli("tokens", "revoke", token_id, "--reason", "rotated").exit_code == 0
    assert json.loads(cli("tokens", "list", "--json").stdout)[0]["status"] == "revoked"
    assert json.loads(cli("tokens", "list", "--active", "--json").stdout) == []


def test_disable_user(cli) -> None:  # type: ignore[no-untyped-def]
    cli("users", "add", "root", "--role", "admin@*")
    cli("users", "add", "bo", "--role", "viewer")
    assert json.loads(cli("users", "disable", "bo", "--json").stdout)["active"] is False
    last = cli("users", "disable", "root")
    assert last.exit_code == 2 and "last active admin" in last.output
