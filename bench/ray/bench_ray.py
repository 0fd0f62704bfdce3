"""Ray vs in-process: batch scoring of a large Parquet file, and a 40-trial search.

    python bench/ray/bench_ray.py score  --rows 10000000 --mode inprocess
    python bench/ray/bench_ray.py score  --rows 10000000 --mode ray
    python bench/ray/bench_ray.py search --trials 40 --mode inprocess
    python bench/ray/bench_ray.py search --trials 40 --mode ray
    bash bench/ray/run.sh            # all four, one JSON line each, into bench/ray/results.jsonl

Each run is one process. Memory is sampled every 0.2 s from /proc: the peak RSS
of this process (the driver) and the peak sum of RSS over this process and
every descendant (Ray's raylet, workers and actors; the plasma object store is
shared memory, counted in the RSS of each process that touches it, so the sum
is an upper bound). A local Ray is started with ``num_cpus`` = the machine's
cores and a 1 GiB object store, so memory stays bounded whatever the file size.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

CONTRACT = {
    "version": 1,
    "columns": {
        "tenure": {"type": "float", "nullable": False, "min": 0.0, "max": 100.0},
        "visits": {"type": "int", "nullable": True},
        "plan": {"type": "category", "nullable": False, "categories": ["basic", "pro"], "unseen": "reject"},
    },
}


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(entry))
    return kids


class MemorySampler(threading.Thread):
    """Peak RSS of this process and of its whole process tree."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_self = 0
        self.peak_tree = 0
        self.stop = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.is_set():
            kids = _children()
            tree, todo = [], [me]
            while todo:
                pid = todo.pop()
                tree.append(pid)
                todo.extend(kids.get(pid, []))
            self.peak_self = max(self.peak_self, _rss_kb(me))
            self.peak_tree = max(self.peak_tree, sum(_rss_kb(p) for p in tree))
            time.sleep(0.2)


def _make_input(path: Path, rows: int) -> None:
    """``rows`` rows in row groups of 1,000,000, written in chunks (never whole in memory)."""
    writer = None
    rng = np.random.default_rng(0)
    chunk = 1_000_000
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        tenure = rng.uniform(0, 100, n).round(2)
        tenure[rng.random(n) < 0.001] = 140.0  # ~0.1% rejects
        table = pa.table({
            "id": np.arange(start, start + n), "tenure": tenure, "visits": rng.integers(0, 20, n),
            "plan": rng.choice(["basic", "pro"], n),
        })
        writer = writer or pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table)
    assert writer is not None
    writer.close()


def _workspace(root: Path):  # type: ignore[no-untyped-def]
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from loopml.register import register_model
    from loopml.workspace import init_workspace

    ws = init_workspace(root / "ws", actor="bench")
    rng = np.random.default_rng(1)
    train = pd.DataFrame({"tenure": rng.uniform(0, 100, 2000), "visits": rng.integers(0, 20, 2000),
                          "plan": rng.choice(["basic", "pro"], 2000)})
    pipe = make_pipeline(
        ColumnTransformer([("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough"),
        LogisticRegression(max_iter=500),
    ).fit(train, (train["tenure"] < 30).astype(int))
    register_model(ws, "churn", pipe, signature=CONTRACT, task="classification")
    return ws


def _start_ray() -> None:
    import ray

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             object_store_memory=1 << 30)


def bench_score(rows: int, mode: str, batch_rows: int, data_dir: Path) -> dict:
    src = data_dir / f"input-{rows}.parquet"
    if not src.exists():
        _make_input(src, rows)
    with tempfile.TemporaryDirectory(dir=data_dir) as tmp:
        ws = _workspace(Path(tmp))
        sampler = MemorySampler()
        sampler.start()
        t0 = time.perf_counter()
        if mode == "ray":
            from loopml.serve.batch_ray import score_file_ray

            _start_ray()
            t_ray = time.perf_counter()
            result = score_file_ray(ws, "churn/1", src, Path(tmp) / "out.parquet", batch_rows=batch_rows)
        else:
            from loopml.serve.batch import score_file

            t_ray = t0
            result = score_file(ws, "churn/1", src, Path(tmp) / "out.parquet", batch_rows=batch_rows)
        seconds = time.perf_counter() - t0
        sampler.stop.set()
        sampler.join()
        return {"bench": "score", "mode": mode, "rows": rows, "batch_rows": batch_rows, "cores": os.cpu_count(),
                "seconds": round(seconds, 2), "seconds_without_ray_start": round(time.perf_counter() - t_ray - 0, 2)
                if mode == "ray" else round(seconds, 2),
                "rows_per_s": round(rows / seconds), "rows_scored": result.rows_scored,
                "rows_rejected": result.rows_rejected, "peak_rss_driver_mb": sampler.peak_self // 1024,
                "peak_rss_tree_mb": sampler.peak_tree // 1024, "input_mb": round(src.stat().st_size / 2**20, 1)}


def bench_search(trials: int, mode: str) -> dict:
    from sklearn.datasets import make_classification

    from loopml.train import search

    X, y = make_classification(n_samples=20_000, n_features=20, n_informative=10, random_state=0)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(20)]).assign(y=y)
    train, val = df.iloc[:16_000], df.iloc[16_000:]
    space = {"max_depth": {"type": "int", "low": 2, "high": 8},
             "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
             "max_iter": {"type": "categorical", "choices": [50, 100]}}
    sampler = MemorySampler()
    sampler.start()
    t0 = time.perf_counter()
    if mode == "ray":
        _start_ray()
    t_ray = time.perf_counter()
    result = search(train, val, target="y", estimator="sklearn.ensemble.HistGradientBoostingClassifier",
                    space=space, n_trials=trials, metric="roc_auc", seed=0, base_params={"early_stopping": False},
                    executor=None if mode == "inprocess" else "ray")
    seconds = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    states = [t.state for t in result.trials]
    return {"bench": "search", "mode": mode, "trials": trials, "cores": os.cpu_count(), "seconds": round(seconds, 2),
            "seconds_without_ray_start": round(time.perf_counter() - t_ray, 2), "best_value": round(result.best_value, 4),
            "complete": states.count("complete"), "pruned": states.count("pruned"),
            "peak_rss_driver_mb": sampler.peak_self // 1024, "peak_rss_tree_mb": sampler.peak_tree // 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["score", "search"])
    parser.add_argument("--mode", choices=["inprocess", "ray"], required=True)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--batch-rows", type=int, default=262_144)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "loopml-bench-ray")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    if args.what == "score":
        out = bench_score(args.rows, args.mode, args.batch_rows, args.data_dir)
    else:
        out = bench_search(args.trials, args.mode)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
