"""The CLI aimed at a running server (``LOOPML_SERVER_URL`` + ``LOOPML_TOKEN``): every verb checks the
token user's roles, acts as that user, and the governance verbs go over HTTP (the verbs that used to need
the store: ``test_cli_remote_store_verbs.py``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from loopml.cli._access import COMMAND_ACTIONS
from loopml.cli.main import app
from loopml.governance._roles import ACTIONS
from loopml.kernel.config import reset_settings
from loopml.metadata.audit import audit_log

from .conftest import CSV, Live, seed_alert, seed_model, seed_runs, seed_trigger

Cli = Callable[..., Result]


def _cli(live: Live, monkeypatch: pytest.MonkeyPatch, *, store: bool = True) -> Cli:
    """``cli(*args, role=...)``: the CLI as the user holding ``role`` (LOOPML_ACTOR says someone else)."""
    runner = CliRunner()
    monkeypatch.setenv("LOOPML_SERVER_URL", live.url)
    monkeypatch.setenv("LOOPML_ACTOR", "someone-else")
    if store:
        monkeypatch.setenv("LOOPML_ROOT", str(live.ws.root))
        monkeypatch.setenv("LOOPML_DB_URL", live.ws.store.url)
        monkeypatch.setenv("LOOPML_ARTIFACTS_URL", live.ws.settings.resolved_artifacts_url)

    def invoke(*args: str, role: str = "admin") -> Result:
        monkeypatch.setenv("LOOPML_TOKEN", live.tokens[role])
        reset_settings()
        return runner.invoke(app, list(args))

    return invoke


@pytest.fixture
def cli(live: Live, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return _cli(live, monkeypatch)


def _walk(command: Any, prefix: tuple[str, ...] = ()) -> list[str]:
    if hasattr(command, "commands"):
        return [p for name, sub in command.commands.items() for p in _walk(sub, (*prefix, name))]
    return [" ".join(prefix)]


def test_every_cli_command_declares_its_action() -> None:
    from typer.main import get_command

    commands = set(_walk(get_command(app)))
    assert commands == set(COMMAND_ACTIONS), (commands ^ set(COMMAND_ACTIONS))
    assert {a for a in COMMAND_ACTIONS.values() if isinstance(a, str)} <= ACTIONS


def test_an_approved_promotion_driven_from_the_cli_over_http(live: Live, cli: Cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    seed_model(live.ws, 2)  # registered by 'tester': nobody below is the author
    assert cli("approvals", "policy", "set", "endpoint:churn-api", "--approvals", "1", role="ml_engineer").exit_code == 1
    assert cli("approvals", "policy", "set", "endpoint:churn-api", "--approvals", "1").exit_code == 0
    shown = cli("approvals", "policy", "show", "--json", role="viewer")
    assert json.loads(shown.stdout)[0]["target"] == "endpoint:churn-api"
    refused = cli("deploy", "churn-api", "churn/1", role="ml_engineer")
    assert refused.exit_code == 1 and "needs 1 approval(s)" in refused.stderr
    asked = cli("approvals", "request", "churn/1", "--endpoint", "churn-api", "--reason", "release", "--json",
                role="ml_engineer")
    rid = str(json.loads(asked.stdout)["id"])
    denied = cli("approvals", "approve", rid, "--reason", "lgtm", role="ml_engineer")
    assert denied.exit_code == 1 and "may not do 'approval.decide'" in denied.stderr
    approved = cli("approvals", "approve", rid, "--reason", "slices checked", role="approver")
    assert approved.exit_code == 0 and "approved" in approved.stdout, approved.output
    listed = json.loads(cli("approvals", "list", "--json", role="viewer").stdout)
    assert listed[0]["approvers"] == ["approver"]
    deployed = cli("deploy", "churn-api", "churn/1", "--json", role="ml_engineer")
    assert deployed.exit_code == 0, deployed.output
    assert json.loads(deployed.stdout)["rollout"]["created_by"] == "ml_engineer"
    # the audit, read through the server, names the token users (never LOOPML_ACTOR)
    events = json.loads(cli("audit", "log", "--action", "approval", "--json", role="viewer").stdout)
    assert {e["actor"] for e in events} == {"admin", "ml_engineer", "approver"}
    assert cli("audit", "verify", role="viewer").exit_code == 0
    exported = cli("audit", "export", str(tmp_path / "a.jsonl"), "--json", role="viewer")
    assert json.loads(exported.stdout)["events"] >= 5
    mermaid = cli("lineage", "model_version:churn/1", "--format", "mermaid", role="viewer")
    assert mermaid.exit_code == 0 and mermaid.stdout.startswith("flowchart")
    table = cli("lineage", "model_version:churn/1", role="viewer")
    assert table.exit_code == 0 and "model_version:churn/1" in table.stdout


def test_rollout_alias_alert_and_trigger_verbs_go_over_http(live: Live, cli: Cli) -> None:
    seed_model(live.ws, 2)
    seed_trigger(live.ws)
    alert_id = seed_alert(live.ws)
    assert cli("deploy", "churn-api", "churn/1", role="ml_engineer").exit_code == 0
    canary = cli("deploy", "churn-api", "churn/2", "--strategy", "canary", "--steps", "0.1,1", role="ml_engineer")
    assert canary.exit_code == 0, canary.output
    assert cli("rollout", "pause", "churn-api", role="data_scientist").exit_code == 1
    back = cli("rollout", "rollback", "churn-api", "--reason", "p95 doubled", "--json", role="ml_engineer")
    assert back.exit_code == 0 and json.loads(back.stdout)["status"] == "rolled_back", back.output
    moved = cli("models", "alias", "churn", "challenger", "2", "--json", role="ml_engineer")
    assert moved.exit_code == 0 and json.loads(moved.stdout)["version"] == 2
    champion = cli("models", "alias", "churn", "champion", "2", role="ml_engineer")
    assert champion.exit_code == 1 and "protected alias 'champion'" in champion.stderr
    acked = cli("alerts", "ack", str(alert_id), "--note", "on it", role="ml_engineer")
    assert acked.exit_code == 0 and "acknowledged by ml_engineer" in acked.stdout
    fired = cli("triggers", "fire", "nightly", "--reason", "new labels", "--json", role="ml_engineer")
    assert fired.exit_code == 0 and json.loads(fired.stdout)["status"] == "pending"
    assert audit_log(live.ws, action="trigger.fire")[0].actor == "ml_engineer"


#: Per role, CLI verbs it may not run: some go over HTTP (the server refuses), some act on the
#: shared store (the CLI refuses before touching it).
REFUSED: dict[str, list[tuple[str, ...]]] = {
    "viewer": [("data", "ingest", "{csv}", "--name", "w"), ("triggers", "fire", "nightly"),
               ("alerts", "ack", "1"), ("monitor", "define", "{csv}")],
    "data_scientist": [("triggers", "add", "t2", "--recipe", "{csv}"), ("rollout", "promote", "e"),
                       ("deploy", "e", "churn/1"), ("predictions", "compact", "e", "--date", "2026-01-01")],
    "ml_engineer": [("users", "list"), ("tokens", "list", "--user", "viewer"),
                    ("approvals", "approve", "1", "--reason", "x"), ("privacy", "retention", "set", "e", "--days", "3")],
    "approver": [("users", "add", "zed", "--role", "viewer"), ("privacy", "erase", "--subject-key", "request_id",
                                                                 "--value", "r1"),
                 ("approvals", "override", "1", "--reason", "x"), ("approvals", "policy", "set", "model:churn", "-n", "1")],
}


@pytest.mark.parametrize("role", list(REFUSED))
def test_each_role_is_refused_cli_verbs_it_may_not_run(live_sqlite: Live, monkeypatch: pytest.MonkeyPatch,
                                                       role: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    seed_model(live_sqlite.ws, 1)
    seed_trigger(live_sqlite.ws)
    csv = tmp_path / "w.csv"
    csv.write_bytes(CSV)
    cli = _cli(live_sqlite, monkeypatch)
    before = len(audit_log(live_sqlite.ws, limit=10_000))
    for args in REFUSED[role]:
        out = cli(*[a.format(csv=csv) for a in args], role=role)
        assert out.exit_code == 1, (args, out.output)
        assert f"user {role!r}" in out.stderr and "may not" in out.stderr, (args, out.stderr)
    assert len(audit_log(live_sqlite.ws, limit=10_000)) == before  # nothing was written


def test_a_store_verb_acts_as_the_token_user_and_needs_the_store(live_sqlite: Live, monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path) -> None:  # type: ignore[no-untyped-def]
    csv = tmp_path / "w.csv"
    csv.write_bytes(CSV)
    cli = _cli(live_sqlite, monkeypatch)
    assert cli("data", "ingest", str(csv), "--name", "w", role="data_scientist").exit_code == 0
    assert audit_log(live_sqlite.ws, action="dataset.ingest")[0].actor == "data_scientist"
    monkeypatch.delenv("LOOPML_DB_URL")
    monkeypatch.setenv("LOOPML_ROOT", str(tmp_path / "nowhere"))
    scored = cli("score", "churn/1", "--input", str(csv), "--output", str(tmp_path / "o.parquet"), "--here",
                 role="data_scientist")  # scores on this machine: it needs the store
    assert scored.exit_code == 1 and "computes on this machine" in scored.stderr and "LOOPML_DB_URL" in scored.stderr
    # the governance and read verbs need no store: they go over HTTP
    assert cli("audit", "log", "--json", role="viewer").exit_code == 0
    assert json.loads(cli("data", "list", "--json", role="viewer").stdout)[0]["name"] == "w"


def test_a_bad_token_is_refused_before_anything_runs(live_sqlite: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    cli = _cli(live_sqlite, monkeypatch)
    live_sqlite.tokens["forged"] = "lml_0123456789abcdef_" + "z" * 43
    for args in (("runs", "list"), ("audit", "log")):
        out = cli(*args, role="forged")
        assert out.exit_code == 1 and "not valid" in out.stderr, out.output


def _cli_alone(live: Live, monkeypatch: pytest.MonkeyPatch, tmp_path) -> Cli:  # type: ignore[no-untyped-def]
    """The CLI with only ``LOOPML_SERVER_URL`` + ``LOOPML_TOKEN``: no store it could open."""
    cli = _cli(live, monkeypatch, store=False)
    monkeypatch.setenv("LOOPML_ROOT", str(tmp_path / "nowhere"))
    return cli


def _cli_here(live: Live, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The same commands on the server's store, embedded (no server)."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        with monkeypatch.context() as env:
            for key in ("LOOPML_SERVER_URL", "LOOPML_TOKEN"):
                env.delenv(key, raising=False)
            env.setenv("LOOPML_ROOT", str(live.ws.root))
            env.setenv("LOOPML_DB_URL", live.ws.store.url)
            env.setenv("LOOPML_ARTIFACTS_URL", live.ws.settings.resolved_artifacts_url)
            reset_settings()
            out = runner.invoke(app, list(args))
        reset_settings()
        return out

    return invoke


def test_read_verbs_over_http_print_what_the_store_prints(live: Live, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from loopml.deploy import deploy, shadow_endpoint_name
    from loopml.predictions import open_prediction_log
    from loopml.register import set_alias

    run_ids = seed_runs(live.ws, 3)
    seed_model(live.ws, 2)
    set_alias(live.ws, "churn", "challenger", 2, reason="better recall")
    seed_trigger(live.ws)
    seed_alert(live.ws)
    deploy(live.ws, "churn-api", "churn/1")
    deploy(live.ws, "churn-api", "churn/2", strategy="canary", steps=[0.2, 1.0])
    ts = datetime.now(UTC)
    with open_prediction_log(live.ws) as log:
        log.submit([{"request_id": "r-1", "ts": ts, "endpoint": name, "model_name": "churn", "model_version": v,
                     "inputs": {"a": [1.0]}, "outputs": {"predict": [v]}, "latency_ms": 2.0, "status": 200,
                     "error": None} for name, v in (("churn-api", 2), (shadow_endpoint_name("churn-api"), 1))])
    csv = tmp_path / "w.csv"
    csv.write_bytes(CSV)
    over_http, here = _cli_alone(live, monkeypatch, tmp_path), _cli_here(live, monkeypatch)

    uploaded = over_http("data", "ingest", str(csv), "--name", "w", "--json", role="data_scientist")
    assert uploaded.exit_code == 0, uploaded.output
    again = here("data", "ingest", str(csv), "--name", "w", "--json")  # the same content: the same version
    assert json.loads(uploaded.stdout) == {**json.loads(again.stdout), "new": True}
    assert audit_log(live.ws, action="dataset.ingest")[0].actor == "data_scientist"
    assert "stored w2@1: 4 rows x 3 columns" in over_http("data", "ingest", str(csv), "--name", "w2",
                                                         role="data_scientist").stdout
    verbs = [
        ("runs", "list"), ("runs", "list", "--filter", "metrics.acc > 0.15", "--order-by", "metrics.acc DESC"),
        ("runs", "show", run_ids[0]), ("runs", "compare", *run_ids[:2]),
        ("models", "list"), ("models", "show", "churn@challenger"), ("models", "versions", "churn"),
        ("models", "history", "churn"), ("models", "history", "churn", "challenger"),
        ("data", "list"), ("data", "versions", "w"), ("data", "show", "w"), ("data", "show", "w@1"),
        ("alerts", "list"), ("alerts", "list", "--status", "open", "-e", "churn-api"), ("triggers", "list"),
        ("rollout", "status", "churn-api"),
        ("rollout", "history", "churn-api", "--since", "1d", "--until", datetime.now(UTC).isoformat()),
        ("rollout", "who", "r-1"), ("rollout", "who", "r-1", "--endpoint", "churn-api"),
    ]
    for args in verbs:
        table, local_table = over_http(*args, role="viewer"), here(*args)
        assert table.exit_code == 0, (args, table.output)
        assert local_table.exit_code == 0, (args, local_table.output)
        if args[:2] != ("rollout", "history"):  # "1d" ago is a moment later on the second call
            assert table.stdout == local_table.stdout, args
        data, local_data = over_http(*args, "--json", role="viewer"), here(*args, "--json")
        assert data.exit_code == 0, (args, data.output)
        if args[:2] == ("rollout", "history"):
            data_json, local_json = json.loads(data.stdout), json.loads(local_data.stdout)
            assert data_json.pop("since") != "" and local_json.pop("since") != ""
            assert data_json == local_json, args
        else:
            assert json.loads(data.stdout) == json.loads(local_data.stdout), args
    assert "v1 80% (baseline), v2 20% (candidate)" in over_http("rollout", "status", "churn-api", role="viewer").stdout
    who = json.loads(over_http("rollout", "who", "r-1", "--json", role="viewer").stdout)
    assert [(a["model_version"], a["shadow"]) for a in who["answered_by"] + who["shadows"]] == [(2, False), (1, True)]
    served = json.loads(over_http("rollout", "history", "churn-api", "--json", role="viewer").stdout)
    assert served["versions_served"] == [1, 2] and [c["revision"] for c in served["changes"]] == [1, 2]
    # errors come back as the same one-line messages
    missing = over_http("models", "show", "ghost", role="viewer")
    assert missing.exit_code == 1 and missing.stderr == here("models", "show", "ghost").stderr
    nobody = over_http("rollout", "who", "r-9", role="viewer")
    assert nobody.exit_code == 1 and "request 'r-9' is not in the prediction log" in nobody.stderr
    query = over_http("data", "ingest", "sqlite:///x.db", "--name", "q", "--query", "select 1", role="data_scientist")
    assert query.exit_code == 2 and "--query" in query.stderr
