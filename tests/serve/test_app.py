"""The online server over real HTTP: OIP v2, MLflow /invocations, errors, metrics."""

from __future__ import annotations

import math
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from loopml.serve import PredictionSink, create_app
from tests.serve.conftest import FEATURES, RecordingSink, training_frame

ROWS = [[34.0, 51.5, 3, "pro"], [71.0, None, 12, "basic"]]


def expected(model: Any) -> list[list[float]]:
    frame, _ = training_frame()
    import pandas as pd

    x = pd.DataFrame(ROWS, columns=FEATURES)
    x["income"] = x["income"].astype(float)
    x["visits"] = x["visits"].astype(float)
    x["plan"] = pd.Categorical(x["plan"], categories=["basic", "pro", "team"])
    return model.estimator.predict_proba(x).tolist()


@pytest.fixture
def server(model: Any, serve: Any) -> Any:
    sink = RecordingSink()
    srv = serve(create_app(model, sink=sink, settings={"max_rows": 50, "max_body_bytes": 20_000}))
    srv.sink = sink
    return srv


def post(server: Any, path: str, body: Any, **kw: Any) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=10, **kw)


def assert_proba(got: list[list[float]], want: list[list[float]]) -> None:
    for g, w in zip(got, want, strict=True):
        assert all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(g, w, strict=True))


def test_oip_health_and_metadata_routes(server: Any) -> None:
    url = server.url
    assert httpx.get(url + "/v2/health/live").json() == {"live": True}
    assert httpx.get(url + "/v2/health/ready").json() == {"ready": True}
    assert httpx.get(url + "/v2/models/churn/ready").json() == {"name": "churn", "ready": True}
    assert httpx.get(url + "/v2/models/churn/versions/1/ready").status_code == 200
    meta = httpx.get(url + "/v2").json()
    assert meta["name"] == "loopml" and "version" in meta and "extensions" in meta
    model_meta = httpx.get(url + "/v2/models/churn").json()
    assert model_meta["name"] == "churn" and model_meta["versions"] == ["1"]
    assert [i["name"] for i in model_meta["inputs"]] == FEATURES
    assert [o["name"] for o in model_meta["outputs"]] == ["predict", "predict_proba"]
    assert httpx.get(url + "/v2/models/churn/versions/1").status_code == 200
    missing = httpx.get(url + "/v2/models/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]
    assert httpx.get(url + "/v2/models/churn/versions/7/ready").status_code == 404
    assert httpx.get(url + "/ping").status_code == 200


def test_oip_infer_per_feature_tensors(server: Any, model: Any) -> None:
    body = {"id": "req-1", "parameters": {"content_type": "pd"}, "inputs": [
        {"name": "age", "shape": [2], "datatype": "FP64", "data": [34.0, 71.0]},
        {"name": "income", "shape": [2], "datatype": "FP64", "data": [51.5, None]},
        {"name": "visits", "shape": [2, 1], "datatype": "INT64", "data": [[3], [12]]},
        {"name": "plan", "shape": [2], "datatype": "BYTES", "data": ["pro", "basic"]},
    ]}
    r = post(server, "/v2/models/churn/infer", body, headers={"X-Request-ID": "abc-123"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model_name"] == "churn" and out["model_version"] == "1" and out["id"] == "req-1"
    assert r.headers["x-request-id"] == "abc-123" and out["parameters"]["request_id"] == "abc-123"
    by_name = {o["name"]: o for o in out["outputs"]}
    proba = by_name["predict_proba"]
    assert proba["shape"] == [2, 2] and proba["datatype"] == "FP64"
    assert_proba([proba["data"][0:2], proba["data"][2:4]], expected(model))
    assert by_name["predict"]["shape"] == [2] and by_name["predict"]["datatype"] == "INT64"
    assert by_name["predict"]["data"] == [int(p[1] > p[0]) for p in expected(model)]
    only = post(server, "/v2/models/churn/versions/1/infer", {**body, "outputs": [{"name": "predict"}]}).json()
    assert [o["name"] for o in only["outputs"]] == ["predict"]


def test_oip_infer_single_2d_tensor(model: Any, serve: Any) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame, y = training_frame()
    numeric = frame[["age", "visits"]].to_numpy()
    est = HistGradientBoostingClassifier(max_iter=5).fit(numeric, y)
    m = type(model)("num", 3, est, None, "classification")
    srv = serve(create_app(m))
    body = {"inputs": [{"name": "input-0", "shape": [2, 2], "datatype": "FP32", "data": [1.0, 2.0, 70.0, 5.0]}]}
    r = httpx.post(srv.url + "/v2/models/num/infer", json=body)
    assert r.status_code == 200, r.text
    proba = next(o for o in r.json()["outputs"] if o["name"] == "predict_proba")
    assert_proba([proba["data"][0:2], proba["data"][2:4]], est.predict_proba([[1.0, 2.0], [70.0, 5.0]]).tolist())
    nested = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [[1.0, 2.0], [70.0, 5.0]]}]}
    assert httpx.post(srv.url + "/v2/models/num/infer", json=nested).status_code == 200
    wrong = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1.0, 2.0, 3.0]}]}
    r = httpx.post(srv.url + "/v2/models/num/infer", json=wrong)
    assert r.status_code == 400 and r.json()["rule"] == "shape"


