"""Hyper-parameter search with trials fanned out over a Ray cluster.

The driver keeps the Optuna study and talks to it through ask/tell; workers
only fit and score. Each *rung* of a trial (the training rows grown 1/4, 1/2,
all, as in :func:`loopml.train.search`) is one Ray task: when a rung ends, the
driver reports its value to the trial and asks the pruner; a trial that is not
pruned gets its next rung. So pruning sees the same intermediate values as
in-process, while up to ``max_parallel`` trials are in flight. The training
rungs and the validation frame are put in the object store once and shared by
every task; a trial's fitted model stays in the object store and only the best
one is fetched. ``on_trial`` is called on the driver when each trial ends (in
the order they end), so trials stay tracked child runs.

TPE runs with ``constant_liar`` so that parallel asks do not all sample the same
point; with trials ending in a nondeterministic order, a parallel search is not
bit-for-bit reproducible, unlike the in-process one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from loopml.kernel.exceptions import MissingExtraError, TrainingError, ValidationError
from loopml.train._estimator import PreprocessMode, train_model
from loopml.train._scoring import score
from loopml.train._search import (
    SearchResult,
    TrialResult,
    TrialState,
    _import_optuna,
    _make_pruner,
    _prepare,
    _rungs,
)

__all__ = ["search_on_ray"]


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingExtraError("ray", "ray", "hyper-parameter search on Ray") from exc
    return ray


def _fit_rung(
    rows: pd.DataFrame,
    validation_df: pd.DataFrame,
    params: dict[str, Any],
    spec: dict[str, Any],
) -> tuple[tuple[str, Any], Any]:
    """One rung of one trial on a worker: ``(("ok", value) | ("failed", msg) | ("fatal", exc), model)``."""
    try:
        model = train_model(
            rows, target=spec["target"], estimator=spec["estimator"], params=params, features=spec["features"],
            preprocess=spec["preprocess"], seed=spec["seed"],
        )
        value = score(model, validation_df, spec["target"], spec["metric"], spec["positive_label"])
        if not math.isfinite(value):
            raise TrainingError(f"metric {spec['metric']!r} is not finite ({value})")
    except (TrainingError, ValidationError) as exc:
        # Only what the sampled values can cause fails a trial (as in-process).
        if isinstance(exc, ValidationError) and exc.rule != "construct":
            return ("fatal", exc), None
        return ("failed", str(exc)), None
    except Exception as exc:  # a bug or a broken estimator stops the search, as in-process
        return ("fatal", exc), None
    return ("ok", float(value)), (model if spec["keep_model"] else None)


@dataclass
class _Trial:
    trial: Any
    sampled: dict[str, Any]
    t0: float
    rung: int = 0
    steps: list[float] = field(default_factory=list)
    model_ref: Any = None


def search_on_ray(
    train_df: pd.DataFrame,
    validation_df: pd.DataFrame | None,
    *,
    target: str,
    estimator: str,
    space: Mapping[str, Any],
    n_trials: int = 20,
    metric: str,
    direction: Literal["maximize", "minimize"] | None = None,
    seed: int = 0,
    on_trial: Callable[[TrialResult], None] | None = None,
    pruner: Any = True,
    base_params: Mapping[str, Any] | None = None,
    features: Sequence[str] | None = None,
    preprocess: PreprocessMode = "auto",
    positive_label: Any = None,
    timeout_s: float | None = None,
    address: str | None = None,
    max_parallel: int | None = None,
    trial_resources: Mapping[str, float] | None = None,
) -> SearchResult:
    """:func:`loopml.train.search` with trials as Ray tasks, ``max_parallel`` at once.

    Args:
        address: Ray to join when this process has not started one (``None``:
            a local Ray; ``"auto"``; ``"ray://HOST:PORT"``).
        max_parallel: trials in flight (default: the cluster's CPUs divided by
            the CPUs of one trial).
        trial_resources: Ray options of one rung task (default ``{"num_cpus": 1}``).

    Raises: as :func:`loopml.train.search`, plus ``MissingExtraError`` without ray.
    """
    prep = _prepare(train_df, validation_df, target=target, estimator=estimator, space=space, n_trials=n_trials,
                    metric=metric, direction=direction, base_params=base_params, seed=seed)
    if max_parallel is not None and (not isinstance(max_parallel, int) or max_parallel < 1):
        raise ValidationError(f"max_parallel must be a positive integer; got {max_parallel!r}",
                              field="max_parallel", rule="range")
    optuna = _import_optuna()
    from optuna.trial import TrialState as OptunaState

    ray = _import_ray()
    if not ray.is_initialized():
        ray.init(address=address, ignore_reinit_error=True,
                 **({} if address and address.startswith("ray://") else {"include_dashboard": False}))
    options = {"num_cpus": 1, **dict(trial_resources or {})}
    if max_parallel is None:
        cpus = float(ray.cluster_resources().get("CPU", 1))
        max_parallel = max(1, int(cpus // max(float(options["num_cpus"]), 1e-9)))
    remote = ray.remote(_fit_rung).options(num_returns=2, max_retries=0, **options)

    study = optuna.create_study(
        direction=prep.direction, sampler=optuna.samplers.TPESampler(seed=seed, constant_liar=True),
        pruner=_make_pruner(optuna, pruner),
    )
    distributions = {name: spec.to_distribution() for name, spec in prep.specs.items()}
    rungs = _rungs(prep.train_df, target, prep.task, pruner is not False and pruner is not None, seed)
    rung_refs = [ray.put(r) for r in rungs]
    validation_ref = ray.put(prep.validation_df)
    spec = {"target": target, "estimator": estimator, "features": features, "preprocess": preprocess,
            "seed": seed, "metric": metric, "positive_label": positive_label}
    last = len(rungs) - 1

    def submit(t: _Trial) -> Any:
        outcome, model = remote.remote(rung_refs[t.rung], validation_ref, {**prep.fixed, **t.sampled},
                                       {**spec, "keep_model": t.rung == last})
        t.model_ref = model
        return outcome

    pending: dict[Any, _Trial] = {}
    trials: list[TrialResult] = []
    best: tuple[float, int, dict[str, Any], Any] | None = None
    first_error: str | None = None
    asked = 0
    started = time.monotonic()
    try:
        while True:
            while (len(pending) < max_parallel and asked < n_trials
                   and (timeout_s is None or time.monotonic() - started <= timeout_s)):
                trial = study.ask(distributions)
                asked += 1
                t = _Trial(trial, dict(trial.params), time.perf_counter())
                pending[submit(t)] = t
            if not pending:
                break
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                t = pending.pop(ref)
                kind, payload = ray.get(ref)
                state: TrialState | None = None
                error: str | None = None
                if kind == "fatal":
                    raise payload
                if kind == "failed":
                    state, error = "failed", payload
                    first_error = first_error or error
                    study.tell(t.trial, state=OptunaState.FAIL)
                else:
                    t.steps.append(payload)
                    if t.rung < last:
                        t.trial.report(payload, t.rung)
                        if t.trial.should_prune():
                            state = "pruned"
                            study.tell(t.trial, state=OptunaState.PRUNED)
                        else:
                            t.rung += 1
                            pending[submit(t)] = t
                            continue
                    else:
                        state = "complete"
                        study.tell(t.trial, payload)
                result = TrialResult(
                    number=t.trial.number, params=t.sampled,
                    value=t.steps[-1] if t.steps and state != "failed" else None, state=state,
                    duration_s=time.perf_counter() - t.t0, error=error, steps=tuple(t.steps),
                )
                trials.append(result)
                if state == "complete":
                    value = t.steps[-1]
                    if best is None or (value > best[0] if prep.direction == "maximize" else value < best[0]):
                        best = (value, t.trial.number, t.sampled, t.model_ref)
                if on_trial is not None:
                    on_trial(result)
    finally:
        for ref in pending:  # stopped early (an error, or on_trial raised): free the cluster
            ray.cancel(ref)
    if best is None:
        raise TrainingError(
            f"search over {estimator!r}: none of {len(trials)} trials completed; first error: {first_error}"
        )
    return SearchResult(
        metric=metric,
        direction=prep.direction,
        best_params=best[2],
        best_value=best[0],
        best_trial=best[1],
        best_model=ray.get(best[3]),
        trials=tuple(sorted(trials, key=lambda r: r.number)),
    )
