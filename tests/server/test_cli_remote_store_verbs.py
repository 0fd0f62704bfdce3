"""The CLI verbs that used to need the shared store, aimed at a server with only ``LOOPML_SERVER_URL`` +
``LOOPML_TOKEN`` (no store the CLI could open): ``data validate|contract|profile``, ``monitor *``,
``predictions *``, ``triggers add|enable|disable|requests`` and ``rollout analyze`` print what the store
prints, act as the token's user, are refused for roles without the action (nothing written), and bad input
is a 4xx JSON error over HTTP and a one-line error in the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from loopml.ingest import ingest
from loopml.kernel import exceptions as E
from loopml.metadata.audit import audit_log
from loopml.server.client import RemoteClient
from tests.monitor.test_monitor_run import log_rows, make_model

from .conftest import API, CSV, Live, seed_trigger
from .test_cli_remote import _cli_alone, _cli_here

#: A contract for the seeded dataset ``w`` (a, b, label) that rows 2 and 4 break (a > 3).
CONTRACT = """version: 1
columns:
  a: {type: float, nullable: false, min: 0.0, max: 3.0}
  b: {type: category, nullable: false, categories: [x, y], unseen: reject}
  label: {type: int, nullable: false}
target: label
"""
RECIPE = """name: retrain
data: {dataset: w, source: w.csv, target: label}
train: {estimator: sklearn.linear_model.LogisticRegression}
register: {model: churn}
"""
MONITOR = "name: churn-hourly\nendpoint: churn\nschedule: '0 * * * *'\nchecks: [data_drift, health]\n"


def _seed(ws: Any, tmp_path: Path) -> dict[str, Path]:
    """Model ``churn`` (champion), 300 drifted predictions of endpoint ``churn``, dataset ``w``, trigger
    ``nightly``; and the files a user would hold: a contract, a recipe, a monitor spec, labels."""
    make_model(ws)
    ids = log_rows(ws, 300, t0=datetime.now(UTC) - timedelta(minutes=30), tenure_shift=4.0)
    files = {name: tmp_path / name for name in ("w.csv", "c.yaml", "r.yaml", "m.yaml", "labels.csv")}
    files["w.csv"].write_bytes(CSV)
    files["c.yaml"].write_text(CONTRACT)
    files["r.yaml"].write_text(RECIPE)
    files["m.yaml"].write_text(MONITOR)
    files["labels.csv"].write_text("request_id,label\n" + "".join(f"{i},{n % 2}\n" for n, i in enumerate(ids[:2])))
    ingest(ws, files["w.csv"], "w", target="label")
    seed_trigger(ws)
    return files


def test_read_verbs_over_http_print_what_the_store_prints(live: Live, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    files = _seed(live.ws, tmp_path)
    over_http, here = _cli_alone(live, monkeypatch, tmp_path), _cli_here(live, monkeypatch)
    report_id = json.loads(here("monitor", "run", "churn", "--json").stdout)["id"]
    verbs: list[tuple[str, ...]] = [
        ("data", "validate", "w"), ("data", "validate", "w@1", "--contract", str(files["c.yaml"])),
        ("data", "contract", "w"), ("monitor", "list"), ("monitor", "report", str(report_id)),
        ("monitor", "report", "churn"), ("predictions", "query", "churn", "--limit", "5"),
        ("predictions", "query", "churn", "--model-version", "1", "--since", "2h", "--limit", "0"),
        ("predictions", "count", "churn"), ("triggers", "requests"),
    ]
    for args in verbs:
        table, local_table = over_http(*args, role="viewer"), here(*args)
        assert table.exit_code == local_table.exit_code, (args, table.output, local_table.output)
        assert table.stdout == local_table.stdout, args
        data, local_data = over_http(*args, "--json", role="viewer"), here(*args, "--json")
        assert data.exit_code == local_data.exit_code, (args, data.output)
        assert json.loads(data.stdout) == json.loads(local_data.stdout), args
    broken = over_http("data", "validate", "w", "--contract", str(files["c.yaml"]), role="viewer")
    assert broken.exit_code == 1 and "invalid" in broken.stdout and "2 rows" not in broken.stderr
    rows = json.loads(over_http("predictions", "query", "churn", "--limit", "0", "--json", role="viewer").stdout)
    assert len(rows) == 300 and rows[0]["ts"].endswith("+00:00")  # every page followed; times as ISO text
    # profiles: the JSON, and the HTML report (written under the version's name by default)
    profile = over_http("data", "profile", "w", "--json", role="viewer")
    assert json.loads(profile.stdout) == json.loads(here("data", "profile", "w", "--json").stdout)
    monkeypatch.chdir(tmp_path)
    written = over_http("data", "profile", "w", role="viewer")
    assert written.exit_code == 0 and "wrote w-v1.profile.html" in written.stdout, written.output
    assert (tmp_path / "w-v1.profile.html").read_text().lower().startswith("<!doctype html>")
    # files: a report's HTML view, every row of a window as Parquet and as CSV
    for name in ("r-remote.html", "r-local.html"):
        cli = over_http if "remote" in name else here
        out = cli("monitor", "report", str(report_id), "--output", str(tmp_path / name),
                  **({"role": "viewer"} if cli is over_http else {}))
        assert out.exit_code == 0, out.output
    assert (tmp_path / "r-remote.html").read_text() == (tmp_path / "r-local.html").read_text()
    for suffix in ("parquet", "csv"):
        remote_file, local_file = tmp_path / f"remote.{suffix}", tmp_path / f"local.{suffix}"
        got = over_http("predictions", "query", "churn", "-o", str(remote_file), "--json", role="viewer")
        assert json.loads(got.stdout) == {"endpoint": "churn", "rows": 300, "output": str(remote_file)}, got.output
        here("predictions", "query", "churn", "-o", str(local_file))
        read = pd.read_parquet if suffix == "parquet" else pd.read_csv
        pd.testing.assert_frame_equal(read(remote_file), read(local_file))


def test_write_verbs_over_http_act_as_the_token_user(live: Live, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    from loopml.predictions import count_predictions, join_feedback
    from loopml.trigger import get_trigger

    files = _seed(live.ws, tmp_path)
    over_http, here = _cli_alone(live, monkeypatch, tmp_path), _cli_here(live, monkeypatch)

    edited = over_http("data", "contract", "w", "--edit", str(files["c.yaml"]), role="data_scientist")
    assert edited.exit_code == 0 and "contract of w replaced" in edited.stdout, edited.output
    assert audit_log(live.ws, action="dataset.contract")[0].actor == "data_scientist"
    assert over_http("data", "validate", "w", role="viewer").exit_code == 1  # the new contract is the stored one

    defined = over_http("monitor", "define", str(files["m.yaml"]), "--json", role="ml_engineer")
    assert json.loads(defined.stdout)["schedule"] == "0 * * * *", defined.output
    assert audit_log(live.ws, action="monitor.define")[0].actor == "ml_engineer"
    ran = over_http("monitor", "run", "churn-hourly", role="ml_engineer")
    assert ran.exit_code == 0 and "(monitor churn-hourly)" in ran.stdout and "tenure" in ran.stdout, ran.output
    report = json.loads(over_http("monitor", "run", "churn-hourly", "--json", role="ml_engineer").stdout)
    assert report["report"]["checks"]["data_drift"]["details"]["drifted_columns"]
    listed = json.loads(over_http("monitor", "list", "--json", role="viewer").stdout)
    assert listed[0]["latest_report"] == {"id": report["id"], "status": report["status"]}
    assert {e.actor for e in audit_log(live.ws, action="monitor.run")} <= {"ml_engineer"}

    stored = over_http("predictions", "feedback", "churn", "--file", str(files["labels.csv"]), "--json",
                       role="ml_engineer")
    assert json.loads(stored.stdout)["rows"] == 2, stored.output
    assert join_feedback(live.ws, "churn")["label"].notna().sum() == 2
    day = (datetime.now(UTC) - timedelta(minutes=30)).strftime("%Y-%m-%d")
    compacted = over_http("predictions", "compact", "churn", "--date", day, "--json", role="ml_engineer")
    assert compacted.exit_code == 0, compacted.output
    assert count_predictions(live.ws, "churn") == 300  # nothing lost

    added = over_http("triggers", "add", "t2", "--recipe", str(files["r.yaml"]), "--kind", "schedule",
                      "--cron", "0 3 * * *", "--json", role="ml_engineer")
    assert added.exit_code == 0, added.output
    local = here("triggers", "add", "t3", "--recipe", str(files["r.yaml"]), "--kind", "schedule",
                 "--cron", "0 3 * * *", "--json")
    differs = {"id", "name"}
    assert {k: v for k, v in json.loads(added.stdout).items() if k not in differs} == {
        k: v for k, v in json.loads(local.stdout).items() if k not in differs}
    assert "trigger t4 (schedule) added, next at" in over_http(
        "triggers", "add", "t4", "--recipe", str(files["r.yaml"]), "--kind", "schedule", "--cron", "0 3 * * *",
        role="ml_engineer").stdout
    assert over_http("triggers", "disable", "t2", role="ml_engineer").stdout == "trigger t2: disabled\n"
    assert get_trigger(live.ws, "t2").enabled is False
    assert over_http("triggers", "enable", "t2", role="ml_engineer").stdout == "trigger t2: enabled\n"
    assert [e.actor for e in audit_log(live.ws, action="trigger.disable")] == ["ml_engineer"]
    assert [e.actor for e in audit_log(live.ws, action="trigger.enable")] == ["ml_engineer"]


def test_rollout_analyze_over_http(live: Live, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from loopml.deploy import deploy, get_rollout

    make_model(live.ws)
    make_model(live.ws, seed=1)
    deploy(live.ws, "churn-api", "churn/1", override_reason="a test model without gates")
    deploy(live.ws, "churn-api", "churn/2", strategy="canary", steps=[0.5, 1.0], override_reason="the same")
    over_http, here = _cli_alone(live, monkeypatch, tmp_path), _cli_here(live, monkeypatch)
    remote = over_http("rollout", "analyze", "churn-api", "--json", role="ml_engineer")
    assert remote.exit_code == 0, remote.output
    local = here("rollout", "analyze", "churn-api", "--json")
    got, expected = json.loads(remote.stdout), json.loads(local.stdout)
    same = ("endpoint", "rollout_id", "action")  # the reason says how long the step has held: seconds apart
    assert {k: got[k] for k in same} == {k: expected[k] for k in same}
    assert [s["name"] for s in got["signals"]] == [s["name"] for s in expected["signals"]] and got["reason"]
    table = over_http("rollout", "analyze", "churn-api", role="ml_engineer")
    assert table.stdout.startswith(f"last analysis now: {json.loads(remote.stdout)['action']}"), table.output
    rollout = get_rollout(live.ws, "churn-api")
    analysed = [e for e in rollout.evidence if "signals" in e] if rollout else []
    assert sum(e.get("analyses", 1) for e in analysed) == 3  # each call analysed once (repeated holds fold)
    nothing = over_http("rollout", "analyze", "nowhere", role="ml_engineer")
    assert nothing.exit_code == 1 and nothing.stderr.count("\n") == 1 and "endpoint 'nowhere' does not exist" in nothing.stderr
    deploy(live.ws, "idle-api", "churn/1", override_reason="the same")
    idle = over_http("rollout", "analyze", "idle-api", role="ml_engineer")
    assert idle.exit_code == 1 and "'idle-api' has nothing to analyse: rollout" in idle.stderr, idle.output


#: Per role, the verbs it may not run; the CLI refuses them before any request that writes.
REFUSED: dict[str, list[tuple[str, ...]]] = {
    "viewer": [("data", "contract", "w", "--edit", "{c.yaml}"), ("monitor", "define", "{m.yaml}"),
               ("monitor", "run", "churn"), ("predictions", "feedback", "churn", "--file", "{labels.csv}"),
               ("triggers", "add", "t2", "--recipe", "{r.yaml}"), ("triggers", "disable", "nightly"),
               ("rollout", "analyze", "churn")],
    "data_scientist": [("predictions", "compact", "churn", "--date", "2026-01-01"), ("monitor", "run", "churn"),
                       ("monitor", "define", "{m.yaml}"), ("triggers", "enable", "nightly"),
                       ("predictions", "feedback", "churn", "--file", "{labels.csv}"),
                       ("rollout", "analyze", "churn")],
}


@pytest.mark.parametrize("role", list(REFUSED))
def test_roles_without_the_action_are_refused_and_nothing_is_written(
        live_sqlite: Live, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, role: str) -> None:
    from loopml.predictions import join_feedback

    files = _seed(live_sqlite.ws, tmp_path)
    cli = _cli_alone(live_sqlite, monkeypatch, tmp_path)
    before = len(audit_log(live_sqlite.ws, limit=10_000))
    for args in REFUSED[role]:
        out = cli(*[str(files[a[1:-1]]) if a.startswith("{") else a for a in args], role=role)
        assert out.exit_code == 1, (args, out.output)
        assert f"user {role!r}" in out.stderr and "may not" in out.stderr, (args, out.stderr)
    # and the server refuses the same calls on its own (a client that skips the CLI's check)
    with RemoteClient(live_sqlite.url, live_sqlite.tokens[role]) as client:
        calls = [lambda: client.define_monitor(files["m.yaml"]), lambda: client.run_monitor("churn"),
                 lambda: client.record_feedback("churn", files["labels.csv"]),
                 lambda: client.compact("churn", "2026-01-01"), lambda: client.set_trigger_enabled("nightly", False),
                 lambda: client.add_trigger("t2", "manual", recipe={}), lambda: client.analyze_rollout("churn")]
        if role == "viewer":
            calls.append(lambda: client.set_contract("w", {"columns": {"a": {"type": "float"}}}))
        for call in calls:
            with pytest.raises(E.PermissionDenied, match=f"user {role!r}"):
                call()
    assert len(audit_log(live_sqlite.ws, limit=10_000)) == before
    assert join_feedback(live_sqlite.ws, "churn")["label"].notna().sum() == 0


def test_bad_input_is_a_4xx_with_the_field_and_a_one_line_cli_error(
        live_sqlite: Live, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    files = _seed(live_sqlite.ws, tmp_path)
    c = live_sqlite.client("admin")
    recipe = {"name": "r", "data": {"dataset": "w", "source": "w.csv", "target": "label"},
              "train": {"estimator": "sklearn.linear_model.LogisticRegression"}, "register": {"model": "m"}}
    cases: list[tuple[str, str, dict[str, Any], int, str | None]] = [
        ("PUT", "/datasets/w/contract", {"json": {"contract": {"columns": {"a": {"type": "flot"}}}}}, 422,
         "columns.a.type"),
        ("PUT", "/datasets/w/contract", {"json": {"contract": {"columns": {}}}}, 422, "columns"),
        ("POST", "/datasets/w/versions/1/validate", {"json": {"contract": {"rows": 1}}}, 422, "rows"),
        ("GET", "/datasets/nope/contract", {}, 404, None),
        ("GET", "/datasets/w/versions/9/profile", {}, 404, None),
        ("POST", "/monitors", {"json": {"spec": {"endpoint": "churn", "checks": {"drift": {}}}}}, 422, "checks.drift"),
        ("POST", "/monitors", {"json": {"spec": {"name": "m"}}}, 422, "endpoint"),
        ("POST", "/triggers", {"json": {"name": "t", "kind": "schedule", "recipe": recipe}}, 422, "cron"),
        ("POST", "/triggers", {"json": {"name": "t", "kind": "hourly", "recipe": recipe}}, 422, "kind"),
        ("POST", "/triggers", {"json": {"name": "t", "recipe": {"name": "r"}}}, 422, "data"),
        ("POST", "/triggers/nightly/enable", {}, 200, None),
        ("POST", "/triggers/ghost/disable", {}, 404, None),
        ("POST", "/endpoints/churn/feedback", {"content": b"request_id,lab\nr1,1\n",
                                               "headers": {"Content-Type": "text/csv"}}, 422, "label"),
        ("POST", "/endpoints/churn/feedback", {"content": b"\xff\xfe", "headers": {"Content-Type": "text/csv"}},
         422, "body"),
        ("POST", "/endpoints/churn/predictions/compact", {"json": {"date": "2026-13-01"}}, 422, "date"),
        ("GET", "/endpoints/churn/predictions", {"params": {"since": "soon"}}, 422, "since"),
        ("GET", "/endpoints/churn/predictions", {"params": {"model_version": 0}}, 422, "model_version"),
        ("GET", "/endpoints/nowhere/predictions/count", {}, 404, None),
        ("GET", "/endpoints/churn/predictions/export", {"params": {"format": "xlsx"}}, 422, "format"),
        ("POST", "/endpoints/churn/rollout/analyze", {}, 404, None),
    ]
    for method, path, kwargs, status, field in cases:
        response = c.request(method, path, **kwargs)
        assert response.status_code == status, (method, path, response.text)
        if status >= 400:
            body = response.json()
            assert set(body) == {"error", "field", "rule", "type"} and body["error"], (path, body)
            assert field is None or body["field"] == field, (path, body)
    assert httpx.get(live_sqlite.url + API + "/endpoints/churn/predictions").status_code == 401

    over_http = _cli_alone(live_sqlite, monkeypatch, tmp_path)
    bad_contract = tmp_path / "bad.yaml"
    bad_contract.write_text("columns:\n  a: {type: flot}\n")
    bad_monitor = tmp_path / "bad-monitor.yaml"
    bad_monitor.write_text("endpoint: churn\nchecks: {drift: {}}\n")
    bad_labels = tmp_path / "bad.csv"
    bad_labels.write_text("request_id,lab\nr1,1\n")
    one_line = [
        (("predictions", "query", "churn", "--since", "soon"), 2, "since 'soon' is not a time"),
        (("predictions", "count", "churn", "--until", "later"), 2, "until 'later' is not a time"),
        (("predictions", "feedback", "churn", "--file", str(bad_labels)), 2, "needs a 'label' column"),
        (("predictions", "compact", "churn", "--date", "2026-13-01"), 2, "is not an ISO date"),
        (("data", "contract", "w", "--edit", str(bad_contract)), 2, "flot"),
        (("data", "validate", "w", "--contract", str(bad_contract)), 2, "flot"),
        (("data", "profile", "w@9"), 1, "has no version 9"),
        (("monitor", "define", str(bad_monitor)), 2, "unknown check 'drift'"),
        (("monitor", "report", "churn"), 1, "no monitor reports yet"),
        (("monitor", "report", "999"), 1, "monitor report 999 does not exist"),
        (("triggers", "add", "t", "--recipe", str(files["r.yaml"]), "--kind", "schedule"), 2, "needs 'cron'"),
        (("triggers", "disable", "ghost"), 1, "ghost"),
    ]
    before = len(audit_log(live_sqlite.ws, limit=10_000))
    for args, code, text in one_line:
        out = over_http(*args, role="admin")
        assert out.exit_code == code, (args, out.output)
        assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1 and text in out.stderr, (args, out.stderr)
    assert len(audit_log(live_sqlite.ws, limit=10_000)) == before


def _timeless(text: str) -> str:
    """``text`` without its times to the second (a card says when it was generated)."""
    import re

    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", "<time>", text)


def test_governance_verbs_over_http_print_what_the_store_prints(live: Live, monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    from .test_governance_routes import gov_seed

    s = gov_seed.seed(live.ws)
    over_http, here = _cli_alone(live, monkeypatch, tmp_path), _cli_here(live, monkeypatch)
    set_ = over_http("privacy", "retention", "set", "churn-api", "--days", "30", role="admin")
    assert set_.stdout == "churn-api: predictions and feedback kept 30 days\n", set_.output
    edited = over_http("models", "card", "churn/1", "--set", "owner=risk-team", "--json", role="data_scientist")
    assert json.loads(edited.stdout)["fields"]["owner"] == "risk-team", edited.output
    added = over_http("users", "add", "zed", "--role", "viewer", "--email", "z@example.com", role="admin")
    assert added.stdout == "user zed created; roles: default: viewer\n", added.output
    assert over_http("users", "grant", "zed", "ml_engineer", "--project", "*", role="admin").exit_code == 0
    assert over_http("users", "revoke", "zed", "viewer", role="admin").stdout == "zed: *: ml_engineer\n"
    reads: list[tuple[tuple[str, ...], str]] = [
        (("models", "card", "churn/1"), "viewer"), (("models", "card", "churn/1", "--format", "html"), "viewer"),
        (("trace", s.request_ids[0]), "viewer"), (("trace", s.request_ids[0], "--endpoint", "churn-api"), "viewer"),
        (("trace", "--dataset", s.dataset), "viewer"), (("privacy", "retention", "show"), "viewer"),
        (("users", "list"), "admin"), (("users", "show", "viewer"), "admin"), (("users", "show", "zed"), "admin"),
    ]
    for args, role in reads:
        table, local_table = over_http(*args, role=role), here(*args)
        assert table.exit_code == 0 and local_table.exit_code == 0, (args, table.output, local_table.output)
        assert _timeless(table.stdout) == _timeless(local_table.stdout), args
        data, local_data = over_http(*args, "--json", role=role), here(*args, "--json")
        assert json.loads(_timeless(data.stdout)) == json.loads(_timeless(local_data.stdout)), args
    for fmt in ("dot", "mermaid"):
        for args in (("trace", s.request_ids[0], "--format", fmt), ("trace", "--dataset", s.dataset, "--format", fmt)):
            assert over_http(*args, role="viewer").stdout == here(*args).stdout, args
    card = tmp_path / "card.md"
    assert over_http("models", "card", "churn/1", "-o", str(card), role="viewer").exit_code == 0
    assert "risk-team" in card.read_text()

    applied = over_http("privacy", "retention", "apply", "--json", role="admin")
    assert json.loads(applied.stdout)[0]["endpoint"] == "churn-api", applied.output
    erased = over_http("privacy", "erase", "--subject-key", "f_customer_id", "--value", "C1", "--json", role="admin")
    assert json.loads(erased.stdout)["prediction_rows"] >= 1, erased.output
    assert over_http("users", "disable", "zed", "--reason", "left", role="admin").stdout == "user zed disabled\n"
    for action in ("privacy.retention", "privacy.erase", "user.create", "role.grant", "role.revoke", "user.disable"):
        assert audit_log(live.ws, action=action)[0].actor == "admin", action
    refused = over_http("privacy", "erase", "--subject-key", "request_id", "--value", "r1", role="approver")
    assert refused.exit_code == 1 and "may not" in refused.stderr
    unknown = over_http("users", "grant", "zed", "superuser", role="admin")
    assert unknown.exit_code == 2 and unknown.stderr.count("\n") == 1 and "'role'" in unknown.stderr, unknown.output


def test_tokens_over_http_follow_the_servers_rules(live: Live, monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    over_http, here = _cli_alone(live, monkeypatch, tmp_path), _cli_here(live, monkeypatch)
    made = over_http("tokens", "create", "viewer", "--name", "laptop", "--expires-in-days", "7", "--json", role="admin")
    assert made.exit_code == 0, made.output
    issued = json.loads(made.stdout)
    assert issued["user"] == "viewer" and issued["token"].startswith(f"lml_{issued['id']}_")
    assert live.client(token=issued["token"]).get("/whoami").json()["name"] == "viewer"  # the new token works
    assert audit_log(live.ws, action="token.create")[0].actor == "admin"

    for args, role in [(("tokens", "list"), "admin"), (("tokens", "list", "--user", "viewer"), "viewer"),
                       (("tokens", "list", "--active"), "admin")]:
        table, local_table = over_http(*args, role=role), here(*args)
        assert table.exit_code == 0 and table.stdout == local_table.stdout, (args, table.output)
        data, local_data = over_http(*args, "--json", role=role), here(*args, "--json")
        assert json.loads(data.stdout) == json.loads(local_data.stdout), args
    assert issued["id"] in over_http("tokens", "list", "--user", "viewer", role="viewer").stdout

    before = len(audit_log(live.ws, limit=10_000))
    for args in (("tokens", "create", "viewer"), ("tokens", "list"), ("tokens", "list", "--user", "admin")):
        refused = over_http(*args, role="viewer")
        assert refused.exit_code == 1 and "may not" in refused.stderr, (args, refused.output)
    assert len(audit_log(live.ws, limit=10_000)) == before  # nothing was written

    theirs = json.loads(over_http("tokens", "create", "ml_engineer", "--json", role="admin").stdout)
    not_mine = over_http("tokens", "revoke", theirs["id"], role="viewer")  # the server knows whose it is
    assert not_mine.exit_code == 1 and not_mine.stderr.count("\n") == 1, not_mine.output
    assert live.client(token=theirs["token"]).get("/whoami").status_code == 200
    revoked = over_http("tokens", "revoke", issued["id"], "--reason", "lost laptop", "--json", role="viewer")
    assert revoked.exit_code == 0 and json.loads(revoked.stdout)["status"] == "revoked", revoked.output
    assert live.client(token=issued["token"]).get("/whoami").status_code == 401
    event = audit_log(live.ws, action="token.revoke")[0]
    assert event.actor == "viewer" and event.reason == "lost laptop"


def test_models_export_over_http_converts_on_the_server_and_checks_the_download(
        live: Live, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import hashlib

    pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxruntime")
    from .conftest import seed_model

    seed_model(live.ws, 1)
    over_http, here = _cli_alone(live, monkeypatch, tmp_path), _cli_here(live, monkeypatch)
    target = tmp_path / "edge" / "churn.onnx"
    out = over_http("models", "export", "churn/1", "-o", str(target), "--json", role="viewer")
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["path"] == str(target.resolve()) and result["parity"]["passed"] is True
    assert hashlib.sha256(target.read_bytes()).hexdigest() == result["digest"] and result["size"] == target.stat().st_size
    event = audit_log(live.ws, action="model.export")[0]
    assert event.actor == "viewer" and event.after["digest"] == result["digest"]  # recorded on the server
    local = json.loads(here("models", "export", "churn/1", "-o", str(tmp_path / "l.onnx"), "--json").stdout)
    assert {k: local[k] for k in ("model_name", "model_version", "format", "inputs")} == {
        k: result[k] for k in ("model_name", "model_version", "format", "inputs")}
    assert local["parity"]["source"] == result["parity"]["source"] == "synthesized"

    sample = tmp_path / "rows.csv"
    sample.write_text("a,b\n0.5,-1.0\n-0.3,2.0\n1.2,0.1\n")
    with_rows = json.loads(over_http("models", "export", "churn/1", "-o", str(target), "--sample", str(sample),
                                     "--json", role="viewer").stdout)
    assert with_rows["parity"]["n_rows"] == 3 and with_rows["parity"]["source"] == "sample"

    # only exports of that version can be downloaded: never the model's pickle
    c = live.client("viewer")
    version = c.get("/models/resolve", params={"ref": "churn/1"}).json()
    assert c.get(f"/models/churn/versions/1/exports/{version['artifact_digest']}").status_code == 404
    assert c.get(f"/models/churn/versions/1/exports/{with_rows['digest']}").content == target.read_bytes()
    bad = over_http("models", "export", "churn/1", "-o", str(target), "--tolerance", "-1", role="viewer")
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1 and "tolerance" in bad.stderr, bad.output
    unknown = over_http("models", "export", "nope/1", role="viewer")
    assert unknown.exit_code == 1 and unknown.stderr.count("\n") == 1, unknown.output
