"""Per-segment checks on a real workspace and a real prediction log: performance per segment with
feedback labels joined by request id, and drift per segment against its own pinned reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from loopml.monitor import define_monitor, run_monitor
from loopml.monitor.drift import profile_frame
from loopml.predictions import PredictionLog, query_predictions, record_feedback
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


def make_model(ws: Any, *, n: int = 2000, accuracy: float = 0.9) -> None:
    """Register ``churn`` v1 (champion) with its training profile, signature and evaluation baseline."""
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"tenure": rng.normal(10, 2, n), "charges": rng.gamma(2.0, 3.0, n),
                          "plan": rng.choice(["basic", "pro"], n), "churn": rng.integers(0, 2, n)})
    register_model(ws, "churn", DummyClassifier().fit(train[["tenure"]], train["churn"]), signature=SIGNATURE,
                   profile=profile_frame(train), task="classification", aliases=["champion"],
                   evaluation={"task": "classification", "target": "churn", "n_rows": n,
                               "metrics": {"accuracy": accuracy}, "positive_label": 1})


def log_segments(ws: Any, k: int, *, seed: int, t0: datetime = T0, start: int = 0,
                 basic_shift: float = 0.0, pro_shift: float = 5.0, pro_scale: float = 3.0) -> None:
    """``k`` one-row requests alternating plan basic/pro; each plan's tenure/charges moved on its own."""
    rng = np.random.default_rng(seed)
    plan = np.where(np.arange(k) % 2 == 0, "basic", "pro")
    pro = plan == "pro"
    tenure = rng.normal(10, 2, k) + np.where(pro, pro_shift, basic_shift)
    charges = rng.gamma(2.0, 3.0, k) * np.where(pro, pro_scale, 1.0)
    with PredictionLog(ws) as log:
        log.submit({
            "request_id": [f"r{start + i}" for i in range(k)],
            "ts": [t0 + timedelta(seconds=i) for i in range(k)], "endpoint": "churn",
            "model_name": "churn", "model_version": 1, "latency_ms": rng.gamma(2.0, 5.0, k), "status": 200,
            "error": None, "inputs": {"tenure": tenure, "charges": charges, "plan": plan},
            "outputs": {"prediction": rng.integers(0, 2, k), "proba": {0: np.full(k, 0.4), 1: np.full(k, 0.6)}},
        })


def test_segment_performance_names_the_segment_the_model_gets_wrong(workspace: Any) -> None:
    ws = workspace
    make_model(ws, accuracy=0.9)
    define_monitor(ws, {"endpoint": "churn", "checks": {
        "performance": {"min_labels": 50, "max_drop": 0.1},
        "segments": {"columns": ["plan"], "min_rows": 100, "min_labels": 50, "max_drop": 0.1}}})
    log_segments(ws, 600, seed=11, pro_shift=0.0, pro_scale=1.0)  # same inputs in both plans: no drift
    now = T0 + timedelta(hours=1)
    preds = query_predictions(ws, "churn", columns=["request_id", "prediction", "f_plan"])
    basic, pro = preds[preds["f_plan"] == "basic"], preds[preds["f_plan"] == "pro"]
    assert len(basic) == len(pro) == 300

    # basic: 200 labels that agree with the prediction; pro: 30 that contradict it (below min_labels)
    record_feedback(ws, "churn", pd.DataFrame({"request_id": basic["request_id"].iloc[:200],
                                               "label": basic["prediction"].iloc[:200]}))
    record_feedback(ws, "churn", pd.DataFrame({"request_id": pro["request_id"].iloc[:30],
                                               "label": 1 - pro["prediction"].iloc[:30]}))
    rec = run_monitor(ws, "churn", now=now)
    seg = rec.checks["segments"]
    assert seg["status"] == "ok", seg
    by = {s["value"]: s for s in seg["details"]["segments"]}
    assert by["basic"]["n_labelled"] == 200 and by["basic"]["metric"] == "accuracy"
    assert by["basic"]["metric_value"] == 1.0 and by["basic"]["drop"] == pytest.approx(0.9 - 1.0)
    assert by["pro"]["n_labelled"] == 30 and "metric_value" not in by["pro"]
    assert by["pro"]["performance_skipped"] == "30 labelled rows < min_labels=50"

    # pro: every one of its 300 rows labelled against the prediction
    record_feedback(ws, "churn", pd.DataFrame({"request_id": pro["request_id"], "label": 1 - pro["prediction"]}))
    rec = run_monitor(ws, "churn", now=now)
    seg = rec.checks["segments"]
    assert seg["status"] == "fail" and seg["details"]["failing"] == ["plan=pro"]
    assert seg["metrics"] == {"n_segments": 2, "n_failing": 1}
    by = {s["value"]: s for s in seg["details"]["segments"]}
    assert by["pro"]["n_labelled"] == 300 and by["pro"]["n_rows"] == 300
    assert by["pro"]["metric"] == "accuracy" and by["pro"]["metric_value"] == 0.0
    assert by["pro"]["drop"] == pytest.approx(0.9) and by["pro"]["fail"] is True
    assert by["basic"]["n_labelled"] == 200 and by["basic"]["metric_value"] == 1.0 and by["basic"]["fail"] is False
    assert by["pro"]["metric_value"] < by["basic"]["metric_value"]
    # the failure is the model's, not the inputs': neither segment drifted
    assert by["basic"]["dataset_drift"] is False and by["pro"]["dataset_drift"] is False
    perf = rec.checks["performance"]  # the overall figure hides which segment is wrong
    assert perf["metrics"]["n_labelled"] == 500 and perf["metrics"]["value"] == pytest.approx(200 / 500)
    assert rec.status != "ok"


