"""Hyper-parameter search with Optuna (TPE, seeded), one callback per trial.

The search space is a YAML-friendly mapping, checked here without Optuna so
a recipe can be validated on a machine without the ``tune`` extra::

    max_depth:     {type: int, low: 2, high: 8}
    learning_rate: {type: float, low: 0.01, high: 0.3, log: true}
    max_iter:      {type: categorical, choices: [100, 200]}

Pruning needs intermediate values, which most scikit-learn estimators do not
report; so each trial is trained on growing shares of the training rows
(1/4, 1/2, all) and scored on the validation frame after each, and Optuna's
median pruner stops trials that trail the others early on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from loopml.kernel.exceptions import (
    MissingExtraError,
    SpecError,
    TrainingError,
    ValidationError,
)
from loopml.train._estimator import (
    PreprocessMode,
    TrainedModel,
    _import_class,
    _init_params,
    build_estimator,
    infer_task,
    train_model,
)
from loopml.train._scoring import check_metric, metric_direction, score
from loopml.train._space import ParamSpec, parse_space

__all__ = ["ParamSpec", "SearchResult", "TrialResult", "parse_space", "search"]

TrialState = Literal["complete", "pruned", "failed"]
_RUNGS = (0.25, 0.5, 1.0)
# A rung below this many rows says too little to prune on.
_MIN_RUNG_ROWS = 100


@dataclass(frozen=True)
class TrialResult:
    """One finished trial, as handed to ``on_trial`` (e.g. to record a child run)."""

    number: int
    params: dict[str, Any]
    value: float | None
    state: TrialState
    duration_s: float
    error: str | None = None
    steps: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "number": self.number,
            "params": dict(self.params),
            "value": self.value,
            "state": self.state,
            "duration_s": self.duration_s,
            "error": self.error,
            "steps": list(self.steps),
        }


@dataclass(frozen=True, eq=False)
class SearchResult:
    """The best trial and every trial.

    ``best_params`` holds the searched values only (as in ``TrialResult.params``);
    ``best_model`` was fitted on all training rows with ``base_params``
    overlaid by them.
    """

    metric: str
    direction: Literal["maximize", "minimize"]
    best_params: dict[str, Any]
    best_value: float
    best_trial: int
    best_model: TrainedModel
    trials: tuple[TrialResult, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (without the model)."""
        return {
            "metric": self.metric,
            "direction": self.direction,
            "best_params": dict(self.best_params),
            "best_value": self.best_value,
            "best_trial": self.best_trial,
            "trials": [t.to_dict() for t in self.trials],
        }


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:
        raise MissingExtraError("optuna", "tune", "hyper-parameter search") from exc
    return optuna


def _rungs(train_df: pd.DataFrame, target: str, task: str, pruning: bool, seed: int) -> list[pd.DataFrame]:
    """Growing prefixes of one fixed shuffle of the training rows (the last is all of them)."""
    if not pruning:
        return [train_df]
    order = np.random.default_rng(seed).permutation(len(train_df))
    shuffled = train_df.iloc[order]
    n_classes = train_df[target].nunique() if task == "classification" else 0
    rungs = []
    for share in _RUNGS[:-1]:
        part = shuffled.iloc[: math.ceil(share * len(train_df))]
        if len(part) < _MIN_RUNG_ROWS or (n_classes and part[target].nunique() < n_classes):
            continue
        rungs.append(part)
    rungs.append(train_df)
    return rungs


