"""evaluate: metrics agree with sklearn.metrics, slices, skip reasons, JSON form."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LinearRegression
from sklearn.tree import DecisionTreeClassifier

from loopml.evaluate import Evaluation, evaluate, slice_labels
from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.train import split_frame, train_model

HGB_C = "sklearn.ensemble.HistGradientBoostingClassifier"


@pytest.fixture(scope="module")
def cancer() -> tuple[object, pd.DataFrame]:
    df = load_breast_cancer(as_frame=True).frame
    df["site"] = np.where(np.arange(len(df)) % 3 == 0, "north", "south")
    s = split_frame(df, method="stratified", target="target", test_size=0.3, seed=0)
    model = train_model(s.train, target="target", estimator=HGB_C, params={"max_iter": 30},
                        features=[c for c in df.columns if c not in ("target", "site")])
    return model, s.test


def test_binary_metrics_agree_with_sklearn(cancer: tuple[object, pd.DataFrame]) -> None:
    model, test = cancer
    ev = evaluate(model, test, target="target", task="classification")
    y = test["target"]
    pred = model.predict(test)  # type: ignore[attr-defined]
    proba = model.predict_proba(test)  # type: ignore[attr-defined]
    assert ev.metrics == pytest.approx(
        {
            "accuracy": skm.accuracy_score(y, pred),
            "precision": skm.precision_score(y, pred),
            "recall": skm.recall_score(y, pred),
            "f1": skm.f1_score(y, pred),
            "roc_auc": skm.roc_auc_score(y, proba[:, 1]),
            "log_loss": skm.log_loss(y, proba),
        }
    )
    assert list(ev.metrics) == ["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"]
    assert ev.n_rows == len(test) and ev.classes == (0, 1) and ev.positive_label == 1
    assert ev.metric("roc_auc") == ev.metrics["roc_auc"]


def test_positive_label_flips_precision_and_recall(cancer: tuple[object, pd.DataFrame]) -> None:
    model, test = cancer
    ev = evaluate(model, test, target="target", task="classification", positive_label=0)
    pred = model.predict(test)  # type: ignore[attr-defined]
    proba = model.predict_proba(test)  # type: ignore[attr-defined]
    assert ev.metric("recall") == pytest.approx(skm.recall_score(test["target"], pred, pos_label=0))
    assert ev.metric("roc_auc") == pytest.approx(skm.roc_auc_score(test["target"] == 0, proba[:, 0]))
    with pytest.raises(ValidationError, match=r"positive_label 'yes' is not a class; classes: \[0, 1\]"):
        evaluate(model, test, target="target", task="classification", positive_label="yes")


def test_multiclass_metrics_use_macro_and_ovr() -> None:
    df = load_iris(as_frame=True).frame
    s = split_frame(df, method="stratified", target="target", test_size=0.4, seed=2)
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(s.train.drop(columns="target"), s.train["target"])
    ev = evaluate(model, s.test, target="target", task="classification")
    y, X = s.test["target"], s.test.drop(columns="target")
    pred, proba = model.predict(X), model.predict_proba(X)
    assert ev.metric("f1") == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert ev.metric("precision") == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert ev.metric("roc_auc") == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    assert ev.metric("log_loss") == pytest.approx(skm.log_loss(y, proba))
    assert ev.positive_label is None


def test_regression_metrics_agree_with_sklearn() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=120), "g": rng.choice(["a", "b"], size=120)})
    df["y"] = 3 * df["x"] + rng.normal(scale=0.5, size=120)
    model = LinearRegression().fit(df[["x"]], df["y"])
    ev = evaluate(model, df, target="y", task="regression", slices=["g"])
    pred = model.predict(df[["x"]])
    assert ev.metrics == pytest.approx(
        {
            "mae": skm.mean_absolute_error(df["y"], pred),
            "rmse": skm.root_mean_squared_error(df["y"], pred),
            "r2": skm.r2_score(df["y"], pred),
        }
    )
    a = df["g"] == "a"
    assert ev.metric("mae", "g=a") == pytest.approx(skm.mean_absolute_error(df.loc[a, "y"], pred[a.to_numpy()]))
    with pytest.raises(ValidationError, match=r"metric 'roc_auc' is a classification metric, but this is regression"):
        ev.metric("roc_auc")


def test_per_slice_metrics_and_numeric_bins(cancer: tuple[object, pd.DataFrame]) -> None:
    model, test = cancer
    ev = evaluate(model, test, target="target", task="classification", slices=["site", "mean radius"])
    sites = ev.slice_metrics("site")
    assert [s.label for s in sites] == ["north", "south"]
    assert sum(s.n_rows for s in sites) == len(test)
    north = test[test["site"] == "north"]
    pred = model.predict(north)  # type: ignore[attr-defined]
    assert ev.metric("accuracy", ("site", "north")) == pytest.approx(skm.accuracy_score(north["target"], pred))
    bins = ev.slice_metrics("mean radius")
    assert len(bins) == 4
    assert bins[0].label.startswith("[") and all(b.label.startswith("(") for b in bins[1:])
    assert sum(b.n_rows for b in bins) == len(test)


def test_small_slices_and_single_class_slices_are_skipped_with_reasons(cancer: tuple[object, pd.DataFrame]) -> None:
    model, test = cancer
    test = test.assign(group=np.where(np.arange(len(test)) < 5, "tiny", "big"))
    ev = evaluate(model, test, target="target", task="classification", slices=["group", "target"])
    tiny = next(s for s in ev.slice_metrics("group") if s.label == "tiny")
    assert tiny.n_rows == 5 and tiny.metrics == {}
    assert tiny.skipped["roc_auc"] == "only 5 rows, fewer than min_slice_size=10"
    with pytest.raises(NotFoundError, match=r"metric 'f1' was not computed for slice group=tiny: only 5 rows"):
        ev.metric("f1", "group=tiny")
    zeros = ev.slice_skips("target", "roc_auc")
    assert zeros == {"0": "needs both classes; these rows hold only 0", "1": "needs both classes; these rows hold only 1"}
    assert ev.slice_skips("target", "recall")["0"] == "no row has the positive label 1"
    assert set(ev.slice_values("target", "accuracy")) == {"0", "1"}


def test_a_model_without_predict_proba_skips_auc_and_log_loss() -> None:
    from sklearn.svm import LinearSVC

    df = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 30]]
    model = train_model(df, target="target", estimator="sklearn.svm.LinearSVC", preprocess="scale")
    assert isinstance(model.estimator.named_steps["model"], LinearSVC)
    ev = evaluate(model.estimator, df, target="target", task="classification")
    assert ev.skipped == {"roc_auc": "the model has no predict_proba (or no classes_)",
                          "log_loss": "the model has no predict_proba (or no classes_)"}
    with pytest.raises(NotFoundError, match=r"metric 'roc_auc' was not computed: the model has no predict_proba"):
        ev.metric("roc_auc")


def test_slice_labels_for_values_missing_and_bins() -> None:
    labels, order = slice_labels(pd.Series(["b", None, "a", "b"]))
    assert order == ["a", "b", "<missing>"] and list(labels) == ["b", "<missing>", "a", "b"]
    labels, order = slice_labels(pd.Series(np.arange(100.0)), bins=2)
    assert order == ["[0, 49.5]", "(49.5, 99]"]
    _, order = slice_labels(pd.Series([1.0, 2.0, 2.0]))
    assert order == ["1", "2"]


def test_to_dict_is_json_safe_and_round_trips(cancer: tuple[object, pd.DataFrame]) -> None:
    model, test = cancer
    ev = evaluate(model, test, target="target", task="classification", slices=["site"])
    data = json.loads(json.dumps(ev.to_dict()))
    again = Evaluation.from_dict(data)
    assert again == ev
    assert data["slices"]["site"][0]["label"] == "north"
    with pytest.raises(ValidationError, match=r"not an evaluation record: KeyError"):
        Evaluation.from_dict({"task": "classification"})


def test_the_same_frame_gets_the_same_digest(cancer: tuple[object, pd.DataFrame]) -> None:
    model, test = cancer
    a = evaluate(model, test, target="target", task="classification")
    b = evaluate(model, test.copy(), target="target", task="classification")
    c = evaluate(model, test.iloc[1:], target="target", task="classification")
    assert a.data_digest == b.data_digest != c.data_digest


def test_bad_arguments_name_the_field(cancer: tuple[object, pd.DataFrame]) -> None:
    model, test = cancer
    with pytest.raises(ValidationError, match=r"task 'ranking' is unknown; allowed: classification, regression"):
        evaluate(model, test, target="target", task="ranking")
    with pytest.raises(ValidationError, match=r"slice column 'region' is not a column"):
        evaluate(model, test, target="target", task="classification", slices=["region"])
    with pytest.raises(ValidationError, match=r"the frame lacks the model's feature columns \['mean radius'\]"):
        evaluate(model, test.drop(columns="mean radius"), target="target", task="classification")
    ev = evaluate(model, test, target="target", task="classification", slices=["site"])
    with pytest.raises(ValidationError, match=r"metric 'auc' is unknown; allowed: accuracy"):
        ev.metric("auc")
    with pytest.raises(NotFoundError, match=r"column 'site' has no slice 'east'; slices: north, south"):
        ev.metric("f1", "site=east")
    with pytest.raises(NotFoundError, match=r"no slices of column 'season' were evaluated; sliced columns: site"):
        ev.metric("f1", "season=summer")