def test_a_segment_failing_on_performance_alone_marks_the_run_degraded(workspace: Any) -> None:
    ws = workspace
    make_model(ws, accuracy=0.9)
    define_monitor(ws, {"endpoint": "churn", "checks": {  # no overall performance check: only the segment can say it
        "segments": {"columns": ["plan"], "min_rows": 100, "min_labels": 50, "max_drop": 0.1}}})
    log_segments(ws, 600, seed=11, pro_shift=0.0, pro_scale=1.0)  # same inputs in both plans: no drift
    preds = query_predictions(ws, "churn", columns=["request_id", "prediction", "f_plan"])
    pro = preds[preds["f_plan"] == "pro"]
    record_feedback(ws, "churn", pd.DataFrame({"request_id": pro["request_id"], "label": 1 - pro["prediction"]}))
    rec = run_monitor(ws, "churn", now=T0 + timedelta(hours=1))
    seg = rec.checks["segments"]
    by = {s["value"]: s for s in seg["details"]["segments"]}
    assert seg["status"] == "fail" and by["pro"]["fail_on"] == ["performance"] and by["basic"]["fail_on"] == []
    assert seg["details"]["degraded"] is True and rec.status == "degraded"


def test_segment_drift_against_its_own_pinned_reference(sqlite_workspace: Any) -> None:
    ws = sqlite_workspace
    define_monitor(ws, {"endpoint": "churn", "model": "churn@champion", "window": {"last": "1h"},
                        "reference": {"since": "2024-05-01T10:00:00Z", "until": "2024-05-01T11:00:00Z"},
                        "checks": {"segments": {"columns": ["plan"], "min_rows": 200}}})
    # The pinned window: pro customers have a longer tenure and higher charges than basic ones.
    log_segments(ws, 1200, seed=21)
    # Later, the same mix (another sample): each plan matches its own reference, though not the overall one.
    log_segments(ws, 1200, seed=22, t0=T0 + timedelta(hours=3), start=10_000)
    rec = run_monitor(ws, "churn", now=T0 + timedelta(hours=3, minutes=30))
    assert rec.report["reference"]["source"] == "window"
    seg = rec.checks["segments"]
    assert seg["status"] == "ok" and seg["details"]["failing"] == [], seg
    by = {s["value"]: s for s in seg["details"]["segments"]}
    assert by["basic"]["reference"] == by["pro"]["reference"] == "segment"
    assert by["basic"]["dataset_drift"] is False and by["pro"]["dataset_drift"] is False
    assert by["basic"]["n_rows"] == by["pro"]["n_rows"] == 600

    # Then only basic customers' tenure moves: basic is flagged, pro is not.
    log_segments(ws, 1200, seed=23, t0=T0 + timedelta(hours=5), start=20_000, basic_shift=4.0)
    rec = run_monitor(ws, "churn", now=T0 + timedelta(hours=5, minutes=30))
    seg = rec.checks["segments"]
    assert seg["status"] == "fail" and seg["details"]["failing"] == ["plan=basic"]
    by = {s["value"]: s for s in seg["details"]["segments"]}
    assert by["basic"]["dataset_drift"] is True and by["basic"]["drifted_columns"] == ["tenure"]
    assert by["pro"]["dataset_drift"] is False and by["pro"]["drifted_columns"] == []
    assert by["basic"]["reference"] == "segment" and rec.status == "drift"
