"""A monitor over a day of prediction log: 1,000,000 logged rows, 20 features.

Writes the rows in the prediction log's exact layout (hour partitions, one file
per hour, as the writer leaves them after compaction), registers a model whose
reference profile is already stored, then times ``run_monitor`` (default checks:
schema, data drift, prediction drift, quality, outliers, health). Prints the
seconds of the run and the peak RSS of the process.

    python bench/monitor/bench_monitor_day.py [--rows 1000000] [--features 20] [--dir /tmp/bench-monitor]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa


def _peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 1024 / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--dir", default="/tmp/bench-monitor")
    ap.add_argument("--drift", action="store_true", help="shift half of the features")
    args = ap.parse_args()

    from sklearn.dummy import DummyClassifier

    from loopml.monitor import run_monitor
    from loopml.monitor.drift import profile_frame
    from loopml.predictions._files import resolve_root, write_partitioned
    from loopml.predictions._schema import TS_TYPE
    from loopml.register import register_model
    from loopml.workspace import init_workspace

    root = Path(args.dir)
    shutil.rmtree(root, ignore_errors=True)
    ws = init_workspace(root, actor="bench")
    rng = np.random.default_rng(0)
    names = [f"x{i}" for i in range(args.features)]

    t = time.perf_counter()
    train = pd.DataFrame({n: rng.normal(0, 1, 100_000) for n in names})
    train["y"] = rng.integers(0, 2, 100_000)
    model = DummyClassifier().fit(train[names[:1]], train["y"])
    register_model(ws, "bench", model, profile=profile_frame(train), aliases=["champion"],
                   evaluation={"task": "classification", "target": "y", "n_rows": 100_000, "metrics": {"accuracy": 0.5}},
                   signature={"version": 1, "columns": {n: {"type": "float", "nullable": False} for n in names},
                              "target": "y"})
    print(f"reference profile + registration: {time.perf_counter() - t:.2f}s (done once, at training time)")

    t = time.perf_counter()
    day = datetime(2024, 5, 1, tzinfo=UTC)
    n = args.rows
    per_hour = n // 24
    for h in range(24):
        k = per_hour if h < 23 else n - per_hour * 23
        ts = (np.datetime64(day.replace(tzinfo=None), "us") + np.timedelta64(h, "h")
              + (np.sort(rng.integers(0, 3_600_000_000, k))).astype("timedelta64[us]"))
        cols: dict[str, pa.Array] = {
            "request_id": pa.array([f"r{h}-{i}" for i in range(k)]),
            "row": pa.array(np.zeros(k, dtype=np.int32)),
            "ts": pa.array(ts, type=pa.timestamp("us")).cast(TS_TYPE),
            "endpoint": pa.array(["bench"] * k),
            "model_name": pa.array(["bench"] * k),
            "model_version": pa.array(np.ones(k, dtype=np.int64)),
            "latency_ms": pa.array(rng.gamma(2.0, 4.0, k)),
            "status": pa.array(np.where(rng.random(k) < 0.002, 500, 200).astype(np.int64)),
            "error": pa.nulls(k, pa.string()),
        }
        for j, name in enumerate(names):
            shift = 0.5 if args.drift and j % 2 == 0 else 0.0
            cols[f"f_{name}"] = pa.array(rng.normal(shift, 1, k))
        cols["inputs_json"] = pa.nulls(k, pa.string())
        cols["prediction"] = pa.array(rng.integers(0, 2, k).astype(np.int64))
        cols["proba_1"] = pa.array(rng.random(k))
        cols["outputs_json"] = pa.nulls(k, pa.string())
        write_partitioned(resolve_root(ws), pa.table(cols), f"bench{h:02d}")
    print(f"wrote {n:,} logged rows x {args.features} features in 24 hour partitions: {time.perf_counter() - t:.1f}s")

    rss_before = _peak_rss_mb()
    now = day + timedelta(days=1)
    t = time.perf_counter()
    rec = run_monitor(ws, "bench", now=now)
    secs = time.perf_counter() - t
    print(f"run_monitor over the day: {secs:.2f}s  status={rec.status}  rows={rec.n_rows:,}  "
          f"timings={rec.report.get('timings')}")
    print("checks: " + ", ".join(f"{k}={v['status']} ({v['duration_s']:.2f}s)" for k, v in rec.checks.items()))
    print(f"peak RSS: {_peak_rss_mb():.0f} MB (before the run: {rss_before:.0f} MB)")
    t = time.perf_counter()
    rec2 = run_monitor(ws, "bench", now=now)
    print(f"second run (warm caches): {time.perf_counter() - t:.2f}s status={rec2.status}")


if __name__ == "__main__":
    main()
