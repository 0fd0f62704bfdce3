"""POST .../feedback: true labels by request id over HTTP, stored beside the real prediction log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from loopml.predictions import PredictionLog, join_feedback
from loopml.serve import create_app
from tests.serve.conftest import ROWS_OK


def test_feedback_single_and_bulk_joins_the_logged_predictions(model: Any, serve: Any, tmp_path: Path) -> None:
    root = tmp_path / "log"
    srv = serve(create_app(model, sink=PredictionLog(root, flush_interval_s=0.05, roll_interval_s=0.1)))
    with httpx.Client(base_url=srv.url, timeout=10) as client:
        assert client.post("/invocations", json={"inputs": ROWS_OK[:1]}, headers={"X-Request-ID": "r1"}).is_success
        assert client.post("/invocations", json={"inputs": ROWS_OK}, headers={"X-Request-ID": "r2"}).is_success
        one = client.post("/v2/models/churn/feedback", json={"request_id": "r1", "label": 1})
        assert one.status_code == 200 and one.json() == {"endpoint": "churn", "rows": 1}
        bulk = client.post("/feedback", json={"feedback": [{"request_id": "r2", "label": 0},
                                                           {"request_id": "r2", "label": 1, "row": 1}]})
        assert bulk.status_code == 200 and bulk.json()["rows"] == 2
        listed = client.post("/feedback", json=[{"request_id": "r1", "label": 0, "ts": "2999-01-01T00:00:00Z"}])
        assert listed.status_code == 200  # a later correction: the latest label (by its time) wins
        assert 'loopml_serve_feedback_rows_total{endpoint="churn"} 4.0' in client.get("/metrics").text
    srv.__exit__()  # the app's shutdown closes the log: every prediction is in Parquet now
    joined = join_feedback(root, "churn").set_index(["request_id", "row"])["label"]
    assert joined.to_dict() == {("r1", 0): 0, ("r2", 0): 0, ("r2", 1): 1}


@pytest.mark.parametrize(("body", "status", "field", "rule"), [
    ({"request_id": "r1"}, 400, "feedback[0].label", "missing"),
    ([{"label": 1}], 400, "feedback[0].request_id", "missing"),
    ({"feedback": [{"request_id": "r1", "label": 1}, "x"]}, 400, "feedback[1]", "format"),
    ({"request_id": 5, "label": 1}, 400, "feedback[0].request_id", "type"),
    ({"request_id": "r1", "label": [1, 0]}, 400, "feedback[0].label", "type"),
    ({"request_id": "r1", "label": 1, "row": -1}, 400, "feedback[0].row", "type"),
    ({"request_id": "r1", "label": 1, "weight": 2}, 400, "feedback[0].weight", "unknown"),
    ({"request_id": "r1", "label": 1, "ts": "yesterday-ish"}, 400, "ts", "time"),
    ([], 400, "feedback", "format"),
    ("r1", 400, "feedback", "format"),
])
def test_bad_feedback_is_4xx_naming_field_and_rule(model: Any, serve: Any, tmp_path: Path, body: Any, status: int,
                                                   field: str, rule: str) -> None:
    srv = serve(create_app(model, sink=PredictionLog(tmp_path / "log")))
    r = httpx.post(srv.url + "/v2/models/churn/feedback", json=body, timeout=10)
    assert r.status_code == status, r.text
    assert (r.json()["field"], r.json()["rule"]) == (field, rule) and r.json()["error"]


def test_feedback_without_a_log_or_for_an_unknown_model(model: Any, serve: Any, tmp_path: Path) -> None:
    srv = serve(create_app(model, sink=PredictionLog(tmp_path / "log")))
    r = httpx.post(srv.url + "/v2/models/nope/feedback", json={"request_id": "r1", "label": 1})
    assert r.status_code == 404 and r.json()["rule"] == "not_found"
    r = httpx.post(srv.url + "/feedback", content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["rule"] == "json"
    assert "/v2/models/{model_name}/feedback" in httpx.get(srv.url + "/openapi.json").json()["paths"]
    bare = serve(create_app(model))  # --no-log: nowhere to keep labels
    r = httpx.post(bare.url + "/feedback", json={"request_id": "r1", "label": 1})
    assert r.status_code == 501 and r.json()["rule"] == "unavailable"