@pytest.mark.parametrize("shape", ["dataframe_split", "dataframe_records", "instances_rows", "instances_records",
                                   "inputs_columns", "inputs_rows", "split_reordered"])
def test_invocations_shapes(server: Any, model: Any, shape: str) -> None:
    records = [dict(zip(FEATURES, row, strict=True)) for row in ROWS]
    body = {
        "dataframe_split": {"dataframe_split": {"columns": FEATURES, "data": ROWS}},
        "split_reordered": {"dataframe_split": {"columns": FEATURES[::-1], "data": [r[::-1] for r in ROWS]}},
        "dataframe_records": {"dataframe_records": records},
        "instances_rows": {"instances": ROWS},
        "instances_records": {"instances": records},
        "inputs_columns": {"inputs": {f: [r[i] for r in ROWS] for i, f in enumerate(FEATURES)}},
        "inputs_rows": {"inputs": ROWS},
    }[shape]
    r = post(server, "/invocations", body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["predictions"] == [int(p[1] > p[0]) for p in expected(model)]
    assert_proba(out["probabilities"], expected(model))
    assert out["classes"] == [0, 1] and out["model_name"] == "churn" and out["model_version"] == 1
    assert out["request_id"] == r.headers["x-request-id"]


@pytest.mark.parametrize(("body", "status", "field", "rule"), [
    ({"dataframe_records": [{"age": 30.0, "income": 1.0, "visits": 1}]}, 400, "plan", "missing"),
    ({"dataframe_split": {"columns": ["age", "income", "plan"], "data": [[1.0, 2.0, "pro"]]}}, 400, "visits", "missing"),
    ({"dataframe_records": [{"age": "old", "income": 1.0, "visits": 1, "plan": "pro"}]}, 400, "age", "type"),
    ({"inputs": [[30.0, 1.0, 2.5, "pro"]]}, 400, "visits", "type"),
    ({"inputs": [[None, 1.0, 2, "pro"]]}, 400, "age", "nullable"),
    ({"inputs": [[130.0, 1.0, 2, "pro"]]}, 400, "age", "max"),
    ({"inputs": [[30.0, 1.0, 2, "enterprise"]]}, 400, "plan", "unseen"),
    ({"inputs": [[30.0, 1.0, 2, None]]}, 400, "plan", "nullable"),
    ({"inputs": [[30.0, 1.0, 2]]}, 400, "inputs", "shape"),
    ({"inputs": [[30.0, 1.0, 2, "pro"]] * 51}, 413, "rows", "max_rows"),
    ({"something": 1}, 400, None, "format"),
    ([1, 2, 3], 400, None, "format"),
])
def test_invocations_bad_input_is_4xx_naming_field_and_rule(
    server: Any, body: Any, status: int, field: str | None, rule: str
) -> None:
    r = post(server, "/invocations", body)
    assert r.status_code == status, r.text
    err = r.json()
    assert err["rule"] == rule and err["field"] == field
    assert isinstance(err["error"], str) and err["error"]
    if field:
        assert field in err["error"]
    assert post(server, "/invocations", {"inputs": ROWS}).status_code == 200  # still serving


@pytest.mark.parametrize(("body", "field", "rule"), [
    ({"inputs": "x"}, "inputs", "format"),
    ({"inputs": [{"name": "age", "shape": [1], "datatype": "FP64"}]}, "inputs[0].data", "missing"),
    ({"inputs": [{"name": "age", "shape": [1], "datatype": "FLOAT", "data": [1]}]}, "inputs[0].datatype", "datatype"),
    ({"inputs": [{"name": "age", "shape": [1], "datatype": "FP64", "data": [30.0]}]}, "income", "missing"),
    ({"inputs": [{"name": "age", "shape": [2], "datatype": "FP64", "data": [30.0]},
                 {"name": "income", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]}]}, "inputs[0].data", "shape"),
    ({"inputs": [{"name": "age", "shape": [1], "datatype": "FP64", "data": [30.0]}], "outputs": [{"name": "x"}]},
     "outputs", "outputs"),
])
def test_oip_bad_input_is_400(server: Any, body: Any, field: str, rule: str) -> None:
    r = post(server, "/v2/models/churn/infer", body)
    assert r.status_code == 400, r.text
    assert (r.json()["field"], r.json()["rule"]) == (field, rule)


