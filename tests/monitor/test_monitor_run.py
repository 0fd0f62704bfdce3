"""Running monitors on a real workspace and a real prediction log: drift, alerts, schema, quality,
performance with feedback, segments, health, row windows, pinned references."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from loopml.kernel.exceptions import NotFoundError
from loopml.monitor import (
    define_monitor,
    due_monitors,
    get_monitor,
    get_report,
    list_monitors,
    list_reports,
    run_monitor,
)
from loopml.monitor.alerts import list_alerts
from loopml.monitor.drift import profile_frame
from loopml.predictions import PredictionLog, record_feedback
from loopml.register import register_model

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
SIGNATURE = {
    "version": 1,
    "columns": {
        "tenure": {"type": "float", "nullable": False, "min": 0.0, "max": 30.0},
        "charges": {"type": "float", "nullable": False},
        "plan": {"type": "category", "nullable": False, "categories": ["basic", "pro"], "unseen": "warn"},
    },
    "target": "churn",
}


def make_model(ws: Any, *, n: int = 4000, seed: int = 0, accuracy: float = 0.9) -> Any:
    """Register ``churn`` v1 (champion) with its training profile, signature and evaluation."""
    rng = np.random.default_rng(seed)
    train = pd.DataFrame({"tenure": rng.normal(10, 2, n), "charges": rng.gamma(2.0, 3.0, n),
                          "plan": rng.choice(["basic", "pro"], n), "churn": rng.integers(0, 2, n)})
    model = DummyClassifier().fit(train[["tenure"]], train["churn"])
    return register_model(ws, "churn", model, signature=SIGNATURE, profile=profile_frame(train),
                          evaluation={"task": "classification", "target": "churn", "n_rows": n,
                                      "metrics": {"accuracy": accuracy}, "positive_label": 1},
                          task="classification", aliases=["champion"])


def log_rows(ws: Any, k: int, *, t0: datetime = T0, step_s: float = 1.0, seed: int = 1, tenure_shift: float = 0.0,
             charges_scale: float = 3.0, plan: Any = None, latency: Any = None, status: Any = 200,
             inputs: dict[str, Any] | None = None, start: int = 0, endpoint: str = "churn") -> list[str]:
    """``k`` logged one-row requests, every ``step_s`` seconds from ``t0``; returns their request ids."""
    rng = np.random.default_rng(seed)
    ids = [f"r{start + i}" for i in range(k)]
    feats = {"tenure": rng.normal(10 + tenure_shift, 2, k), "charges": rng.gamma(2.0, charges_scale, k),
             "plan": plan if plan is not None else rng.choice(["basic", "pro"], k)}
    if inputs is not None:
        feats = inputs
    with PredictionLog(ws) as log:
        log.submit({
            "request_id": ids, "ts": [t0 + timedelta(seconds=step_s * i) for i in range(k)], "endpoint": endpoint,
            "model_name": "churn", "model_version": 1,
            "latency_ms": latency if latency is not None else rng.gamma(2.0, 5.0, k),
            "status": status, "error": None, "inputs": feats,
            "outputs": {"prediction": rng.integers(0, 2, k), "proba": {0: np.full(k, 0.4), 1: np.full(k, 0.6)}},
        })
    return ids


def test_same_distribution_is_ok_and_raises_no_alert(workspace: Any) -> None:
    make_model(workspace)
    log_rows(workspace, 2000)
    rec = run_monitor(workspace, "churn", now=T0 + timedelta(hours=1))
    assert rec.status == "ok", rec.summary
    assert rec.n_rows == 2000 and rec.monitor_id is None
    assert set(rec.checks) == {"schema", "data_drift", "prediction_drift", "quality", "outliers", "health"}
    assert all(c["status"] == "ok" for c in rec.checks.values()), {n: c["reason"] for n, c in rec.checks.items()}
    assert rec.summary["drifted_features"] == []
    assert rec.checks["data_drift"]["params"]["alpha"] == 0.05  # parameters recorded with the report
    assert rec.checks["data_drift"]["details"]["detector"]["correction"] == "bh"
    assert list_alerts(workspace) == []
    assert get_report(workspace, rec.id).html_digest == rec.html_digest is not None


def test_injected_drift_names_features_alerts_once_and_resolves(sqlite_workspace: Any) -> None:
    ws = sqlite_workspace
    make_model(ws)
    define_monitor(ws, {"name": "churn-hourly", "endpoint": "churn", "window": {"last": "1h"},
                        "checks": {"data_drift": {}, "health": {}},
                        "alerts": [{"check": "data_drift", "severity": "critical", "cooldown_s": 60}]})
    log_rows(ws, 1500, tenure_shift=4.0, charges_scale=6.0)  # T0 .. T0+25min, drifted
    first = run_monitor(ws, "churn-hourly", now=T0 + timedelta(minutes=40))
    assert first.status == "drift"
    drift = first.checks["data_drift"]
    assert drift["status"] == "fail" and set(drift["details"]["drifted_columns"]) == {"tenure", "charges"}
    assert first.alerts[0]["action"] == "raised"
    second = run_monitor(ws, "churn-hourly", now=T0 + timedelta(minutes=50))
    assert second.alerts[0]["action"] == "folded"
    alerts = list_alerts(ws)
    assert len(alerts) == 1 and alerts[0].count == 2 and alerts[0].status == "open"
    assert alerts[0].severity == "critical" and alerts[0].rule == "monitor.data_drift"
    ctx = alerts[0].context
    assert set(ctx["features"]) == {"tenure", "charges"} and set(ctx["drifted_features"]) == {"tenure", "charges"}
    assert ctx["window"]["start"].startswith("2024-05-01T09:50") and ctx["report_id"] == second.id
    assert "tenure" in alerts[0].message
    log_rows(ws, 1500, t0=T0 + timedelta(hours=2), seed=7, start=5000)  # fine again
    third = run_monitor(ws, "churn-hourly", now=T0 + timedelta(hours=2, minutes=40))
    assert third.status == "ok" and third.alerts[0]["action"] == "resolved"
    assert list_alerts(ws)[0].status == "resolved"
    history = list_reports(ws, "churn")
    assert [r.id for r in history] == [third.id, second.id, first.id]
    mon = get_monitor(ws, "churn-hourly")
    assert mon.last_run_at == T0 + timedelta(hours=2, minutes=40)


def test_schema_drift_missing_new_and_retyped_columns(sqlite_workspace: Any) -> None:
    ws = sqlite_workspace
    make_model(ws)
    k = 600
    rng = np.random.default_rng(3)
    log_rows(ws, k, inputs={"tenure": [f"t{i % 7}" for i in range(k)], "plan": rng.choice(["basic", "pro"], k),
                            "region": rng.choice(["eu", "us"], k)})
    rec = run_monitor(ws, "churn", now=T0 + timedelta(hours=1))
    schema = rec.checks["schema"]
    assert schema["status"] == "fail"
    assert schema["details"]["missing"] == ["charges"]
    assert schema["details"]["new"] == ["region"]
    assert schema["details"]["retyped"] == [{"column": "tenure", "reference": "numeric", "log": "string"}]
    drift = rec.checks["data_drift"]  # the broken columns are left out, the rest still compared
    assert drift["details"]["excluded"]["charges"] == "missing from the prediction log"
    assert drift["details"]["excluded"]["tenure"].startswith("type changed")
    assert [f["column"] for f in drift["details"]["per_feature"]] == ["plan"]
    assert rec.status == "degraded"  # quality fails too: charges is missing entirely


def test_quality_against_the_contract(sqlite_workspace: Any) -> None:
    ws = sqlite_workspace
    make_model(ws)
    k = 1000
    rng = np.random.default_rng(4)
    tenure = rng.normal(10, 2, k)
    tenure[:50] = 45.0  # above the contract's max of 30
    charges = rng.gamma(2.0, 3.0, k)
    charges[:100] = np.nan  # 10% missing, the contract says not nullable
    plan = rng.choice(["basic", "pro"], k).astype(object)
    plan[:30] = "gold"  # a category the contract does not know
    log_rows(ws, k, inputs={"tenure": tenure, "charges": charges, "plan": plan})
    rec = run_monitor(ws, "churn", now=T0 + timedelta(hours=1))
    q = rec.checks["quality"]
    assert q["status"] == "fail" and rec.status == "degraded"
    rows = {r["column"]: r for r in q["details"]["columns"]}
    assert rows["tenure"]["violations"] == ["out_of_range"] and rows["tenure"]["out_of_range_share"] == 0.05
    assert rows["charges"]["violations"] == ["missing_rate"] and rows["charges"]["missing_rate"] == 0.1
    assert rows["plan"]["violations"] == ["unseen_categories"] and rows["plan"]["unseen_values"] == {"gold": 30}
    assert set(q["details"]["failing_columns"]) == {"tenure", "charges", "plan"}


def test_performance_with_feedback_labels(sqlite_workspace: Any) -> None:
    ws = sqlite_workspace
    make_model(ws, accuracy=0.9)
    define_monitor(ws, {"endpoint": "churn", "checks": {"performance": {"min_labels": 100, "max_drop": 0.1}}})
    ids = log_rows(ws, 400)
    now = T0 + timedelta(hours=1)
    rec = run_monitor(ws, "churn", now=now)
    perf = rec.checks["performance"]
    assert perf["status"] == "skipped" and "only 0 labelled rows" in perf["reason"] and "min_labels=100" in perf["reason"]
    from loopml.predictions import query_predictions

    preds = query_predictions(ws, "churn", columns=["request_id", "prediction"])
    right = preds.iloc[:150]
    record_feedback(ws, "churn", pd.DataFrame({"request_id": right["request_id"], "label": right["prediction"]}))
    rec = run_monitor(ws, "churn", now=now)
    perf = rec.checks["performance"]
    assert perf["status"] == "ok", perf
    assert perf["metrics"]["n_labelled"] == 150 and perf["metrics"]["value"] == 1.0
    assert perf["metrics"]["baseline"] == 0.9 and perf["metrics"]["label_coverage"] == 150 / 400
    wrong = preds.iloc[150:400]  # every later label contradicts the prediction
    record_feedback(ws, "churn", pd.DataFrame({"request_id": wrong["request_id"], "label": 1 - wrong["prediction"]}))
    rec = run_monitor(ws, "churn", now=now)
    perf = rec.checks["performance"]
    assert perf["status"] == "fail" and rec.status == "degraded"
    assert perf["metrics"]["n_labelled"] == 400 and perf["metrics"]["value"] == pytest.approx(150 / 400)
    assert perf["metrics"]["drop"] == pytest.approx(0.9 - 150 / 400)
    assert len(ids) == 400


def test_segments_name_the_drifted_segment(sqlite_workspace: Any) -> None:
    ws = sqlite_workspace
    make_model(ws)
    k = 2000
    rng = np.random.default_rng(5)
    plan = np.where(np.arange(k) % 2 == 0, "basic", "pro")
    tenure = rng.normal(10, 2, k)
    charges = rng.gamma(2.0, 3.0, k)
    pro = plan == "pro"
    tenure[pro] += 5.0
    charges[pro] *= 3.0
    define_monitor(ws, {"endpoint": "churn", "checks": {"segments": {"columns": ["plan"], "min_rows": 200}}})
    log_rows(ws, k, inputs={"tenure": tenure, "charges": charges, "plan": plan})
    rec = run_monitor(ws, "churn", now=T0 + timedelta(hours=1))
    seg = rec.checks["segments"]
    assert seg["status"] == "fail" and seg["details"]["failing"] == ["plan=pro"]
    by = {s["value"]: s for s in seg["details"]["segments"]}
    assert by["basic"]["dataset_drift"] is False and by["pro"]["dataset_drift"] is True
    assert by["pro"]["n_rows"] == 1000 and by["pro"]["reference"] == "overall"
    assert by["pro"]["reference_share"] == pytest.approx(0.5, abs=0.05)


def test_health_percentiles_error_rate_and_throughput(sqlite_workspace: Any) -> None:
    ws = sqlite_workspace
    make_model(ws)
    k = 1000
    latency = np.arange(1, k + 1, dtype=float)  # 1 .. 1000 ms
    status = np.where(np.arange(k) < 30, 500, 200)  # 3% errors
    define_monitor(ws, {"endpoint": "churn", "checks": {"health": {"latency_p95_max_ms": 900, "error_rate_max": 0.05}}})
    log_rows(ws, k, latency=latency, status=status, step_s=0.6)  # 1000 rows over 10 minutes
    rec = run_monitor(ws, "churn", now=T0 + timedelta(hours=1))
    h = rec.checks["health"]
    assert h["status"] == "fail" and h["details"]["breaches"] == [f"latency p95 {np.percentile(latency, 95):.1f} ms > 900 ms"]
    m = h["metrics"]
    assert m["latency_p50_ms"] == pytest.approx(np.percentile(latency, 50))
    assert m["latency_p99_ms"] == pytest.approx(np.percentile(latency, 99))
    assert m["n_requests"] == 1000 and m["n_errors"] == 30 and m["error_rate"] == pytest.approx(0.03)
    assert m["throughput_per_min"] == pytest.approx(1000 / (24 * 60))  # rows over the 24h window
    assert m["peak_rows_per_min"] == 100
    assert rec.n_rows == 970  # data checks see only the successful rows


def test_row_window_reads_the_newest_rows(sqlite_workspace: Any) -> None:
    ws = sqlite_workspace
    make_model(ws)
    define_monitor(ws, {"endpoint": "churn", "window": {"rows": 500}, "checks": ["data_drift", "health"]})
    log_rows(ws, 1000, tenure_shift=5.0, charges_scale=9.0)
    log_rows(ws, 500, t0=T0 + timedelta(hours=1), start=5000, seed=9)
    rec = run_monitor(ws, "churn", now=T0 + timedelta(days=3))
    assert rec.n_rows == 500 and rec.status == "ok"
    assert rec.window_start == T0 + timedelta(hours=1)


def test_pinned_reference_window_is_profiled_once(sqlite_workspace: Any) -> None:
    ws = sqlite_workspace
    define_monitor(ws, {"endpoint": "churn", "model": "churn@champion", "checks": ["data_drift"],
                        "reference": {"since": "2024-05-01T10:00:00Z", "until": "2024-05-01T11:00:00Z"}})
    log_rows(ws, 1000)  # the pinned window (no model registered: the reference is the log itself)
    log_rows(ws, 1000, t0=T0 + timedelta(hours=3), start=5000, seed=2, tenure_shift=3.0, charges_scale=8.0)
    rec = run_monitor(ws, "churn", now=T0 + timedelta(hours=4))
    assert rec.report["reference"]["source"] == "window"
    assert rec.checks["data_drift"]["status"] == "fail"
    digest = get_monitor(ws, "churn").spec["_state"]["reference_digest"]
    assert ws.artifacts.exists(digest)
    again = run_monitor(ws, "churn", now=T0 + timedelta(hours=4))
    assert get_monitor(ws, "churn").spec["_state"]["reference_digest"] == digest
    assert again.checks["data_drift"]["metrics"] == rec.checks["data_drift"]["metrics"]


def test_define_schedules_and_due_monitors(workspace: Any) -> None:
    rec = define_monitor(workspace, {"name": "m1", "endpoint": "churn", "schedule": "*/15 * * * *"})
    assert rec.next_due_at is not None and rec.next_due_at.minute % 15 == 0
    define_monitor(workspace, {"name": "m2", "endpoint": "other"})
    assert [m.name for m in list_monitors(workspace)] == ["m1", "m2"]
    assert due_monitors(workspace, rec.next_due_at - timedelta(seconds=1)) == []
    assert due_monitors(workspace, rec.next_due_at) == ["m1"]
    again = define_monitor(workspace, {"name": "m1", "endpoint": "churn", "schedule": "0 * * * *"})
    assert again.id == rec.id and again.schedule == "0 * * * *"
    from sqlalchemy import select

    from loopml.metadata._orm import AuditEvent

    with workspace.store.read() as s:
        actions = s.execute(select(AuditEvent.action).where(AuditEvent.object_id == "m1")).scalars().all()
    assert actions.count("monitor.define") == 2


def test_unknown_endpoint_and_a_monitor_without_logs(sqlite_workspace: Any) -> None:
    ws = sqlite_workspace
    with pytest.raises(NotFoundError, match="no monitor is named 'nope'"):
        run_monitor(ws, "nope")
    define_monitor(ws, {"endpoint": "quiet"})
    rec = run_monitor(ws, "quiet")
    assert rec.n_rows == 0 and rec.status == "ok"
    assert rec.checks["data_drift"]["status"] == "skipped"
    assert rec.checks["health"]["reason"] == "no logged rows in the window"


def test_a_model_without_profile_skips_drift_but_runs_health(sqlite_workspace: Any) -> None:
    ws = sqlite_workspace
    register_model(ws, "churn", DummyClassifier().fit([[0], [1]], [0, 1]), aliases=["champion"])
    log_rows(ws, 300)
    rec = run_monitor(ws, "churn", now=T0 + timedelta(hours=1))
    assert rec.checks["data_drift"]["status"] == "skipped"
    assert rec.checks["data_drift"]["reason"] == "model version churn/1 has no reference profile"
    assert rec.checks["health"]["status"] == "ok"
