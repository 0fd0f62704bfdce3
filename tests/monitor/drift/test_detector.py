"""The dataset-level detector: end to end, the share rule, prediction drift, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from loopml.kernel.exceptions import MonitorError, ValidationError
from loopml.monitor.drift import DriftDetector, DriftReference, profile_frame


def _frames(n: int = 4000, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.normal(40 + 10 * shift, 10, n),
        "income": rng.lognormal(10, 0.5, n),
        "plan": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
        "churn": rng.random(n) < 0.2,
        "score": rng.random(n),
    })


def test_detector_finds_the_shifted_feature_from_a_json_profile() -> None:
    profile = json.loads(json.dumps(profile_frame(_frames(seed=0))))
    cur = _frames(seed=3)
    cur["age"] += 5.0
    report = DriftDetector(prediction_column="score").fit(profile).score(cur)
    assert report.drifted_columns == ["age"]
    assert report.n_features == 4 and report.drift_share == 0.25 and not report.dataset_drift
    assert report.prediction is not None and report.prediction.column == "score"
    assert not report.prediction.drifted
    age = report.feature("age")
    assert age.method == "ks" and age.effect_name == "wasserstein_norm" and age.effect > 0.3
    assert age.p_adjusted is not None and age.p_adjusted >= age.p_value
    data = json.loads(json.dumps(report.to_dict()))
    assert data["params"]["correction"] == "bh" and data["params"]["min_effect"] == 0.02
    assert data["per_feature"][0]["column"] == "age"


def test_no_drift_means_no_flag() -> None:
    report = DriftDetector().fit(_frames(seed=0)).score(_frames(seed=3))
    assert report.drifted_columns == [] and not report.dataset_drift


def test_share_rule_uses_at_least() -> None:
    cur = _frames(seed=3)
    cur["age"] += 8.0
    cur["income"] *= 1.5
    report = DriftDetector(drift_share=0.5).fit(_frames(seed=0)).score(cur)
    assert report.n_drifted == 2 and report.n_features == 5 and not report.dataset_drift
    report = DriftDetector(drift_share=0.4).fit(_frames(seed=0)).score(cur)
    assert report.drift_share == 0.4 and report.dataset_drift


def test_prediction_drift_uses_the_same_machinery() -> None:
    cur = _frames(seed=3)
    cur["score"] = cur["score"] ** 2
    report = DriftDetector(columns=["age"], prediction_column="score").fit(_frames(seed=0)).score(cur)
    assert report.prediction is not None and report.prediction.drifted
    assert [r.column for r in report.per_feature] == ["age"]


def test_method_mapping_and_single_method() -> None:
    det = DriftDetector(method={"plan": "psi"}).fit(_frames(seed=0))
    report = det.score(_frames(seed=3))
    assert report.feature("plan").method == "psi" and report.feature("age").method == "ks"
    report = DriftDetector(method="jensenshannon").fit(_frames(seed=0)).score(_frames(seed=3))
    assert {r.method for r in report.per_feature} == {"jensenshannon"}


def test_get_params_is_the_constructor_record() -> None:
    det = DriftDetector(alpha=0.01, correction="holm")
    assert det.get_params()["alpha"] == 0.01 and det.get_params()["correction"] == "holm"
    assert det.get_params()["min_effect"] is None
    assert not hasattr(det, "reference_")


def test_fit_accepts_a_drift_reference() -> None:
    ref = DriftReference.from_frame(_frames())
    assert DriftDetector().fit(ref).reference_ is ref


def test_unknown_method_lists_the_allowed_ones() -> None:
    with pytest.raises(ValidationError, match="unknown drift method 'kolmogorov' for method; allowed: auto, evi"):
        DriftDetector(method="kolmogorov").fit(_frames())
    with pytest.raises(ValidationError, match=r"unknown drift method 'x' for method\['age'\]"):
        DriftDetector(method={"age": "x"}).fit(_frames())


def test_method_that_does_not_fit_the_type_is_refused_at_fit() -> None:
    with pytest.raises(ValidationError, match="method 'ks' does not apply to categorical column 'plan'"):
        DriftDetector(method="ks").fit(_frames())


def test_bad_numbers_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"alpha must be a number in \(0.0, 1.0\], got 0"):
        DriftDetector(alpha=0).fit(_frames())
    with pytest.raises(ValidationError, match="unknown correction 'fdr'; allowed: bh, holm, bonferroni, none"):
        DriftDetector(correction="fdr").fit(_frames())


def test_column_missing_from_the_reference() -> None:
    with pytest.raises(ValidationError, match="column 'height' is not in the reference profile") as err:
        DriftDetector(columns=["height"]).fit(profile_frame(_frames()))
    assert err.value.field == "height" and err.value.rule == "unknown_column"


def test_column_missing_from_the_window() -> None:
    det = DriftDetector().fit(_frames())
    with pytest.raises(ValidationError, match="column 'plan' is in the reference profile but missing from the current"):
        det.score(_frames().drop(columns="plan"))


def test_empty_window_is_refused() -> None:
    det = DriftDetector().fit(_frames())
    with pytest.raises(ValidationError, match="the current window has no rows") as err:
        det.score(_frames().iloc[:0])
    assert err.value.rule == "empty_window"


def test_all_nan_column_in_the_window_is_refused() -> None:
    cur = _frames(n=50)
    cur["age"] = np.nan
    with pytest.raises(ValidationError, match="column 'age' has no finite value in the current window") as err:
        DriftDetector().fit(_frames()).score(cur)
    assert err.value.rule == "all_missing"


def test_score_before_fit() -> None:
    with pytest.raises(MonitorError, match="DriftDetector is not fitted"):
        DriftDetector().score(_frames())
