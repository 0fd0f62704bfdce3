"""search: seeded Optuna TPE, one on_trial call per trial, space validation."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from loopml.kernel.exceptions import MissingExtraError, SpecError, TrainingError, ValidationError
from loopml.train import TrialResult, parse_space, search, split_frame

HGB_C = "sklearn.ensemble.HistGradientBoostingClassifier"
SPACE = {
    "max_depth": {"type": "int", "low": 2, "high": 8},
    "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
    "max_iter": {"type": "categorical", "choices": [10, 30]},
}


@pytest.fixture(scope="module")
def parts() -> tuple[pd.DataFrame, pd.DataFrame]:
    df = load_breast_cancer(as_frame=True).frame
    s = split_frame(df, method="stratified", target="target", test_size=0.2, validation_size=0.2, seed=0)
    assert s.validation is not None
    return s.train, s.validation


def test_five_trials_call_on_trial_five_times_and_keep_the_best(parts: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, val = parts
    seen: list[TrialResult] = []
    result = search(
        train, val, target="target", estimator=HGB_C, space=SPACE, n_trials=5,
        metric="roc_auc", direction="maximize", seed=0, on_trial=seen.append,
    )
    assert [t.number for t in seen] == [0, 1, 2, 3, 4]
    assert result.trials == tuple(seen)
    for t in seen:
        assert set(t.params) == set(SPACE)
        assert t.state in ("complete", "pruned")
        assert t.value is not None and t.duration_s >= 0
    assert seen[0].state == "complete"  # the median pruner waits for 3 finished trials
    assert result.best_value >= seen[0].value  # type: ignore[operator]
    assert result.best_value == max(t.value for t in seen if t.state == "complete")  # type: ignore[type-var]
    assert result.best_model.task == "classification"
    assert result.best_params == seen[result.best_trial].params
    assert result.to_dict()["trials"][0]["number"] == 0


def test_search_is_reproducible_with_a_seed(parts: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, val = parts
    runs = [
        search(train, val, target="target", estimator=HGB_C, space=SPACE, n_trials=3, metric="log_loss",
               seed=5, pruner=False)
        for _ in range(2)
    ]
    assert [t.params for t in runs[0].trials] == [t.params for t in runs[1].trials]
    assert runs[0].direction == "minimize"  # inferred from log_loss
    assert runs[0].best_value == min(t.value for t in runs[0].trials)  # type: ignore[type-var]


def test_rejected_values_fail_one_trial_and_the_search_goes_on(parts: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, val = parts
    seen: list[TrialResult] = []
    space = {"max_depth": {"type": "categorical", "choices": [-1, 3]}, "max_iter": {"type": "int", "low": 5, "high": 10}}
    result = search(train, val, target="target", estimator=HGB_C, space=space, n_trials=6, metric="accuracy",
                    seed=1, on_trial=seen.append, pruner=False)
    states = {t.params["max_depth"]: t.state for t in seen}
    assert states == {-1: "failed", 3: "complete"}
    failed = next(t for t in seen if t.state == "failed")
    assert failed.value is None and failed.error is not None and "max_depth" in failed.error
    assert result.best_params["max_depth"] == 3


def test_all_trials_failing_raises(parts: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, val = parts
    space = {"max_depth": {"type": "categorical", "choices": [-1, -2]}}
    with pytest.raises(TrainingError, match=r"none of 2 trials completed; first error: training"):
        search(train, val, target="target", estimator=HGB_C, space=space, n_trials=2, metric="accuracy")


def test_search_without_validation_holds_out_part_of_train(parts: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, _ = parts
    result = search(train, None, target="target", estimator=HGB_C, space={"max_iter": {"type": "int", "low": 5, "high": 10}},
                    n_trials=2, metric="f1")
    assert 0.0 < result.best_value <= 1.0


@pytest.mark.parametrize(
    ("space", "match"),
    [
        ({}, r"search space must be a non-empty mapping"),
        ({"max_depth": {"type": "integer", "low": 1, "high": 3}},
         r"parameter 'max_depth': type 'integer' is unknown; allowed: int, float, categorical"),
        ({"max_depth": {"type": "int", "low": 1, "hi": 3}},
         r"parameter 'max_depth': unknown key\(s\) 'hi' for type 'int'; allowed: type, low, high, step, log"),
        ({"max_depth": {"type": "int", "low": 1.5, "high": 3}}, r"'low' must be an integer; got 1.5"),
        ({"lr": {"type": "float", "low": 0.3, "high": 0.1}}, r"parameter 'lr': 'low' \(0.3\) must not exceed 'high' \(0.1\)"),
        ({"lr": {"type": "float", "low": 0.0, "high": 0.1, "log": True}}, r"'log': true needs 'low' > 0"),
        ({"c": {"type": "categorical", "choices": []}}, r"parameter 'c': 'choices' must be a non-empty list"),
        ({"c": {"type": "categorical", "choices": [[1, 2]]}}, r"choices must be null, bool, int, float or string"),
        ({"c": 3}, r"parameter 'c': spec must be a mapping with a 'type'"),
    ],
)
def test_bad_space_specs_name_the_key_and_allowed_values(space: dict, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        parse_space(space)


def test_space_parameters_must_exist_on_the_estimator(parts: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, val = parts
    with pytest.raises(SpecError, match=r"names parameter\(s\) 'depth' that estimator .* does not have"):
        search(train, val, target="target", estimator=HGB_C, space={"depth": {"type": "int", "low": 1, "high": 2}},
               n_trials=1, metric="roc_auc")


def test_bad_metric_direction_and_trial_count(parts: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, val = parts
    kw = {"target": "target", "estimator": HGB_C, "space": {"max_iter": {"type": "int", "low": 5, "high": 6}}}
    with pytest.raises(ValidationError, match=r"metric 'auc' is unknown; allowed: accuracy, f1"):
        search(train, val, n_trials=1, metric="auc", **kw)
    with pytest.raises(ValidationError, match=r"metric 'rmse' is a regression metric but the task is classification"):
        search(train, val, n_trials=1, metric="rmse", **kw)
    with pytest.raises(ValidationError, match=r"direction 'up' is unknown; allowed: maximize, minimize"):
        search(train, val, n_trials=1, metric="roc_auc", direction="up", **kw)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"n_trials must be a positive integer; got 0"):
        search(train, val, n_trials=0, metric="roc_auc", **kw)


def test_missing_optuna_names_the_extra(parts: tuple[pd.DataFrame, pd.DataFrame], monkeypatch: pytest.MonkeyPatch) -> None:
    train, val = parts
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(MissingExtraError, match=r"hyper-parameter search needs the 'optuna' package.*loopml\[tune\]"):
        search(train, val, target="target", estimator=HGB_C, space=SPACE, n_trials=1, metric="roc_auc")


def test_base_params_are_fixed_and_best_params_hold_the_searched_values(
    parts: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, val = parts
    result = search(train, val, target="target", estimator=HGB_C, space={"max_depth": {"type": "int", "low": 2, "high": 3}},
                    n_trials=2, metric="roc_auc", base_params={"max_iter": 7}, pruner=False)
    assert set(result.best_params) == {"max_depth"}
    fitted = result.best_model.estimator.named_steps["model"]
    assert fitted.max_iter == 7 and fitted.max_depth == result.best_params["max_depth"]