def test_malformed_json_oversized_body_and_unknown_model(server: Any) -> None:
    r = httpx.post(server.url + "/invocations", content=b'{"inputs": [[1.0,', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["rule"] == "json"
    big = b'{"inputs": [' + b",".join([b'[30.0, 1.0, 2, "pro"]'] * 2000) + b"]}"
    r = httpx.post(server.url + "/invocations", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["rule"] == "max_body_bytes"

    def chunks() -> Any:  # no Content-Length: the limit applies while reading
        yield b'{"inputs": ['
        for _ in range(2000):
            yield b'[30.0, 1.0, 2, "pro"],'

    r = httpx.post(server.url + "/invocations", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    r = httpx.post(server.url + "/invocations", content=b"a,b\n1,2", headers={"content-type": "text/csv"})
    assert r.status_code == 415 and r.json()["rule"] == "content_type"
    r = post(server, "/v2/models/nope/infer", {"inputs": []})
    assert r.status_code == 404 and r.json()["error"]
    r = post(server, "/v2/models/churn/versions/9/infer", {"inputs": []})
    assert r.status_code == 404 and "version" in r.json()["error"]
    assert post(server, "/invocations", {"inputs": ROWS}).status_code == 200


def test_micro_batching_groups_concurrent_requests(model: Any, serve: Any) -> None:
    srv = serve(create_app(model, settings={"max_batch_size": 64, "max_batch_wait_ms": 20}))
    with httpx.Client(base_url=srv.url, timeout=20, limits=httpx.Limits(max_connections=32)) as client:
        def one(_: int) -> int:
            return client.post("/invocations", json={"inputs": [ROWS[0]]}).status_code

        with ThreadPoolExecutor(24) as pool:
            assert set(pool.map(one, range(240))) == {200}
        text = client.get("/metrics").text
    count = float(re.search(r'loopml_serve_batch_rows_count\{endpoint="churn"\} (\S+)', text).group(1))
    total = float(re.search(r'loopml_serve_batch_rows_sum\{endpoint="churn"\} (\S+)', text).group(1))
    assert total == 240
    assert count < 240  # some model calls served more than one request
    assert 'loopml_serve_requests_total{endpoint="churn",model_version="1",status="200"} 240.0' in text


def test_metrics_openapi_request_id_and_prediction_log(server: Any) -> None:
    r = post(server, "/invocations", {"inputs": ROWS})
    rid = r.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{20,}", rid)
    post(server, "/invocations", {"inputs": [[None, 1.0, 2, "pro"]]})
    text = httpx.get(server.url + "/metrics").text
    for name in ("loopml_serve_requests_total", "loopml_serve_errors_total", "loopml_serve_request_duration_seconds_bucket",
                 "loopml_serve_batch_rows_bucket", "loopml_serve_queue_depth", "loopml_serve_prediction_log_lag_seconds",
                 "process_cpu_seconds_total", "process_resident_memory_bytes"):
        assert name in text, name
    assert 'status="400",rule="nullable"' in text
    doc = httpx.get(server.url + "/openapi.json").json()
    assert doc["openapi"].startswith("3.") and "/v2/models/{model_name}/infer" in doc["paths"]
    assert "/invocations" in doc["paths"]
    docs = httpx.get(server.url + "/docs").text
    assert "http" not in docs.replace("/openapi.json", "")  # no CDN
    ok = [rec for rec in server.sink.records if rec.request_id == rid]
    assert len(ok) == 1 and ok[0].status == 200 and ok[0].model_version == 1
    assert list(ok[0].inputs) == FEATURES and list(ok[0].inputs["plan"]) == ["pro", "basic"]
    assert ok[0].outputs["predict_proba"].shape == (2, 2) and ok[0].n_rows == 2
    assert any(rec.status == 400 and rec.error for rec in server.sink.records)
    assert isinstance(server.sink, PredictionSink)


def test_oip_single_bytes_tensor_for_a_mixed_contract(server: Any, model: Any) -> None:
    # KServe clients may send a mixed row as one [n, k] BYTES tensor: numbers are checked per column, as named ones.
    body = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "BYTES", "data": [v for r in ROWS for v in r]}]}
    r = post(server, "/v2/models/churn/infer", body)
    assert r.status_code == 200, r.text
    proba = next(o for o in r.json()["outputs"] if o["name"] == "predict_proba")
    assert_proba([proba["data"][0:2], proba["data"][2:4]], expected(model))
    bad = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "BYTES", "data": ["old", 1.0, 2, "pro"]}]}
    r = post(server, "/v2/models/churn/infer", bad)
    assert r.status_code == 400 and (r.json()["field"], r.json()["rule"]) == ("age", "type")
    empty = {"inputs": [{"name": "input-0", "shape": [0, 4], "datatype": "BYTES", "data": []}]}
    r = post(server, "/v2/models/churn/infer", empty)
    assert r.status_code == 400 and (r.json()["field"], r.json()["rule"]) == ("inputs[0]", "format")
    assert post(server, "/invocations", {"inputs": ROWS}).status_code == 200


