"""Each noun of the control plane over a real server: list/show, pagination, filters, writes."""

from __future__ import annotations

import httpx

from .conftest import CSV, Live, seed_alert, seed_model, seed_runs, seed_trigger


def test_runs_list_show_filter_order_and_paginate(live: Live) -> None:
    ids = seed_runs(live.ws, 3)
    c = live.client("viewer")
    page = c.get("/runs", params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["next_offset"] == 2
    rest = c.get("/runs", params={"limit": 2, "offset": page["next_offset"]}).json()
    assert len(rest["items"]) == 1 and rest["next_offset"] is None
    assert {r["id"] for r in page["items"] + rest["items"]} == set(ids)

    best = c.get("/runs", params={"filter": "metrics.acc > 0.15", "order_by": "metrics.acc DESC"}).json()["items"]
    assert [r["name"] for r in best] == ["run2", "run1"]
    assert c.get(f"/runs/{ids[0]}").json()["params"] == {"model": "hgb"}
    history = c.get(f"/runs/{ids[0]}/metrics/acc").json()["points"]
    assert [p["step"] for p in history] == [0, 1, 2]
    compared = c.get("/runs/compare", params={"ids": ids[:2]}).json()
    assert compared["params"]["model"] == {"values": ["hgb", "lr"], "differs": True}


def test_models_versions_aliases_and_history(live: Live) -> None:
    seed_model(live.ws, 2)
    c = live.client("ml_engineer")
    assert c.get("/models").json()["items"][0]["name"] == "churn"
    assert c.get("/models/churn").json()["n_versions"] == 2
    assert [v["version"] for v in c.get("/models/churn/versions").json()["items"]] == [1, 2]
    assert c.get("/models/churn/versions/2").json()["ref"] == "churn/2"

    moved = c.put("/models/churn/aliases/challenger", json={"version": 2, "reason": "better recall"})
    assert moved.status_code == 200 and moved.json()["ref"] == "churn@challenger"
    assert c.get("/models/resolve", params={"ref": "churn@challenger"}).json()["version"] == 2
    assert [a["alias"] for a in c.get("/models/churn/aliases").json()] == ["challenger"]
    history = c.get("/models/churn/aliases/history").json()["items"]
    assert history[-1]["reason"] == "better recall" and history[-1]["actor"] == "ml_engineer"
    assert c.delete("/models/churn/aliases/challenger", params={"reason": "done"}).status_code == 200
    assert c.get("/models/churn/aliases").json() == []


def test_deploy_and_drive_a_rollout(live: Live) -> None:
    seed_model(live.ws, 2)
    c = live.client("ml_engineer")
    first = c.post("/endpoints/churn-api/deploy", json={"model_ref": "churn/1"})
    assert first.status_code == 201 and first.json()["status"] == "promoted"
    canary = c.post("/endpoints/churn-api/deploy",
                    json={"model_ref": "churn/2", "strategy": "canary",
                          "options": {"steps": [0.2, 1.0], "early_alpha": 0.0005}}).json()
    assert canary["status"] == "running" and canary["candidate_weight"] == 0.2
    assert canary["config"]["early_alpha"] == 0.0005
    assert c.get("/endpoints/churn-api/rollout").json()["rollout"]["id"] == canary["id"]
    assert c.post("/endpoints/churn-api/rollout/pause").json()["status"] == "paused"
    assert c.post("/endpoints/churn-api/rollout/resume", json={"reason": "checked"}).json()["status"] == "running"
    assert c.post("/endpoints/churn-api/rollout/promote").json()["status"] == "promoted"
    assert c.get("/endpoints/churn-api").json()["serving_versions"] == [2]
    assert len(c.get("/endpoints/churn-api/traffic").json()["items"]) >= 3
    assert [r["status"] for r in c.get("/rollouts", params={"status": "promoted"}).json()["items"]] == [
        "promoted", "promoted"]
    assert c.get("/endpoints").json()["total"] == 1


def test_which_versions_served_when_and_which_answered_a_request(live: Live) -> None:
    from datetime import UTC, datetime

    from loopml.deploy import shadow_endpoint_name
    from loopml.predictions import open_prediction_log

    seed_model(live.ws, 2)
    c = live.client("ml_engineer")
    c.post("/endpoints/churn-api/deploy", json={"model_ref": "churn/1"})
    between = datetime.now(UTC).isoformat()
    c.post("/endpoints/churn-api/deploy", json={"model_ref": "churn/2", "strategy": "canary",
                                                "options": {"steps": [0.2, 1.0]}})
    viewer = live.client("viewer")
    served = viewer.get("/endpoints/churn-api/served", params={"until": between}).json()
    assert served["versions_served"] == [1] and [ch["revision"] for ch in served["changes"]] == [1]
    now = viewer.get("/endpoints/churn-api/served", params={"since": "1h"}).json()
    assert now["versions_served"] == [1, 2] and now["since"].endswith("+00:00")
    bad = viewer.get("/endpoints/churn-api/served", params={"since": "yesterday"})
    assert bad.status_code == 422 and bad.json()["field"] == "since"
    assert viewer.get("/endpoints/nope/served").status_code == 404

    ts = datetime.now(UTC)
    with open_prediction_log(live.ws) as log:
        log.submit([{"request_id": "r-1", "ts": ts, "endpoint": "churn-api", "model_name": "churn",
                     "model_version": 2, "inputs": {"a": [1.0, 2.0]}, "outputs": {"predict": [1, 0]},
                     "latency_ms": 2.0, "status": 200, "error": None},
                    {"request_id": "r-1", "ts": ts, "endpoint": shadow_endpoint_name("churn-api"),
                     "model_name": "churn", "model_version": 1, "inputs": {"a": [1.0]}, "outputs": {"predict": [0]},
                     "latency_ms": 3.0, "status": 200, "error": None}])
    answers = viewer.get("/requests/r-1/answers").json()
    assert [(a["model_version"], a["row"], a["shadow"]) for a in answers["items"]] == [(2, 0, False), (2, 1, False),
                                                                                       (1, 0, True)]
    assert answers["items"][0]["prediction"] == 1 and answers["items"][0]["endpoint"] == "churn-api"
    first = viewer.get("/requests/r-1/answers", params={"limit": 1, "endpoint": "churn-api"}).json()
    assert len(first["items"]) == 1 and first["next_offset"] == 1 and first["total"] == 3
    missing = viewer.get("/requests/r-9/answers")
    assert missing.status_code == 404 and "not in the prediction log" in missing.json()["error"]
    assert live.client(None).get("/requests/r-1/answers").status_code == 401


def test_rollback_needs_a_reason(live: Live) -> None:
    seed_model(live.ws, 1)
    c = live.client("ml_engineer")
    c.post("/endpoints/e/deploy", json={"model_ref": "churn/1"})
    missing = c.post("/endpoints/e/rollout/rollback", json={})
    assert missing.status_code == 422 and missing.json()["field"] == "reason"


def test_datasets_upload_list_versions_show(live: Live) -> None:
    c = live.client("data_scientist")
    made = c.post("/datasets/weather/versions", content=CSV, headers={"Content-Type": "text/csv"},
                  params={"description": "daily"})
    assert made.status_code == 201 and made.json()["ref"] == "weather@1"
    assert made.json()["schema"][0]["name"] == "a"
    again = c.post("/datasets/weather/versions", content=CSV + b"5.0,x,0\n", params={"format": "csv"},
                   headers={"Content-Type": "application/octet-stream"})
    assert again.json()["version"] == 2
    assert c.get("/datasets").json()["items"][0]["n_versions"] == 2
    versions = c.get("/datasets/weather/versions").json()
    assert [v["version"] for v in versions["items"]] == [1, 2] and "profile" not in versions["items"][0]
    assert made.json()["validation"]["ok"] is True and "profile" not in made.json()
    shown = c.get("/datasets/weather/versions/latest").json()
    assert shown["version"] == 2 and shown["profile"]["n_rows"] == 5


def test_bad_upload_is_a_422_not_a_500(live_sqlite: Live) -> None:
    c = live_sqlite.client("data_scientist")
    bad = c.post("/datasets/weather/versions", content=b"\x00\x01 not parquet", params={"format": "parquet"},
                 headers={"Content-Type": "application/octet-stream"})
    assert 400 <= bad.status_code < 500, bad.text
    unknown = c.post("/datasets/weather/versions", content=CSV, headers={"Content-Type": "application/json"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "format"


def test_triggers_fire_and_run_requests(live: Live) -> None:
    seed_trigger(live.ws)
    c = live.client("ml_engineer")
    assert c.get("/triggers").json()["items"][0]["name"] == "nightly"
    assert c.get("/triggers/nightly").json()["kind"] == "manual"
    fired = c.post("/triggers/nightly/fire", json={"reason": "new labels"})
    assert fired.status_code == 201 and fired.json()["context"]["by"] == "ml_engineer"
    assert c.get("/run-requests", params={"status": "pending"}).json()["items"][0]["id"] == fired.json()["id"]


def test_alerts_list_filter_and_ack(live: Live) -> None:
    alert_id = seed_alert(live.ws)
    c = live.client("ml_engineer")
    assert [a["id"] for a in c.get("/alerts", params={"status": "open"}).json()["items"]] == [alert_id]
    acked = c.post(f"/alerts/{alert_id}/ack", json={"note": "on it"}).json()
    assert acked["status"] == "acknowledged" and acked["acked_by"] == "ml_engineer"
    assert c.get("/alerts", params={"status": "open"}).json()["items"] == []
    assert c.get(f"/alerts/{alert_id}").json()["status"] == "acknowledged"


def test_monitors_and_reports_lists(live: Live) -> None:
    c = live.client("viewer")
    assert c.get("/monitors").json()["items"] == []
    assert c.get("/reports").json()["items"] == []
    missing = c.get("/reports/7")
    assert missing.status_code == 404 and "7" in missing.json()["error"]
    assert c.get("/monitors/none").status_code == 404


def test_lineage_as_json_dot_and_mermaid(live: Live) -> None:
    seed_model(live.ws, 1)
    c = live.client("viewer")
    graph = c.get("/lineage", params={"object": "model:churn/1"}).json()
    assert graph["root"] == "model_version:churn/1"
    dot = c.get("/lineage", params={"object": "model_version:churn/1", "format": "dot"})
    assert dot.headers["content-type"].startswith("text/vnd.graphviz") and dot.text.startswith("digraph")
    assert c.get("/lineage", params={"object": "model_version:churn/1", "format": "mermaid"}).text.startswith(
        "flowchart")
    bad = c.get("/lineage", params={"object": "nocolon"})
    assert bad.status_code == 422 and bad.json()["field"] == "object"


def test_audit_log_filters_verify_and_export(live: Live) -> None:
    seed_model(live.ws, 2)
    c = live.client("ml_engineer")
    c.put("/models/churn/aliases/challenger", json={"version": 1})
    events = c.get("/audit", params={"action": "model.alias"}).json()["items"]
    assert [e["actor"] for e in events] == ["ml_engineer"] and events[0]["object"] == "model_alias:churn@challenger"
    page = c.get("/audit", params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["next_offset"] == 2
    assert c.get("/audit", params={"actor": "nobody"}).json()["items"] == []
    assert c.get("/audit/verify").json() == {"ok": True, "problems": []}
    export = c.get("/audit/export")
    assert export.headers["content-type"].startswith("application/x-ndjson")
    assert len(export.text.splitlines()) >= 10


def test_pagination_caps_the_limit_and_rejects_negatives(live_sqlite: Live) -> None:
    c = live_sqlite.client("viewer")
    too_many = c.get("/runs", params={"limit": 501})
    assert too_many.status_code == 422
    assert too_many.json() == {"error": "query 'limit': Input should be less than or equal to 500",
                               "field": "limit", "rule": "less_than_equal", "type": "ValidationError"}
    assert c.get("/models", params={"offset": -1}).json()["field"] == "offset"


def test_errors_are_json_with_the_field_and_rule(live: Live) -> None:
    seed_model(live.ws, 1)
    c = live.client("admin")
    missing = c.get("/models/nope")
    assert missing.status_code == 404 and missing.json()["type"] == "NotFoundError"
    assert "nope" in missing.json()["error"]
    bad = c.put("/models/churn/aliases/x", json={"version": "one"})
    assert bad.status_code == 422 and bad.json()["field"] == "version" and bad.json()["rule"] == "int_parsing"
    unknown_version = c.put("/models/churn/aliases/x", json={"version": 9})
    assert unknown_version.status_code == 404
    extra = c.put("/models/churn/aliases/x", json={"version": 1, "surprise": True})
    assert extra.status_code == 422 and extra.json()["field"] == "surprise"
    taken = c.post("/users", json={"name": "viewer"})
    assert taken.status_code == 409 and taken.json()["type"] == "AlreadyExistsError"
    not_json = c.post("/users", content=b"{", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 422
    assert c.get("/no/such/route").status_code == 404
    assert c.delete("/runs").status_code == 405


def test_request_body_size_limit(live_sqlite: Live) -> None:
    c = live_sqlite.client("admin")
    big = c.post("/users", content=b" " * (2 * 1024 * 1024), headers={"Content-Type": "application/json"})
    assert big.status_code == 413 and "exceeds the limit" in big.json()["error"]

    def chunks():  # no Content-Length: counted as it streams
        for _ in range(40):
            yield b" " * 65536

    streamed = c.post("/users", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413


def test_upload_limit_is_separate_and_enforced(sqlite_workspace, start_server) -> None:  # type: ignore[no-untyped-def]
    from loopml.server import create_app

    server = start_server(create_app(sqlite_workspace, auth=False, max_upload_bytes=64))
    c = httpx.Client(base_url=server.url + "/api/v1")
    too_big = c.post("/datasets/w/versions", content=CSV * 4, headers={"Content-Type": "text/csv"})
    assert too_big.status_code == 413
    assert c.post("/datasets/w/versions", content=CSV, headers={"Content-Type": "text/csv"}).status_code == 201
    c.close()


def test_a_file_to_score_and_export_samples_are_uploads(sqlite_workspace, start_server) -> None:  # type: ignore[no-untyped-def]
    from loopml.server import create_app
    from tests.monitor.test_monitor_run import make_model

    make_model(sqlite_workspace)
    server = start_server(create_app(sqlite_workspace, auth=False, max_body_bytes=256, max_upload_bytes=64_000))
    c = httpx.Client(base_url=server.url + "/api/v1", headers={"Content-Type": "text/csv"})
    rows = b"tenure,charges,plan\n" + b"10.5,3.0,basic\n" * 200  # 3 KB: over the JSON limit, under the upload one
    scored = c.post("/prediction-batches", params={"model": "churn/1"}, content=rows)
    assert scored.status_code == 201 and scored.json()["rows_scored"] == 200, scored.text
    assert c.post("/prediction-batches", params={"model": "churn/1"}, content=rows * 30).status_code == 413
    assert c.post("/models/churn/versions/1/export", content=rows).status_code != 413
    assert c.post("/users", content=b'{"name": "' + b"x" * 300 + b'"}').status_code == 413  # JSON keeps its limit
    c.close()


def test_openapi_document_describes_routes_and_errors(live_sqlite: Live) -> None:
    spec = httpx.get(live_sqlite.url + "/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    runs = spec["paths"]["/api/v1/runs"]["get"]
    assert {p["name"] for p in runs["parameters"]} >= {"limit", "offset", "filter", "order_by", "experiment"}
    assert runs["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert httpx.get(live_sqlite.url + "/docs").status_code == 404  # no CDN-backed docs UI


def test_health_needs_no_token(live_sqlite: Live) -> None:
    assert httpx.get(live_sqlite.url + "/health").json() == {"status": "ok", "auth": True, "project": "default"}
