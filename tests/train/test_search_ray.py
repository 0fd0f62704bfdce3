"""search on Ray: trials fan out as Ray tasks, pruning on the driver, on_trial per trial (local Ray, 2 CPUs)."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'loopml[ray]')")

from loopml.kernel.exceptions import ValidationError
from loopml.train import TrialResult, search, split_frame

HERE = Path(__file__).parent
HGB_C = "sklearn.ensemble.HistGradientBoostingClassifier"
SPACE = {
    "max_depth": {"type": "int", "low": 2, "high": 8},
    "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
    "max_iter": {"type": "categorical", "choices": [10, 30]},
}


class BarrierClassifier(LogisticRegression):
    """A classifier whose ``fit`` waits until ``parties`` fits are running at once (proves parallel trials)."""

    def __init__(self, *, barrier_dir: str = "", parties: int = 2, C: float = 1.0, max_iter: int = 200) -> None:
        super().__init__(C=C, max_iter=max_iter)
        self.barrier_dir = barrier_dir
        self.parties = parties

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BarrierClassifier:
        if self.barrier_dir:
            Path(self.barrier_dir, f"{os.getpid()}-{uuid.uuid4().hex}").write_text("")
            deadline = time.time() + 30
            while len(os.listdir(self.barrier_dir)) < self.parties:
                if time.time() > deadline:
                    raise RuntimeError(f"waited 30s for {self.parties} fits at once: trials did not run in parallel")
                time.sleep(0.01)
        return super().fit(X, y, sample_weight=sample_weight)


class OddPruner:
    """Prunes every odd-numbered trial at its first report (an Optuna pruner by duck typing)."""

    def prune(self, study: Any, trial: Any) -> bool:
        return trial.number % 2 == 1


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    path = os.pathsep.join([str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def parts() -> tuple[pd.DataFrame, pd.DataFrame]:
    df = load_breast_cancer(as_frame=True).frame
    s = split_frame(df, method="stratified", target="target", test_size=0.2, validation_size=0.2, seed=0)
    assert s.validation is not None
    return s.train, s.validation


def test_trials_run_in_parallel_on_ray_and_on_trial_fires_on_the_driver(
    ray_cluster: None, parts: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train, val = parts
    seen: list[tuple[TrialResult, str]] = []
    result = search(
        train, val, target="target", estimator="test_search_ray.BarrierClassifier",
        space={"C": {"type": "float", "low": 0.1, "high": 10.0, "log": True}}, n_trials=2, metric="roc_auc",
        base_params={"barrier_dir": str(tmp_path)}, pruner=False, executor="ray", max_parallel=2,
        on_trial=lambda t: seen.append((t, threading.current_thread().name)),
    )
    assert len(os.listdir(tmp_path)) == 2  # both fits met at the barrier: they ran at the same time
    assert sorted(t.number for t, _ in seen) == [0, 1]
    assert {name for _, name in seen} == {threading.current_thread().name}  # called here, on the driver
    assert result.trials == tuple(sorted((t for t, _ in seen), key=lambda t: t.number))
    assert result.best_value == max(t.value for t, _ in seen)  # type: ignore[type-var]
    assert isinstance(result.best_model.estimator.steps[-1][1] if hasattr(result.best_model.estimator, "steps")
                      else result.best_model.estimator, BarrierClassifier)


def test_pruning_runs_on_the_driver_between_rungs(ray_cluster: None, parts: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, val = parts
    seen: list[TrialResult] = []
    result = search(train, val, target="target", estimator=HGB_C, space=SPACE, n_trials=6, metric="roc_auc",
                    seed=0, pruner=OddPruner(), on_trial=seen.append, executor="ray")
    states = {t.number: (t.state, len(t.steps)) for t in seen}
    # 341 training rows: rungs of 1/2 and all (a 1/4 rung would be under 100 rows)
    assert states == {n: ("pruned", 1) if n % 2 else ("complete", 2) for n in range(6)}
    assert result.best_trial % 2 == 0
    assert result.best_value == max(t.value for t in seen if t.state == "complete")  # type: ignore[type-var]


def test_failed_trials_are_recorded_and_trials_become_child_runs(
    ray_cluster: None, parts: tuple[pd.DataFrame, pd.DataFrame], sqlite_workspace: Any
) -> None:
    from loopml.tracking import list_runs, start_run

    train, val = parts
    space = {"max_depth": {"type": "categorical", "choices": [-1, 3]}, "max_iter": {"type": "int", "low": 5, "high": 10}}
    with start_run(sqlite_workspace, "search", kind="step") as parent:
        def record(trial: TrialResult) -> None:
            with start_run(sqlite_workspace, f"trial-{trial.number}", kind="trial", parent_id=parent.id) as run:
                run.log_params({k: str(v) for k, v in trial.params.items()})
                run.set_tag("state", trial.state)

        result = search(train, val, target="target", estimator=HGB_C, space=space, n_trials=6, metric="accuracy",
                        seed=1, on_trial=record, pruner=False, executor="ray")
    children = list_runs(sqlite_workspace, kind="trial", parent_id=parent.id)
    assert len(children) == 6
    states = {t.params["max_depth"]: t.state for t in result.trials}
    assert states == {-1: "failed", 3: "complete"}
    assert next(t for t in result.trials if t.state == "failed").error is not None


def test_a_bad_search_executor_is_named() -> None:
    with pytest.raises(ValidationError, match=r"search executor 'dask' is unknown; allowed: inprocess, ray"):
        search(pd.DataFrame({"x": [1.0], "y": [0]}), None, target="y", estimator=HGB_C, space=SPACE,
               metric="accuracy", executor="dask")
