#!/usr/bin/env python3
"""loopml side of the tracking/registry benchmark: the MLflow anchor's workloads, same JSON.

Runs ``bench_mlflow.py`` (a verbatim copy of ``shared/bench/tracking/bench_mlflow.py``,
next to this file) with :class:`LoopmlAdapter`, so workloads a, b, c (and d once
``loopml.register`` has ``register_model``) are timed by the same code and
``summarize.py`` can put both JSON files side by side:

    python bench/tracking/bench_loopml.py --json /tmp/loopml-bench/tracking/loopml.json
    python bench/tracking/bench_loopml.py --only a,b --repeats 5

Mapping (loopml has no separate "log model" step: a model is registered from
the object itself):
  create_experiment       an experiment is a name: returns it (no database work)
  start_run / end_run     loopml.tracking.start_run(...) / ActiveRun.end()
  log_metric(s)/params    ActiveRun methods (write-behind buffer, default settings)
  log_batch_metrics       loopml.tracking.log_batch(ws, run_id, metrics=...), synchronous
  get_metric_history      loopml.tracking.metric_history
  create_run_bulk         start_run + log_params + log_metrics + set tags + end
  search_runs(_df)        list_runs(...) -> RunRecords / runs_dataframe(...) -> DataFrame
  log_model               the pickled model stored as a run artifact (CAS, fsync'd)
  register_model          loopml.register.register_model(ws, name, model, run_id=...)
  set_alias / load_model  loopml.register.set_alias / load_model(ws, "name@alias"),
                          with the in-process model cache cleared before each load
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


class LoopmlAdapter:
    """bench_mlflow.Adapter for loopml (embedded SQLite workspace, local artifacts)."""

    name = "loopml"
    import_statement = "import loopml.tracking"
    http_url: str | None = None

    def setup(self, args: Any, workdir: str) -> None:
        from loopml import tracking
        from loopml.workspace import init_workspace

        self.t = tracking
        t0 = time.perf_counter()
        self.ws = init_workspace(os.path.join(workdir, "ws"), actor="bench")
        self.startup = {"first_store_touch": time.perf_counter() - t0}
        self.run: Any = None
        self.last_model: Any = None
        try:
            from loopml import register
        except ImportError:
            register = None
        self.register = register if register is not None and hasattr(register, "register_model") else None
        self.info = {"db": self.ws.store.url, "flush_interval_s": tracking.FLUSH_INTERVAL_S,
                     "flush_max_points": tracking.FLUSH_MAX_POINTS}

    def teardown(self) -> None:
        if self.run is not None:
            self.run.end()
        self.ws.store.dispose()

    # ---- tracking
    def create_experiment(self, name: str) -> str:
        return name

    def start_run(self, experiment_id: str) -> str:
        self.run = self.t.start_run(self.ws, experiment=experiment_id)
        return self.run.id

    def end_run(self) -> None:
        self.run.end()
        self.run = None

    def log_params(self, params: dict[str, Any]) -> None:
        self.run.log_params(params)

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        self.run.log_metrics(metrics, step=step)

    def log_metric(self, key: str, value: float, step: int) -> None:
        self.run.log_metric(key, value, step)

    def log_batch_metrics(self, run_id: str, points: list[tuple[str, float, int, int]]) -> None:
        self.t.log_batch(self.ws, run_id, metrics=[(k, v, s, ts / 1000.0) for k, v, ts, s in points])

    def get_metric_history(self, run_id: str, key: str) -> int:
        return len(self.t.metric_history(self.ws, run_id, key))

    def create_run_bulk(self, experiment_id: str, params: dict, metrics: dict, tags: dict) -> str:
        with self.t.start_run(self.ws, experiment=experiment_id) as run:
            run.log_params(params)
            run.log_metrics(metrics)
            run.set_tags(tags)
        return run.id

    def search_runs(self, experiment_id: str, filter_string: str, order_by: list[str], max_results: int) -> int:
        return len(self.t.list_runs(self.ws, experiment=experiment_id, filter=filter_string,
                                    order_by=order_by, limit=max_results))

    def search_runs_df(self, experiment_id: str, filter_string: str, order_by: list[str]) -> int:
        return len(self.t.runs_dataframe(self.ws, experiment=experiment_id, filter=filter_string,
                                         order_by=order_by, limit=None))

    # ---- registry (workload d)
    def log_model(self, model: Any, explicit_requirements: bool) -> Any:
        self.run.log_artifact("model.pkl", pickle.dumps(model), media_type="application/x-pickle")
        self.last_model = (model, self.run.id)
        return self.last_model

    def register_model(self, model_uri: Any, name: str) -> int:
        model, run_id = model_uri
        rec = self.register.register_model(self.ws, name, model, run_id=run_id)
        return getattr(rec, "version", rec)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.register.set_alias(self.ws, name, alias, version)

    def load_model(self, uri: str) -> Any:
        self.register.clear_model_cache()  # measure a real load, as MLflow does every time
        return self.register.load_model(self.ws, uri).estimator

    def model_uri_for_alias(self, name: str, alias: str) -> str:
        return f"{name}@{alias}"


def _has_registry() -> bool:
    try:
        from loopml import register
    except ImportError:
        return False
    return all(hasattr(register, n) for n in ("register_model", "set_alias", "load_model"))


def main() -> None:
    spec = importlib.util.spec_from_file_location("bench_mlflow", HERE / "bench_mlflow.py")
    assert spec is not None and spec.loader is not None
    harness = importlib.util.module_from_spec(spec)
    sys.modules["bench_mlflow"] = harness
    spec.loader.exec_module(harness)
    argv = sys.argv[1:]
    if "--only" in argv:
        i = argv.index("--only") + 1
        only = argv[i].split(",")
    else:
        only = ["a", "b", "c", "d", "base", "import"]
        argv += ["--only", ""]
        i = len(argv) - 1
    if "d" in only and not _has_registry():
        print("# loopml.register.register_model not available yet: skipping workload d", flush=True)
        only.remove("d")
    argv[i] = ",".join(only)
    sys.argv = [str(HERE / "bench_mlflow.py"), "--adapter", f"{__file__}:LoopmlAdapter", *argv]
    harness.main()


if __name__ == "__main__":
    main()
