"""build_estimator / train_model: import paths, preprocessing, task inference, errors."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.pipeline import Pipeline

from loopml.kernel.exceptions import TrainingError, ValidationError
from loopml.train import build_estimator, infer_task, train_model

HGB_C = "sklearn.ensemble.HistGradientBoostingClassifier"
HGB_R = "sklearn.ensemble.HistGradientBoostingRegressor"


@pytest.fixture
def mixed() -> pd.DataFrame:
    """Numbers with gaps, a string and a categorical column, a time column, a label."""
    rng = np.random.default_rng(1)
    n = 300
    color = rng.choice(["red", "green", "blue"], size=n)
    size = rng.normal(size=n)
    size[::17] = np.nan
    y = np.where((color == "red") ^ (np.nan_to_num(size) > 0.5), "yes", "no")
    return pd.DataFrame(
        {
            "size": size,
            "color": color,
            "shape": pd.Categorical(rng.choice(["round", "square"], size=n)),
            "seen_at": pd.date_range("2024-01-01", periods=n, freq="D"),
            "label": y,
        }
    )


def test_build_estimator_returns_an_unfitted_instance() -> None:
    est = build_estimator(HGB_C, {"max_depth": 3})
    assert type(est).__name__ == "HistGradientBoostingClassifier"
    assert est.get_params()["max_depth"] == 3


@pytest.mark.parametrize(
    ("path", "match"),
    [
        ("HistGradientBoostingClassifier", r"must be a full import path 'package.module.Class'"),
        ("sklearn.nowhere.Model", r"estimator 'sklearn.nowhere.Model': module 'sklearn.nowhere' cannot be imported"),
        ("sklearn.ensemble.NoSuchModel", r"module 'sklearn.ensemble' has no attribute 'NoSuchModel'"),
        ("sklearn.metrics.accuracy_score", r"'sklearn.metrics.accuracy_score' is a function, not a class"),
        ("collections.OrderedDict", r"'collections.OrderedDict' has no fit method"),
    ],
)
def test_build_estimator_errors_name_the_path_and_the_failure(path: str, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        build_estimator(path, {})


def test_build_estimator_rejects_unknown_params() -> None:
    with pytest.raises(ValidationError, match=r"has no parameter\(s\) 'depth'; allowed: .*max_depth") as info:
        build_estimator(HGB_C, {"depth": 3})
    assert info.value.field == "params"


def test_train_model_on_raw_mixed_frame_accepts_raw_rows(mixed: pd.DataFrame) -> None:
    model = train_model(mixed, target="label", estimator=HGB_C, params={"max_iter": 30})
    assert model.task == "classification"
    assert model.classes == ("no", "yes")
    assert model.features == ("size", "color", "shape")
    assert model.ignored_columns == ("seen_at",)
    assert isinstance(model.estimator, Pipeline)
    # Unseen categories and missing numbers at serving time are not errors.
    raw = pd.DataFrame({"size": [np.nan, 1.0], "color": ["purple", "red"], "shape": ["round", "oval"]})
    assert set(model.estimator.predict(raw)) <= {"no", "yes"}
    assert (model.predict(mixed) == mixed["label"]).mean() > 0.8
    # The registered object is plain scikit-learn: it pickles without loopml.
    assert b"loopml" not in pickle.dumps(model.estimator)
    assert model.to_dict()["params"] == {"max_iter": 30}


def test_linear_models_get_imputation_and_scaling(mixed: pd.DataFrame) -> None:
    model = train_model(
        mixed, target="label", estimator="sklearn.linear_model.LogisticRegression", preprocess="scale",
        features=["size", "color"],
    )
    steps = model.estimator.named_steps["preprocess"].named_transformers_["numeric"].named_steps
    assert list(steps) == ["impute", "scale"]
    assert model.predict_proba(mixed).shape == (len(mixed), 2)


def test_seed_sets_random_state_unless_params_do(mixed: pd.DataFrame) -> None:
    a = train_model(mixed, target="label", estimator=HGB_C, params={"max_iter": 5}, seed=7)
    assert a.estimator.named_steps["model"].random_state == 7
    b = train_model(mixed, target="label", estimator=HGB_C, params={"max_iter": 5, "random_state": 1}, seed=7)
    assert b.estimator.named_steps["model"].random_state == 1


def test_regression_task_is_inferred() -> None:
    df = pd.DataFrame({"x": np.arange(50.0), "y": np.arange(50.0) * 2 + 0.5})
    model = train_model(df, target="y", estimator="sklearn.linear_model.LinearRegression")
    assert model.task == "regression"
    assert model.classes is None
    assert model.predict(df.head(2)) == pytest.approx([0.5, 2.5])


def test_infer_task_from_target_values_when_estimator_is_silent() -> None:
    assert infer_task(pd.Series(["a", "b"])) == "classification"
    assert infer_task(pd.Series([0, 1, 1, 0])) == "classification"
    assert infer_task(pd.Series([0.5, 1.25])) == "regression"


def test_breast_cancer_trains_without_warnings() -> None:
    df = load_breast_cancer(as_frame=True).frame
    model = train_model(df, target="target", estimator=HGB_C, params={"max_iter": 20})
    assert model.classes == (0, 1)
    assert len(model.features) == 30


def test_a_regressor_on_string_labels_is_rejected(mixed: pd.DataFrame) -> None:
    with pytest.raises(ValidationError, match=rf"estimator '{HGB_R}' is a regressor but target 'label' is str"):
        train_model(mixed, target="label", estimator=HGB_R)


def test_bad_columns_are_rejected(mixed: pd.DataFrame) -> None:
    with pytest.raises(ValidationError, match=r"target 'nope' is not a column"):
        train_model(mixed, target="nope", estimator=HGB_C)
    with pytest.raises(ValidationError, match=r"features \['weight'\] are not columns"):
        train_model(mixed, target="label", estimator=HGB_C, features=["size", "weight"])
    with pytest.raises(ValidationError, match=r"features include the target 'label'"):
        train_model(mixed, target="label", estimator=HGB_C, features=["size", "label"])
    with pytest.raises(ValidationError, match=r"features \['seen_at'\] are datetime/timedelta columns"):
        train_model(mixed, target="label", estimator=HGB_C, features=["seen_at"])
    with pytest.raises(ValidationError, match=r"preprocess 'magic' is unknown; allowed: auto, scale, none"):
        train_model(mixed, target="label", estimator=HGB_C, preprocess="magic")  # type: ignore[arg-type]


def test_missing_target_values_and_single_class_are_rejected(mixed: pd.DataFrame) -> None:
    gappy = mixed.assign(label=mixed["label"].where(mixed.index % 10 != 0))
    with pytest.raises(ValidationError, match=r"target 'label' has 30 missing values"):
        train_model(gappy, target="label", estimator=HGB_C)
    with pytest.raises(ValidationError, match=r"target 'label' has a single class \('no'\)"):
        train_model(mixed.assign(label="no"), target="label", estimator=HGB_C)


def test_fit_errors_become_training_errors_naming_the_estimator(mixed: pd.DataFrame) -> None:
    with pytest.raises(TrainingError, match=rf"training '{HGB_C}' with params \{{'max_depth': -1\}} failed: .*max_depth"):
        train_model(mixed, target="label", estimator=HGB_C, params={"max_depth": -1})
