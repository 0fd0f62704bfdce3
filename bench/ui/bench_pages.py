"""First render of every UI page over HTTP, on a workspace at scale.

    python bench/ui/bench_pages.py [--dir /tmp/loopml-ui-bench] [--rebuild]

Builds (once, then reuses) a workspace with 10,000 runs (4 metrics x 5 steps,
3 params each, and a ``run.start`` audit event each), 200 model versions of 4
models, 2 endpoints with a canary, and 1,000,000 logged predictions over the
last 7 days written as Parquet in the prediction-log layout; then starts the
real server (uvicorn, embedded mode) and times each page's first GET (cold: the
first request to that page; the overview is the process's very first request)
and the median of 3 warm GETs.

Runs are bulk-inserted with SQLAlchemy Core into the tracking tables (the
same rows ``start_run``/``log_batch`` write; 10,000 transactions would only
measure the writer) — the audit events go through ``tx.audit`` so the hash
chain is real. Model versions go through ``register_model``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

N_RUNS = 10_000
N_VERSIONS = 200
N_PREDICTIONS = 1_000_000
MODELS = ("churn", "fraud", "demand", "ltv")


def build(root: Path) -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sqlalchemy import insert

    from loopml.deploy import deploy
    from loopml.ingest import ingest
    from loopml.metadata._orm.runs import LatestMetric, Metric, Param, Run
    from loopml.monitor.alerts import raise_alert
    from loopml.register import register_model
    from loopml.trigger import add_trigger
    from loopml.workspace import init_workspace

    t0 = time.perf_counter()
    ws = init_workspace(root, actor="bench")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"tenure": rng.uniform(0, 60, 2000), "charges": rng.normal(70, 20, 2000)})
    frame["churned"] = ((frame.tenure < 12) & (frame.charges > 60)).astype(int)
    ingest(ws, frame, "customers")

    now = datetime.now(UTC)
    runs, params, metrics, latest = [], [], [], []
    for i in range(N_RUNS):
        rid = uuid.uuid4().hex[:28]
        started = now - timedelta(minutes=N_RUNS - i)
        runs.append({"id": rid, "name": f"run-{i}", "experiment": MODELS[i % 4], "kind": "manual",
                     "status": "succeeded" if i % 17 else "failed", "started_at": started,
                     "ended_at": started + timedelta(seconds=30), "tags": {"team": "bench"}, "created_by": "bench"})
        params += [{"run_id": rid, "key": k, "value": str(v)} for k, v in
                   (("model", "hgb" if i % 2 else "logreg"), ("lr", 0.01 * (i % 10 + 1)), ("depth", i % 8))]
        for key in ("accuracy", "loss", "f1", "auc"):
            base = float(rng.uniform(0.5, 0.95))
            for step in range(5):
                metrics.append({"run_id": rid, "key": key, "value": base + 0.01 * step, "step": step,
                                "ts": started.timestamp() + step})
            latest.append({"run_id": rid, "key": key, "value": base + 0.04, "step": 4, "ts": started.timestamp() + 4})
    with ws.store.write(ws.actor) as tx:
        for table, rows in ((Run, runs), (Param, params), (Metric, metrics), (LatestMetric, latest)):
            for j in range(0, len(rows), 5000):
                tx.session.execute(insert(table), rows[j:j + 5000])
        for r in runs:
            tx.audit("run.start", "run", r["id"], after={"name": r["name"], "experiment": r["experiment"]})
    print(f"  runs: {time.perf_counter() - t0:.1f}s", flush=True)

    x, y = frame[["tenure", "charges"]], frame["churned"]
    model = LogisticRegression().fit(x, y)
    for i in range(N_VERSIONS):
        register_model(ws, MODELS[i % 4], model, run_id=runs[i]["id"], dataset_versions=["customers@1"],
                       gates_passed=True, evaluation={"metrics": {"accuracy": 0.8 + i / 2000}})
    print(f"  model versions: {time.perf_counter() - t0:.1f}s", flush=True)
    for name in ("churn", "fraud"):
        deploy(ws, f"{name}-api", f"{name}/{N_VERSIONS // 4 - 1}")
        deploy(ws, f"{name}-api", f"{name}/{N_VERSIONS // 4}", strategy="canary")
    raise_alert(ws, rule="data_drift", endpoint="churn-api", message="tenure drifted")
    add_trigger(ws, "nightly", "schedule", recipe={"name": "churn"}, config={"cron": "0 3 * * *"})

    log_root = Path(str(ws.settings.resolved_predictions_url).removeprefix("file://"))
    per_endpoint = N_PREDICTIONS // 2
    hours = 7 * 24
    per_hour = per_endpoint // hours
    ts_type = pa.timestamp("us", tz="UTC")
    for name, v in (("churn-api", N_VERSIONS // 4), ("fraud-api", N_VERSIONS // 4)):
        written = 0
        for h in range(hours):
            n = per_hour if h < hours - 1 else per_endpoint - written
            hour_start = (now - timedelta(hours=hours - 1 - h)).replace(minute=0, second=0, microsecond=0)
            offs = np.sort(rng.integers(0, 3_600_000_000, n))
            ts = np.array([int(hour_start.timestamp() * 1e6)], dtype="int64") + offs
            ts = np.minimum(ts, int(now.timestamp() * 1e6) - 1)
            table = pa.table({
                "request_id": pa.array([f"{name}-{written + k}" for k in range(n)]),
                "row": pa.array(np.zeros(n, dtype="int32")),
                "ts": pa.array(ts, type=ts_type),
                "endpoint": pa.array([name] * n),
                "model_name": pa.array([name.removesuffix("-api")] * n),
                "model_version": pa.array(np.where(rng.random(n) < 0.2, v, v - 1).astype("int64")),
                "latency_ms": pa.array(rng.gamma(2.0, 2.0, n)),
                "status": pa.array(np.where(rng.random(n) < 0.01, 500, 200).astype("int64")),
                "error": pa.array([None] * n, type=pa.string()),
                "f_tenure": pa.array(rng.uniform(0, 60, n)),
                "f_charges": pa.array(rng.normal(70, 20, n)),
                "prediction": pa.array(rng.integers(0, 2, n).astype("int64")),
            })
            folder = log_root / f"endpoint={name}" / f"date={hour_start:%Y-%m-%d}" / f"hour={hour_start:%H}"
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, folder / f"part-bench-{h:04d}.parquet")
            written += n
    print(f"  predictions: {time.perf_counter() - t0:.1f}s", flush=True)
    ws.store.dispose()


def measure(root: Path) -> list[tuple[str, float, float, int]]:
    import httpx
    import uvicorn

    from loopml.server import create_app
    from loopml.tracking import list_runs
    from loopml.workspace import open_workspace

    ws = open_workspace(root, actor="bench")
    some = list_runs(ws, limit=2)
    pages = [
        "/ui/", "/ui/runs", "/ui/runs?offset=9950",
        "/ui/runs?order=metrics.accuracy+DESC",
        "/ui/runs?filter=metrics.accuracy+%3E+0.9+and+params.model+%3D+%27hgb%27",
        f"/ui/runs/{some[0].id}", f"/ui/runs/compare?id={some[0].id}&id={some[1].id}",
        "/ui/datasets", "/ui/datasets/customers", "/ui/datasets/customers/1",
        "/ui/models", "/ui/models/churn", "/ui/models/churn/50",
        "/ui/deployments", "/ui/deployments/churn-api", "/ui/monitoring", "/ui/triggers",
        "/ui/lineage?object=model_version:churn/50", "/ui/predictions?endpoint=churn-api",
        "/ui/predictions?endpoint=churn-api&request_id=churn-api-123456", "/ui/audit",
    ]
    server = uvicorn.Server(uvicorn.Config(create_app(ws, auth=False), host="127.0.0.1", port=0,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    out = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        # No warm-up request: the first page below is the process's first request.
        for path in pages:
            t = time.perf_counter()
            r = client.get(path)
            cold = time.perf_counter() - t
            assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:300]}"
            warm = []
            for _ in range(3):
                t = time.perf_counter()
                client.get(path)
                warm.append(time.perf_counter() - t)
            out.append((path, cold, statistics.median(warm), len(r.content)))
    server.should_exit = True
    thread.join(timeout=10)
    ws.store.dispose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/loopml-ui-bench", type=Path)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    if args.rebuild and args.dir.exists():
        shutil.rmtree(args.dir)
    if not (args.dir / ".loopml").exists():
        print(f"building the workspace in {args.dir} ...", flush=True)
        build(args.dir)
    rows = measure(args.dir)
    print(f"\n{'page':<72} {'first ms':>9} {'warm ms':>8} {'KiB':>6}")
    for path, cold, warm, size in rows:
        flag = "  <-- over 1 s" if cold >= 1.0 else ""
        print(f"{path[:72]:<72} {cold * 1000:>9.0f} {warm * 1000:>8.0f} {size / 1024:>6.0f}{flag}")
    worst = max(rows, key=lambda r: r[1])
    print(f"\nslowest first render: {worst[0]} {worst[1] * 1000:.0f} ms")
    return 0 if worst[1] < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
