from __future__ import annotations

import numpy as np
import pandas as pd

from loopml.deploy import DEFAULTS
from loopml.rollout import compare_versions, metric_comparison, two_proportion_test

CFG = {**DEFAULTS["_common"], **DEFAULTS["canary"], "min_requests": 100, "min_labels": 100}


def _frame(n: int, *, error_rate: float = 0.0, latency: float = 5.0, p_one: float = 0.5, seed: int = 0,
           label_accuracy: float | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pred = (rng.random(n) < p_one).astype(int)
    frame = pd.DataFrame({
        "status": np.where(rng.random(n) < error_rate, 500, 200),
        "latency_ms": rng.gamma(4.0, latency / 4.0, n),
        "prediction": pred,
    })
    if label_accuracy is not None:
        correct = rng.random(n) < label_accuracy
        frame["label"] = np.where(correct, pred, 1 - pred)
    return frame


def _by_name(signals):
    return {s.name: s for s in signals}


def test_two_proportion_test_is_one_sided() -> None:
    z, p = two_proportion_test(30, 100, 10, 100)
    assert z > 0 and p < 0.001
    assert two_proportion_test(10, 100, 30, 100)[1] > 0.99


def test_healthy_candidate_passes_every_signal() -> None:
    s = _by_name(compare_versions(_frame(2000, seed=1), _frame(400, seed=2), CFG, with_labels=False))
    assert {k: v.status for k, v in s.items()} == {"error_rate": "ok", "latency_p95": "ok", "prediction_divergence": "ok"}


def test_candidate_failing_a_fifth_of_requests_is_a_breach() -> None:
    s = _by_name(compare_versions(_frame(2000), _frame(400, error_rate=0.2, seed=3), CFG, with_labels=False))
    assert s["error_rate"].status == "breach"
    assert 0.15 < s["error_rate"].candidate < 0.25


def test_five_times_slower_candidate_breaches_latency() -> None:
    s = _by_name(compare_versions(_frame(2000), _frame(400, latency=25.0, seed=4), CFG, with_labels=False))
    assert s["latency_p95"].status == "breach" and s["latency_p95"].effect > 3


def test_a_shifted_output_distribution_is_divergent() -> None:
    s = _by_name(compare_versions(_frame(2000, p_one=0.2), _frame(400, p_one=0.8, seed=5), CFG, with_labels=False))
    assert s["prediction_divergence"].status == "breach"


def test_too_few_requests_hold_instead_of_judging() -> None:
    s = _by_name(compare_versions(_frame(2000), _frame(20, error_rate=0.5), CFG, with_labels=False))
    assert s["error_rate"].status == "insufficient"
    assert "20 candidate requests, need 100" in s["error_rate"].detail


def test_worse_accuracy_on_labels_breaches_only_once_enough_labels_exist() -> None:
    base = _frame(1000, label_accuracy=0.9)
    few = _frame(50, label_accuracy=0.6, seed=6)
    many = _frame(600, label_accuracy=0.6, seed=7)
    assert metric_comparison(base, few, CFG).status == "insufficient"
    result = metric_comparison(base, many, CFG)
    assert result.status == "breach" and result.n_candidate == 600


def test_better_candidate_is_reported_better() -> None:
    base = _frame(1000, label_accuracy=0.7)
    cand = _frame(1000, label_accuracy=0.85, seed=8)
    assert metric_comparison(base, cand, CFG).status == "better"
