"""Prediction log benchmark: request-path cost, writer throughput, DuckDB query time.

    python bench/predictions/bench_log.py [--rows 1000000] [--batch 32]

1. ``submit()`` cost per call on the request path (what serving pays).
2. Records/s the writer sustains: submit N serving-shaped records as fast as
   possible, time until ``close()`` has them all in Parquet.
3. Time to count / aggregate 1,000,000 logged rows (a day of log) with DuckDB,
   and to load a column window into pandas.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from loopml.predictions import PredictionLog, count_predictions, open_view, query_predictions


def _records(n: int, batch: int, t0: datetime) -> list[list[dict]]:
    """Serving-shaped calls: ``batch`` one-row requests per submit, 8 numeric features."""
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(n, 8))
    calls, call = [], []
    for i in range(n):
        call.append({
            "request_id": f"r{i}", "ts": t0 + timedelta(seconds=i * 86400 / n), "endpoint": "bench",
            "model_name": "m", "model_version": 1 + i % 2,
            "inputs": {f"x{j}": feats[i:i + 1, j] for j in range(8)},
            "outputs": {"predict": np.array([i % 2]), "predict_proba": np.array([[0.4, 0.6]]), "classes": [0, 1]},
            "latency_ms": 2.0, "status": 200, "error": None,
        })
        if len(call) == batch:
            calls.append(call)
            call = []
    if call:
        calls.append(call)
    return calls


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=32, help="records per submit() (serving's micro-batch)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="loopml-bench-log-"))
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    calls = _records(args.rows, args.batch, t0)

    log = PredictionLog(root, flush_interval_s=1.0, roll_interval_s=10.0)
    per_call = []
    start = time.perf_counter()
    for c in calls:
        s = time.perf_counter_ns()
        log.submit(c)
        per_call.append(time.perf_counter_ns() - s)
    submitted = time.perf_counter() - start
    log.close()
    total = time.perf_counter() - start
    per_call_ns = np.array(per_call)
    print(f"submit(): {len(calls):,} calls of {args.batch} records: median {np.median(per_call_ns):.0f} ns, "
          f"p99 {np.percentile(per_call_ns, 99):.0f} ns per call "
          f"({submitted / args.rows * 1e9:.0f} ns per record incl. the caller's loop)")
    print(f"writer: {args.rows:,} records journaled + in Parquet in {total:.2f}s = {args.rows / total:,.0f} records/s "
          f"(stats {log.stats()})")

    s = time.perf_counter()
    n = count_predictions(root, "bench", since=t0, until=t0 + timedelta(days=1))
    print(f"count a day ({n:,} rows): {time.perf_counter() - s:.3f}s")
    con = open_view(root, "bench", since=t0, until=t0 + timedelta(days=1))
    s = time.perf_counter()
    rows = con.sql("SELECT model_version, count(*), avg(latency_ms), avg(f_x0), avg(proba_1), "
                   "quantile_cont(f_x1, 0.5) FROM predictions GROUP BY 1 ORDER BY 1").fetchall()
    print(f"aggregate a day by model version (count, avg latency, avg feature, median feature): "
          f"{time.perf_counter() - s:.3f}s -> {len(rows)} groups")
    s = time.perf_counter()
    hourly = con.sql("SELECT date_trunc('hour', ts) h, count(*) FROM predictions GROUP BY 1").to_arrow_table()
    print(f"hourly counts: {time.perf_counter() - s:.3f}s -> {hourly.num_rows} hours")
    con.close()
    s = time.perf_counter()
    df = query_predictions(root, "bench", since=t0, until=t0 + timedelta(days=1),
                           columns=["ts", "model_version", "f_x0", "f_x1", "prediction", "proba_1"])
    print(f"load 6 columns of a day into pandas ({len(df):,} rows): {time.perf_counter() - s:.3f}s")
    files = list(root.glob("endpoint=bench/*/*/*.parquet"))
    print(f"files: {len(files)}; bytes: {sum(f.stat().st_size for f in files) / 1e6:.1f} MB in {root}")


if __name__ == "__main__":
    main()