def test_nan_in_the_body_meets_the_contract_and_infinity_is_refused(server: Any) -> None:
    def raw(text: str) -> httpx.Response:  # what json.dumps writes for float("nan") / float("inf")
        return httpx.post(server.url + "/invocations", content=text.encode(),
                          headers={"content-type": "application/json"}, timeout=10)

    r = raw('{"inputs": [[NaN, 1.0, 2, "pro"]]}')
    assert r.status_code == 400 and (r.json()["field"], r.json()["rule"]) == ("age", "nullable")
    r = raw('{"inputs": [[30.0, NaN, 2, "pro"]]}')  # income is nullable: NaN is a missing value
    assert r.status_code == 200, r.text
    for text in ('{"inputs": [[Infinity, 1.0, 2, "pro"]]}', '{"inputs": [[30.0, -Infinity, 2, "pro"]]}',
                 '{"inputs": [[30.0, 1e999, 2, "pro"]]}'):
        r = raw(text)
        assert r.status_code == 400 and r.json()["rule"] == "json", text


@pytest.fixture
def text_server(serve: Any, model: Any) -> Any:
    """A model whose contract has a string and a date-time feature (a real one-hot pipeline)."""
    import numpy as np
    import pandas as pd
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"city": rng.choice(["lyon", "oslo"], 80), "x": rng.normal(size=80),
                          "seen": pd.date_range("2024-01-01", periods=80, freq="h", tz="UTC")})
    est = make_pipeline(make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["city"]),
                                                ("passthrough", ["x"])),
                        LogisticRegression()).fit(frame, (frame["x"] > 0).astype(int))
    signature = {"version": 1, "columns": {"city": {"type": "string", "nullable": False},
                                           "x": {"type": "float", "nullable": False},
                                           "seen": {"type": "datetime", "nullable": True}}}
    return serve(create_app(type(model)("cities", 1, est, signature, "classification")))


@pytest.mark.parametrize(("record", "status", "field", "rule"), [
    ({"city": "oslo", "x": 0.5, "seen": "2024-03-01T10:00:00Z"}, 200, None, None),
    ({"city": "oslo", "x": 0.5, "seen": None}, 200, None, None),
    ({"city": {"name": "oslo"}, "x": 0.5, "seen": None}, 400, "city", "type"),
    ({"city": ["oslo", "lyon"], "x": 0.5, "seen": None}, 400, "city", "type"),
    ({"city": 7, "x": 0.5, "seen": None}, 400, "city", "type"),
    ({"city": None, "x": 0.5, "seen": None}, 400, "city", "nullable"),
    ({"city": "oslo", "x": 0.5, "seen": "yesterday"}, 400, "seen", "type"),
    ({"city": "oslo", "x": 0.5, "seen": 1700000000}, 400, "seen", "type"),
])
def test_string_and_datetime_features_are_type_checked(text_server: Any, record: dict[str, Any], status: int,
                                                       field: str | None, rule: str | None) -> None:
    r = httpx.post(text_server.url + "/invocations", json={"dataframe_records": [record]}, timeout=10)
    assert r.status_code == status, r.text
    if status != 200:
        assert (r.json()["field"], r.json()["rule"]) == (field, rule) and field in r.json()["error"]