def _holdout(train_df: pd.DataFrame, target: str, task: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A validation part carved from the training rows when the caller has none."""
    from loopml.train._split import split_frame

    method = "stratified" if task == "classification" else "random"
    try:
        parts = split_frame(train_df, method=method, target=target, test_size=0.2, seed=seed)
    except ValidationError:
        parts = split_frame(train_df, method="random", target=target, test_size=0.2, seed=seed)
    return parts.train, parts.test


def search(
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
    pruner: bool = True,
    base_params: Mapping[str, Any] | None = None,
    features: Sequence[str] | None = None,
    preprocess: PreprocessMode = "auto",
    positive_label: Any = None,
    timeout_s: float | None = None,
    executor: str | None = None,
    max_parallel: int | None = None,
) -> SearchResult:
    """Search ``space`` for the ``estimator`` params that score best on ``validation_df``.

    Each trial trains with ``base_params`` (fixed) overlaid by the sampled values,
    scores ``metric`` on the validation frame (carved from ``train_df``, 20%,
    when it is None) and calls ``on_trial`` with a :class:`TrialResult`, for
    every trial whatever its state. ``direction`` defaults to the metric's
    own (``maximize`` for roc_auc, ``minimize`` for rmse ...). A trial whose
    params the estimator rejects is recorded as ``failed`` and the search goes
    on; an exception from ``on_trial`` stops the search.

    ``executor="ray"`` (or ``"ray://HOST:PORT"``, ``"ray:auto"``) runs trials as
    Ray tasks, up to ``max_parallel`` at once (default: the cluster's CPUs),
    with the same pruning and the same ``on_trial`` calls, made here on the
    driver as each trial ends (see :func:`loopml.train._search_ray.search_on_ray`).

    Raises:
        MissingExtraError: optuna is not installed (``loopml[tune]``).
        SpecError: a bad space.
        ValidationError: bad metric, direction, n_trials or columns.
        TrainingError: every trial failed.
    """
    if executor not in (None, "inprocess"):
        if not isinstance(executor, str) or not (executor == "ray" or executor.startswith("ray:")):
            raise ValidationError(
                f"search executor {executor!r} is unknown; allowed: inprocess, ray, ray://HOST:PORT",
                field="executor", rule="choice",
            )
        from loopml.train._search_ray import search_on_ray

        return search_on_ray(
            train_df, validation_df, target=target, estimator=estimator, space=space, n_trials=n_trials,
            metric=metric, direction=direction, seed=seed, on_trial=on_trial, pruner=pruner,
            base_params=base_params, features=features, preprocess=preprocess, positive_label=positive_label,
            timeout_s=timeout_s, max_parallel=max_parallel,
            address=None if executor == "ray" else executor if executor.startswith("ray://") else executor[4:],
        )
    prep = _prepare(train_df, validation_df, target=target, estimator=estimator, space=space, n_trials=n_trials,
                    metric=metric, direction=direction, base_params=base_params, seed=seed)
    specs, direction, fixed, train_df, validation_df = (
        prep.specs, prep.direction, prep.fixed, prep.train_df, prep.validation_df)
    optuna = _import_optuna()
    from optuna.trial import TrialState as OptunaState

    study = optuna.create_study(
        direction=direction, sampler=optuna.samplers.TPESampler(seed=seed), pruner=_make_pruner(optuna, pruner)
    )
    distributions = {name: spec.to_distribution() for name, spec in specs.items()}
    rungs = _rungs(train_df, target, prep.task, pruner is not False and pruner is not None, seed)
    return _loop(study, OptunaState, distributions, rungs, validation_df, fixed, n_trials=n_trials,
                 target=target, estimator=estimator, metric=metric, direction=direction, seed=seed,
                 on_trial=on_trial, features=features, preprocess=preprocess, positive_label=positive_label,
                 timeout_s=timeout_s)


@dataclass(frozen=True)
class _Prepared:
    """A checked search: its space, direction, fixed params, task and the two frames."""

    specs: dict[str, ParamSpec]
    direction: Literal["maximize", "minimize"]
    fixed: dict[str, Any]
    task: str
    train_df: pd.DataFrame
    validation_df: pd.DataFrame


def _make_pruner(optuna: Any, pruner: Any) -> Any:
    if pruner is True:
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if pruner is False or pruner is None:
        return optuna.pruners.NopPruner()
    return pruner  # an Optuna pruner object


def _prepare(
    train_df: pd.DataFrame,
    validation_df: pd.DataFrame | None,
    *,
    target: str,
    estimator: str,
    space: Mapping[str, Any],
    n_trials: int,
    metric: str,
    direction: str | None,
    base_params: Mapping[str, Any] | None,
    seed: int,
) -> _Prepared:
    """Every check a search makes before its first trial, wherever the trials run."""
    specs = parse_space(space)
    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1:
        raise ValidationError(f"n_trials must be a positive integer; got {n_trials!r}", field="n_trials", rule="range")
    inferred = metric_direction(metric)
    if direction is None:
        direction = inferred  # type: ignore[assignment]
    elif direction not in ("maximize", "minimize"):
        raise ValidationError(
            f"direction {direction!r} is unknown; allowed: maximize, minimize", field="direction", rule="choice"
        )
    fixed = dict(base_params or {})
    allowed = _init_params(_import_class(estimator))
    if allowed is not None:
        unknown = sorted(set(specs) - allowed)
        if unknown:
            raise SpecError(
                f"search space names parameter(s) {', '.join(map(repr, unknown))} that estimator "
                f"{estimator!r} does not have; allowed: {', '.join(sorted(allowed))}",
                field="space",
                rule="param",
            )
    if target not in train_df.columns:
        raise ValidationError(
            f"target {target!r} is not a column; columns: {', '.join(map(str, train_df.columns))}",
            field="target",
            rule="column",
        )
    task = infer_task(train_df[target], build_estimator(estimator, fixed))
    check_metric(metric, task)
    if validation_df is None:
        train_df, validation_df = _holdout(train_df, target, task, seed)
    elif target not in validation_df.columns:
        raise ValidationError(
            f"validation_df has no target column {target!r}", field="validation_df", rule="column"
        )
    return _Prepared(specs, direction, fixed, task, train_df, validation_df)  # type: ignore[arg-type]


def _loop(
    study: Any,
    OptunaState: Any,  # noqa: N803 - optuna's enum, imported by the caller
    distributions: dict[str, Any],
    rungs: list[pd.DataFrame],
    validation_df: pd.DataFrame,
    fixed: dict[str, Any],
    *,
    n_trials: int,
    target: str,
    estimator: str,
    metric: str,
    direction: str,
    seed: int,
    on_trial: Callable[[TrialResult], None] | None,
    features: Sequence[str] | None,
    preprocess: PreprocessMode,
    positive_label: Any,
    timeout_s: float | None,
) -> SearchResult:
    """The in-process trial loop: one trial at a time, rung by rung."""
    trials: list[TrialResult] = []
    best: tuple[float, int, dict[str, Any], TrainedModel] | None = None
    first_error: str | None = None
    started = time.monotonic()
    for _ in range(n_trials):
        if timeout_s is not None and time.monotonic() - started > timeout_s:
            break
        trial = study.ask(distributions)
        sampled = dict(trial.params)
        full = {**fixed, **sampled}
        t0 = time.perf_counter()
        steps: list[float] = []
        state: TrialState = "complete"
        error: str | None = None
        model: TrainedModel | None = None
        try:
            for step, rows in enumerate(rungs):
                model = train_model(
                    rows, target=target, estimator=estimator, params=full, features=features,
                    preprocess=preprocess, seed=seed,
                )
                value = score(model, validation_df, target, metric, positive_label)
                if not math.isfinite(value):
                    raise TrainingError(f"metric {metric!r} is not finite ({value})")
                steps.append(value)
                if step < len(rungs) - 1:
                    trial.report(value, step)
                    if trial.should_prune():
                        state = "pruned"
                        break
        except (TrainingError, ValidationError) as exc:
            # Only what the sampled values can cause fails a trial; a bad
            # column or label would fail every trial alike, so it stops here.
            if isinstance(exc, ValidationError) and exc.rule != "construct":
                raise
            state, error = "failed", str(exc)
            first_error = first_error or error
        duration = time.perf_counter() - t0
        if state == "complete":
            study.tell(trial, steps[-1])
        elif state == "pruned":
            study.tell(trial, state=OptunaState.PRUNED)
        else:
            study.tell(trial, state=OptunaState.FAIL)
        result = TrialResult(
            number=trial.number,
            params=sampled,
            value=steps[-1] if steps and state != "failed" else None,
            state=state,
            duration_s=duration,
            error=error,
            steps=tuple(steps),
        )
        trials.append(result)
        if state == "complete" and model is not None:
            better = best is None or (steps[-1] > best[0] if direction == "maximize" else steps[-1] < best[0])
            if better:
                best = (steps[-1], trial.number, sampled, model)
        if on_trial is not None:
            on_trial(result)
    if best is None:
        raise TrainingError(
            f"search over {estimator!r}: none of {len(trials)} trials completed; first error: {first_error}"
        )
    return SearchResult(
        metric=metric,
        direction=direction,  # type: ignore[arg-type]
        best_params=best[2],
        best_value=best[0],
        best_trial=best[1],
        best_model=best[3],
        trials=tuple(trials),
    )
