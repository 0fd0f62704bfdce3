"""What one rollout look costs to read its step's window, as the step grows: a full query vs a WindowTail.

    python bench/rollout/bench_look_read.py [--minutes 1 5 10 30] [--rate 100] [--looks 10]

Rows arrive at ``--rate`` requests a second and reach Parquet as one file per 10 s (the log's roll
interval). For each step length, the window is built, then each look adds the next 10 s file and reads
the window: the full read (``query_predictions``, what every look did before) and the incremental one
(a ``WindowTail`` that has read the earlier looks), alternated, CPU and wall, median of ``--looks``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from loopml.predictions import PredictionLog, WindowTail, query_predictions
from loopml.workspace import init_workspace

COLUMNS = ["request_id", "ts", "model_version", "status", "latency_ms", "prediction"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 5, 10, 30])
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--looks", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    per_file = args.rate * 10
    with tempfile.TemporaryDirectory() as tmp:
        ws = init_workspace(Path(tmp) / "ws", actor="bench")
        t0 = datetime.now(UTC) - timedelta(hours=2)
        written = 0

        def add_file() -> None:
            nonlocal written
            k = per_file
            with PredictionLog(ws) as log:  # closing commits: one Parquet file per call
                log.submit({"request_id": [f"r{written}-{i}" for i in range(k)],
                            "ts": [t0 + timedelta(seconds=written * 10 + i * 10 / k) for i in range(k)],
                            "endpoint": "e", "model_name": "m", "model_version": rng.integers(1, 3, k),
                            "latency_ms": rng.gamma(2.0, 5.0, k), "status": 200, "error": None,
                            "inputs": {"a": rng.normal(size=k), "b": rng.normal(size=k)},
                            "outputs": {"prediction": rng.integers(0, 2, k)}})
            written += 1

        def timed(read) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
            w, c = time.perf_counter(), time.process_time()
            rows = len(read())
            return time.perf_counter() - w, time.process_time() - c, rows

        print(f"{'step':>6} {'rows':>8} {'full ms CPU':>12} {'tail ms CPU':>12} {'full ms wall':>13} "
              f"{'tail ms wall':>13} {'CPU ratio':>10}")
        tail = WindowTail(ws, "e", t0, COLUMNS)
        for minutes in args.minutes:
            while written < max(1, minutes * 6 - args.looks):
                add_file()
            tail.read()  # the tail has followed the step so far
            full, inc = [], []
            for _ in range(args.looks):
                add_file()
                a = timed(lambda: query_predictions(ws, "e", since=t0, columns=COLUMNS))
                b = timed(tail.read)
                assert a[2] == b[2], (a, b)
                full.append(a)
                inc.append(b)
            fc, ic = statistics.median(x[1] for x in full), statistics.median(x[1] for x in inc)
            fw, iw = statistics.median(x[0] for x in full), statistics.median(x[0] for x in inc)
            print(f"{minutes:>5g}m {full[-1][2]:>8,} {fc * 1000:>12.1f} {ic * 1000:>12.1f} {fw * 1000:>13.1f} "
                  f"{iw * 1000:>13.1f} {fc / ic:>9.1f}x")


if __name__ == "__main__":
    main()
