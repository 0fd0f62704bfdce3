"""``RemoteClient``: the service verbs over HTTP, errors mapped back to the loopml tree."""

from __future__ import annotations

import json

import pytest

from loopml.governance.identity import NotAuthenticated
from loopml.kernel.config import reset_settings
from loopml.kernel.exceptions import (
    ConfigError,
    NotFoundError,
    PermissionDenied,
    ValidationError,
)
from loopml.server.client import RemoteClient

from .conftest import CSV, Live, seed_model, seed_runs, seed_trigger


def test_client_from_settings_runs_models_aliases_audit(live: Live, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ids = seed_runs(live.ws, 3)
    seed_model(live.ws, 2)
    seed_trigger(live.ws)
    monkeypatch.setenv("LOOPML_SERVER_URL", live.url)
    monkeypatch.setenv("LOOPML_TOKEN", live.tokens["ml_engineer"])
    reset_settings()
    with RemoteClient.from_settings() as client:
        assert "lml_" not in repr(client)
        assert client.whoami()["name"] == "ml_engineer"
        assert [r["name"] for r in client.list_runs(order_by=["metrics.acc DESC"], limit=2)] == ["run2", "run1"]
        assert len(client.list_runs(limit=None)) == 3
        assert client.get_run(ids[0])["id"] == ids[0]
        assert client.compare_runs(ids[:2])["params"]["model"]["differs"] is True
        assert [p[0] for p in client.metric_history(ids[0], "acc")] == [0, 1, 2]
        assert client.get_model("churn")["n_versions"] == 2
        assert client.set_alias("churn", "challenger", 2, reason="recall")["version"] == 2
        assert client.resolve("churn@challenger")["version"] == 2
        assert client.list_aliases("churn")[0]["alias"] == "challenger"
        assert client.deploy("churn-api", "churn/1")["status"] == "promoted"
        assert client.fire_trigger("nightly", reason="try")["status"] == "pending"
        assert client.lineage("model_version:churn/1", format="mermaid").startswith("flowchart")
        events = client.audit_log(action="model.alias")
        assert events[0]["actor"] == "ml_engineer"
        assert client.verify_audit() == []
        assert client.export_audit(tmp_path / "audit.jsonl") >= 5


def test_client_raises_the_loopml_errors(live: Live, tmp_path) -> None:  # type: ignore[no-untyped-def]
    seed_model(live.ws, 1)
    viewer = RemoteClient(live.url, live.tokens["viewer"])
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        viewer.get_model("nope")
    with pytest.raises(PermissionDenied, match="needs the role ml_engineer"):
        viewer.set_alias("churn", "challenger", 1)
    with pytest.raises(ValidationError) as info:
        viewer.lineage("nocolon")
    assert info.value.field == "object"
    with pytest.raises(NotAuthenticated, match="not valid"):
        RemoteClient(live.url, "lml_0123456789abcdef_" + "z" * 43).list_models()
    scientist = RemoteClient(live.url, live.tokens["data_scientist"])
    path = tmp_path / "w.csv"
    path.write_bytes(CSV)
    assert scientist.ingest(path, "weather")["ref"] == "weather@1"
    assert scientist.get_dataset_version("weather@1")["n_rows"] == 4
    for client in (viewer, scientist):
        client.close()


def test_client_needs_a_server_url() -> None:
    with pytest.raises(ConfigError, match="LOOPML_SERVER_URL"):
        RemoteClient.from_settings()
    with pytest.raises(ConfigError, match="expected http"):
        RemoteClient("ftp://x")


def test_client_cards_traces_privacy_users_and_monitors(live: Live) -> None:
    from loopml.governance.model_card import model_card
    from loopml.governance.trace import trace_request
    from loopml.monitor import get_monitor

    from .test_governance_routes import gov_seed

    s = gov_seed.seed(live.ws)
    admin, viewer = RemoteClient(live.url, live.tokens["admin"]), RemoteClient(live.url, live.tokens["viewer"])
    with admin, viewer:
        # cards: the same data as the local function; Markdown/HTML text; an alias resolves; edits are audited
        assert viewer.model_card("churn/1") == json.loads(json.dumps(model_card(live.ws, "churn/1").to_dict()))
        edited = admin.set_card_fields("churn/1", owner="risk-team", reason="handover")
        assert edited["fields"]["owner"] == "risk-team"
        assert "risk-team" in viewer.model_card("churn/1", format="md")
        assert viewer.model_card("churn/1", format="html").lower().startswith("<!doctype html>")
        with pytest.raises(PermissionDenied):
            viewer.set_card_fields("churn/1", owner="me")
        # traces
        assert viewer.trace_request(s.request_ids[0]) == json.loads(json.dumps(
            trace_request(live.ws, s.request_ids[0]).to_dict()))
        assert viewer.trace_request(s.request_ids[0], format="dot").startswith("digraph")
        assert viewer.trace_dataset(s.dataset)["summary"]["endpoints"] == ["churn-api"]
        assert viewer.trace_dataset(s.dataset, format="mermaid").startswith("flowchart")
        # privacy (admin only)
        assert admin.set_retention("churn-api", 30)["days"] == 30
        assert [r["endpoint"] for r in viewer.list_retention()] == ["churn-api"]
        assert admin.apply_retention()[0]["prediction_rows"] == 0
        assert admin.erase_subject("f_customer_id", "C1", endpoint="churn-api")["prediction_rows"] >= 1
        with pytest.raises(PermissionDenied, match="privacy.admin"):
            viewer.erase_subject("f_customer_id", "C2")
        # users and tokens
        created = admin.create_user("zed", email="z@example.com", roles={"default": "viewer"})
        assert created["roles"] == {"default": ["viewer"]}
        assert sorted(admin.grant("zed", "ml_engineer")["roles"]["default"]) == ["ml_engineer", "viewer"]
        assert admin.revoke_role("zed", "viewer")["roles"]["default"] == ["ml_engineer"]
        issued = admin.create_token("zed", name="ci", expires_in_days=7)
        assert issued["token"].startswith("lml_") and issued["user"] == "zed"
        with RemoteClient(live.url, issued["token"]) as zed:
            assert zed.whoami()["name"] == "zed"
            assert [t["id"] for t in zed.list_tokens("zed")] == [issued["id"]]
        assert admin.revoke_token(issued["id"])["status"] == "revoked"
        assert admin.disable_user("zed", reason="left")["active"] is False
        assert "zed" in [u["name"] for u in admin.list_users()] and admin.get_user("zed")["active"] is False
        with pytest.raises(PermissionDenied, match="user.admin"):
            viewer.list_users()
        # monitors: define from a mapping, run, reports, HTML
        defined = admin.define_monitor({"name": "api-health", "endpoint": "churn-api", "checks": {"health": {}}})
        assert defined == json.loads(json.dumps(get_monitor(live.ws, "api-health").to_dict()))
        assert [m["name"] for m in viewer.list_monitors()] == ["api-health"]
        assert viewer.get_monitor("churn-api")["name"] == "api-health"  # by endpoint, as locally
        report = admin.run_monitor("api-health")
        assert report["report"]["checks"]["health"]["status"] in ("ok", "fail")
        assert [r["id"] for r in viewer.list_reports("churn-api")] == [report["id"]]
        assert viewer.get_report(report["id"])["report"] == report["report"]
        assert viewer.report_html(report["id"]).lower().startswith("<!doctype html>")
        with pytest.raises(ValidationError) as info:
            admin.define_monitor({"endpoint": "churn-api", "window": {"last": "forever"}})
        assert info.value.field is not None
