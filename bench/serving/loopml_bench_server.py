"""Serve the anchor benchmark's model file with loopml's server (bench only).

Usage: python loopml_bench_server.py MODELS_DIR MODEL(hgb|lr) PORT [--workers K] [--no-log]
       [--max-batch-size N] [--max-batch-wait-ms MS] [--no-validate]

The model is the same joblib file the peers serve (make_model.py). It gets a
contract like the registry would store: 30 float features named after the
breast_cancer columns, not nullable, with min/max from the training data
widened by 50%, so validation (types, NaN, ranges) runs on every request.
The prediction log is ON by default: ``loopml.predictions.open_prediction_log`` when it
exists, else :class:`ParquetBenchSink` below (a background thread writing
Parquet every second), so the server pays for handing records over.
"""

from __future__ import annotations

import argparse
import functools
import json
import queue
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BenchModel:
    name: str
    version: int
    estimator: Any
    signature: dict[str, Any] | None
    task: str | None
    record: Any = None


class ParquetBenchSink:
    """Stand-in for the prediction log: queue on submit, write Parquet off the request path."""

    def __init__(self, folder: Path, flush_s: float = 1.0) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.flush_s = flush_s
        self.oldest: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="bench-sink")
        self._thread.start()
        self.files = 0

    def submit(self, records: list[Any]) -> None:
        if self.oldest is None:
            self.oldest = time.time()
        self.q.put(records)

    def lag_seconds(self) -> float:
        return 0.0 if self.oldest is None else time.time() - self.oldest

    def _drain(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        batches = []
        while True:
            try:
                batches.append(self.q.get_nowait())
            except queue.Empty:
                break
        self.oldest = None
        recs = [r for b in batches for r in b if r.inputs is not None]
        if not recs:
            return
        names = list(recs[0].inputs.keys())
        cols: dict[str, Any] = {}
        mats = [r.inputs.matrix if hasattr(r.inputs, "matrix") else np.column_stack([r.inputs[n] for n in names])
                for r in recs]
        block = np.concatenate(mats)
        counts = [m.shape[0] for m in mats]
        cols["request_id"] = np.repeat([r.request_id for r in recs], counts)
        cols["ts"] = np.repeat(np.array([r.ts.timestamp() for r in recs]), counts)
        cols["model_version"] = np.repeat([r.model_version for r in recs], counts)
        cols["latency_ms"] = np.repeat([r.latency_ms for r in recs], counts)
        for j, n in enumerate(names):
            cols[n] = block[:, j]
        proba = [r.outputs["predict_proba"] for r in recs if r.outputs and "predict_proba" in r.outputs]
        if len(proba) == len(recs):
            p = np.concatenate(proba)
            for k in range(p.shape[1]):
                cols[f"proba_{k}"] = p[:, k]
        pq.write_table(pa.table(cols), self.folder / f"part-{self.files:06d}.parquet")
        self.files += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.flush_s):
            self._drain()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._drain()


def build(models_dir: str, model: str, validate: bool, log: bool, overrides: dict[str, Any]) -> Any:
    import joblib

    from loopml.serve import create_app

    est = joblib.load(Path(models_dir) / f"{model}.joblib")
    names = json.loads((Path(models_dir) / "feature_names.json").read_text())
    x = np.load(Path(models_dir) / "X.npy")
    signature = None
    if validate:
        lo, hi = x.min(axis=0), x.max(axis=0)
        span = hi - lo
        signature = {"version": 1, "columns": {
            n: {"type": "float", "nullable": False, "min": float(lo[j] - 0.5 * span[j]),
                "max": float(hi[j] + 0.5 * span[j])} for j, n in enumerate(names)}}
    sink = None
    if log:
        try:
            from loopml.predictions import open_prediction_log
        except ImportError:
            sink = ParquetBenchSink(Path(f"/tmp/loopml-bench/serving/predlog-{model}-{time.time_ns()}"))
        else:
            from loopml.workspace import init_workspace

            sink = open_prediction_log(init_workspace(f"/tmp/loopml-bench/serving/ws-{model}"))
    return create_app(BenchModel(model, 1, est, signature, "classification"), sink=sink, settings=overrides)


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("models_dir")
    p.add_argument("model")
    p.add_argument("port", type=int)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--no-log", action="store_true")
    p.add_argument("--no-validate", action="store_true")
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--max-batch-wait-ms", type=float, default=2.0)
    p.add_argument("--max-queue", type=int, default=256)
    a = p.parse_args(argv)
    from loopml.serve import run_server

    factory = functools.partial(build, a.models_dir, a.model, not a.no_validate, not a.no_log,
                                {"max_batch_size": a.max_batch_size, "max_batch_wait_ms": a.max_batch_wait_ms,
                                 "max_queue": a.max_queue})
    run_server(factory, host="127.0.0.1", port=a.port, workers=a.workers)


if __name__ == "__main__":
    main(sys.argv[1:])
