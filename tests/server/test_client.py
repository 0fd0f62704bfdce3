"""``RemoteClient``: the service verbs over HTTP, errors mapped back to the loopml tree."""

from __future__ import annotations

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
