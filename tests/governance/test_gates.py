"""Gates: thresholds, change vs champion, per-slice, fairness; parsing errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from loopml.evaluate import Evaluation, SliceMetrics, evaluate
from loopml.governance import GateChecker, PromotionGate, check_gates, parse_rule
from loopml.kernel.exceptions import GateFailed, SpecError, ValidationError
from loopml.train import split_frame, train_model


def _ev(metrics: dict[str, float], season: dict[str, float] | None = None, *, digest: str = "d1",
        skipped: dict[str, str] | None = None) -> Evaluation:
    """A hand-made evaluation: overall metrics, and per-season f1/recall values."""
    slices = {}
    if season is not None:
        parts = [SliceMetrics("season", label, 50, {"f1": v, "recall": v}) for label, v in season.items()]
        parts.append(SliceMetrics("season", "monsoon", 3, {}, {"f1": "only 3 rows", "recall": "only 3 rows"}))
        slices["season"] = tuple(parts)
    return Evaluation("classification", "y", 200, metrics, skipped=skipped or {}, slices=slices, data_digest=digest)


CANDIDATE = _ev({"roc_auc": 0.85, "f1": 0.7, "log_loss": 0.40}, {"summer": 0.72, "winter": 0.66})


@pytest.mark.parametrize("rule", ["roc_auc >= 0.80", "roc_auc > 0.8", {"metric": "roc_auc", "min": 0.8},
                                  {"metric": "log_loss", "max": 0.5}, "log_loss < 0.5",
                                  {"metric": "roc_auc", "min": 0.8, "max": 0.9}])
def test_absolute_thresholds_pass(rule: object) -> None:
    report = check_gates([rule], CANDIDATE)
    assert report.passed, report.message
    assert report.outcomes[0].status == "passed" and report.outcomes[0].kind == "threshold"


def test_absolute_threshold_fails_with_values_and_message() -> None:
    report = check_gates(["roc_auc >= 0.9"], CANDIDATE)
    assert not report.passed
    out = report.outcomes[0]
    assert out.status == "failed"
    assert out.message == "roc_auc = 0.85, needs >= 0.9"
    assert out.values["candidate"] == 0.85 and out.values["bounds"] == [[">=", 0.9]]
    assert report.message == "0 of 1 gates passed; 1 failed: roc_auc >= 0.9: roc_auc = 0.85, needs >= 0.9"
    with pytest.raises(GateFailed, match=r"1 failed: roc_auc >= 0.9") as info:
        report.raise_for_failure()
    assert info.value.failures[0]["status"] == "failed"


def test_a_metric_the_candidate_lacks_fails_closed() -> None:
    ev = _ev({"f1": 0.7}, skipped={"roc_auc": "the model has no predict_proba"})
    out = check_gates(["roc_auc >= 0.5"], ev).outcomes[0]
    assert out.status == "failed"
    assert out.message == "roc_auc was not computed (the model has no predict_proba), so it cannot pass"


def test_equal_values_pass_despite_float_noise() -> None:
    champion = _ev({"roc_auc": 0.80})
    candidate = _ev({"roc_auc": 0.79})
    report = check_gates([{"metric": "roc_auc", "max_regression": 0.01}], candidate, champion)
    assert report.passed, report.message


def test_change_rule_passes_and_fails_against_the_champion() -> None:
    champion = _ev({"roc_auc": 0.86, "log_loss": 0.35})
    ok = check_gates([{"metric": "roc_auc", "max_regression": 0.02}], CANDIDATE, champion).outcomes[0]
    assert ok.status == "passed"
    assert ok.message == "roc_auc 0.85 vs champion 0.86: regression 0.01, within 0.02"
    bad = check_gates([{"metric": "log_loss", "max_regression": 0.01}], CANDIDATE, champion).outcomes[0]
    assert bad.status == "failed"  # log_loss went up 0.05: lower is better
    assert bad.message == "log_loss 0.4 vs champion 0.35: regression 0.05 exceeds max_regression 0.01"
    assert bad.values["regression"] == pytest.approx(0.05) and bad.values["higher_is_better"] is False


def test_change_rule_relative_and_direction_override() -> None:
    champion = _ev({"roc_auc": 0.90})
    rel = check_gates([{"metric": "roc_auc", "max_regression": 0.05, "relative": True}], CANDIDATE, champion)
    assert rel.outcomes[0].status == "failed"  # (0.90 - 0.85) / 0.90 = 5.6%
    assert rel.outcomes[0].values["regression"] == pytest.approx(0.05 / 0.9)
    flipped = check_gates([{"metric": "roc_auc", "max_regression": 0.0, "direction": "lower"}], CANDIDATE, champion)
    assert flipped.passed
    assert flipped.outcomes[0].message == "roc_auc 0.85 vs champion 0.9: improved by 0.05, within 0"


def test_no_champion_skips_change_rules_and_says_so() -> None:
    report = check_gates(["f1 >= 0.5", {"metric": "roc_auc", "max_regression": 0.01}], CANDIDATE, None)
    assert report.passed and not report.has_champion
    assert [o.status for o in report.outcomes] == ["passed", "skipped"]
    assert report.outcomes[1].message == "skipped: no champion yet"
    assert report.message == "1 of 2 gates passed; 1 skipped; no champion yet, so change rules were skipped"


def test_champion_without_the_metric_skips_the_change_rule() -> None:
    champion = _ev({"f1": 0.7}, skipped={"roc_auc": "the model has no predict_proba"})
    out = check_gates([{"metric": "roc_auc", "max_regression": 0.01}], CANDIDATE, champion).outcomes[0]
    assert out.status == "skipped"
    assert out.message == "skipped: the champion has no roc_auc (the model has no predict_proba)"


def test_per_slice_threshold_every_slice_must_pass() -> None:
    ok = check_gates([{"metric": "f1", "min": 0.6, "slice": "season"}], CANDIDATE).outcomes[0]
    assert ok.kind == "slice" and ok.status == "passed"
    assert ok.message == (
        "f1 passes f1[season] >= 0.6 on all 2 evaluated slices of 'season'; 1 slice(s) skipped: monsoon"
    )
    bad = check_gates(["f1[season] >= 0.7"], CANDIDATE).outcomes[0]
    assert bad.status == "failed"
    assert bad.message.startswith("f1 fails f1[season] >= 0.7 on 1 of 2 slices of 'season': winter=0.66")
    assert bad.values["failing"] == {"winter": 0.66}


def test_per_slice_rule_with_only_small_slices_is_skipped() -> None:
    ev = _ev({"f1": 0.7}, {})
    out = check_gates(["f1[season] >= 0.5"], ev).outcomes[0]
    assert out.status == "skipped" and "computed on no slice of 'season'" in out.message


def test_fairness_rule_passes_and_fails_on_the_gap() -> None:
    ok = check_gates([{"fairness": "season", "metric": "recall", "max_gap": 0.1}], CANDIDATE).outcomes[0]
    assert ok.kind == "fairness" and ok.status == "passed"
    assert ok.values["gap"] == pytest.approx(0.06)
    bad = check_gates([{"fairness": "season", "metric": "recall", "max_gap": 0.05}], CANDIDATE).outcomes[0]
    assert bad.status == "failed"
    assert bad.message == "recall gap across 'season' is 0.06 (summer 0.72 vs winter 0.66), above max_gap 0.05"


@pytest.mark.parametrize(
    ("rule", "match"),
    [
        ("auc >= 0.8", r"gate #1 'auc >= 0.8': metric 'auc' is unknown; allowed: accuracy, precision, recall, f1, roc_auc"),
        ("roc_auc is good", r"a string rule reads 'METRIC OP NUMBER' .* OP one of >=, <=, >, <"),
        ({"metric": "roc_auc", "mn": 0.8}, r"unknown key\(s\) 'mn' for a threshold rule; allowed: metric, min, max, slice, name"),
        ({"metric": "roc_auc"}, r"a threshold rule needs 'min' or 'max'"),
        ({"metric": "roc_auc", "min": "high"}, r"'min' must be a number; got 'high'"),
        ({"metric": "roc_auc", "max_regression": -0.1}, r"'max_regression' must be >= 0; got -0.1"),
        ({"metric": "roc_auc", "max_regression": 0.1, "min": 0.8}, r"unknown key\(s\) 'min' for a change rule"),
        ({"metric": "roc_auc", "max_regression": 0.1, "direction": "up"}, r"direction 'up' is unknown; allowed: higher, maximize, lower, minimize"),
        ({"fairness": "season", "metric": "recall"}, r"a fairness rule needs 'max_gap'"),
        ({"fairness": "season", "metric": "recall", "max_gap": 0.1, "slice": "x"}, r"unknown key\(s\) 'slice' for a fairness rule; allowed: fairness, metric, max_gap, name"),
        (42, r"a rule is a string or a mapping; got int"),
    ],
)
def test_malformed_rules_name_the_rule_key_and_allowed_values(rule: object, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        GateChecker([rule])  # type: ignore[list-item]


def test_rules_that_do_not_fit_the_evaluation_are_spec_errors() -> None:
    with pytest.raises(SpecError, match=r"gate 'rmse <= 3': metric 'rmse' is a regression metric, but the model is classification"):
        check_gates(["rmse <= 3"], CANDIDATE)
    with pytest.raises(SpecError, match=r"column 'region' was not sliced by evaluate; sliced columns: season"):
        check_gates(["f1[region] >= 0.5"], CANDIDATE)


def test_champion_on_other_data_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"the champion was evaluated on different data than the candidate"):
        check_gates(["f1 >= 0.5"], CANDIDATE, _ev({"f1": 0.7}, digest="other"))


def test_gate_checker_is_a_promotion_gate_and_report_is_json_safe() -> None:
    gate = GateChecker(["roc_auc >= 0.8", {"metric": "f1", "max_regression": 0.05, "name": "no f1 drop"}])
    assert isinstance(gate, PromotionGate)
    report = gate(CANDIDATE, _ev({"f1": 0.72, "roc_auc": 0.8}))
    assert report.passed and report.has_champion
    data = json.loads(json.dumps(report.to_dict()))
    assert data["outcomes"][1]["name"] == "no f1 drop"
    assert parse_rule("f1[season] >= 0.6").text == "f1[season] >= 0.6"
    assert check_gates(None, CANDIDATE).message == "no gates configured"


def test_end_to_end_candidate_vs_champion_on_the_same_test_rows() -> None:
    df = load_breast_cancer(as_frame=True).frame
    df["site"] = np.where(np.arange(len(df)) % 2 == 0, "a", "b")
    s = split_frame(df, method="stratified", target="target", seed=0)
    features = [c for c in df.columns if c not in ("target", "site")]
    weak = train_model(s.train, target="target", estimator="sklearn.tree.DecisionTreeClassifier",
                       params={"max_depth": 1}, features=features)
    strong = train_model(s.train, target="target", estimator="sklearn.ensemble.HistGradientBoostingClassifier",
                         params={"max_iter": 30}, features=features)
    test: pd.DataFrame = s.test
    rules = ["roc_auc >= 0.8", {"metric": "roc_auc", "max_regression": 0.0}, "recall[site] >= 0.5",
             {"fairness": "site", "metric": "accuracy", "max_gap": 0.5}]
    up = check_gates(rules, evaluate(strong, test, target="target", task="classification", slices=["site"]),
                     evaluate(weak, test, target="target", task="classification", slices=["site"]))
    assert up.passed, up.message
    down = check_gates(rules, evaluate(weak, test, target="target", task="classification", slices=["site"]),
                       evaluate(strong, test, target="target", task="classification", slices=["site"]))
    assert not down.passed
    assert [o.kind for o in down.failures] == ["change"]
