"""A small governed loop for the governance tests: a dataset version, a run, two evaluated and gated
versions of ``churn`` (author ``ana``), an endpoint serving v1 and a few logged predictions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

SECRET_URL = "postgresql://etl:pa55w0rd-S3CRET@db.internal/crm"


@dataclass
class Seeded:
    dataset: str
    run_id: str
    versions: list[int]
    endpoint: str
    request_ids: list[str]


def frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    a = rng.normal(size=n)
    return pd.DataFrame({"customer_id": [f"C{i % 8}" for i in range(n)], "a": a, "b": rng.normal(size=n),
                         "region": ["north" if i % 2 else "south" for i in range(n)], "y": (a > 0).astype(int)})


def log_predictions(ws: Any, endpoint: str, version: int, n: int = 6, *, ts: datetime | None = None,
                    start: int = 0) -> list[str]:
    from loopml.predictions import PredictionLog

    t0 = ts or datetime.now(UTC)
    records = [{
        "request_id": f"req-{start + i}", "ts": t0 + timedelta(seconds=i), "endpoint": endpoint,
        "model_name": "churn", "model_version": version,
        "inputs": {"customer_id": f"C{(start + i) % 3}", "a": float(i), "b": 0.5},
        "outputs": {"predict": [i % 2]}, "latency_ms": 1.0, "status": 200, "error": None,
    } for i in range(n)]
    log = PredictionLog(ws.settings.resolved_predictions_url, flush_interval_s=0.05)
    log.submit(records)
    log.close()
    return [r["request_id"] for r in records]


def seed(ws: Any, *, deploy_v1: bool = True, predictions: int = 6) -> Seeded:
    from sklearn.linear_model import LogisticRegression

    from loopml.deploy import deploy
    from loopml.evaluate import evaluate
    from loopml.governance.gates import check_gates
    from loopml.ingest import ingest
    from loopml.register import register_model
    from loopml.tracking import start_run

    ana = ws.as_actor("ana")
    df = frame()
    dv = ingest(ana, df, "customers", description=f"exported from {SECRET_URL}")
    versions = []
    run_id = ""
    for i in range(2):
        with start_run(ana, f"train{i}", experiment="churn") as run:
            run.log_params({"C": 1.0 + i})
            run_id = run.id
        model = LogisticRegression(C=1.0 + i).fit(df[["a", "b"]], df.y)
        ev = evaluate(model, df[["a", "b", "region", "y"]], target="y", task="classification", slices=["region"],
                      min_slice_size=5)
        report = check_gates(["accuracy >= 0.5", {"fairness": "region", "metric": "accuracy", "max_gap": 0.9}], ev)
        rec = register_model(ana, "churn", model, run_id=run_id, dataset_versions=[f"customers@{dv.version}"],
                             evaluation=ev.to_dict(), gate_report=report.to_dict(), gates_passed=report.passed,
                             description=f"trained from {SECRET_URL}")
        versions.append(rec.version)
    ids: list[str] = []
    if deploy_v1:
        deploy(ws.as_actor("mel"), "churn-api", "churn/1")
        if predictions:
            ids = log_predictions(ws, "churn-api", 1, predictions)
    return Seeded(f"customers@{dv.version}", run_id, versions, "churn-api", ids)
