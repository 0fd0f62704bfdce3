from __future__ import annotations

import numpy as np
import pandas as pd

from loopml.deploy import DEFAULTS
from loopml.rollout import compare_versions, look_alpha, metric_comparison, two_proportion_test

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


def _failing(n: int, errors: int) -> pd.DataFrame:
    """``n`` candidate requests of which exactly the first ``errors`` failed (5xx)."""
    frame = _frame(n, seed=9)
    frame["status"] = [500] * errors + [200] * (n - errors)
    return frame


def test_too_few_requests_hold_instead_of_judging() -> None:
    # 1 failure in 20 (5%) against a clean baseline: above the allowed increase, but not conclusive yet.
    s = _by_name(compare_versions(_frame(2000), _failing(20, 1), CFG, with_labels=False))
    assert s["error_rate"].status == "insufficient"
    assert "20 candidate requests, need 100" in s["error_rate"].detail


def test_a_conclusive_error_breach_does_not_wait_for_min_requests() -> None:
    # 10 failures in 20 against a clean baseline: Fisher's exact p ~ 1e-19, far below early_alpha.
    s = _by_name(compare_versions(_frame(2000), _failing(20, 10), CFG, with_labels=False))
    error = s["error_rate"]
    assert error.status == "breach" and error.extra == {"early": True} and error.n_candidate == 20
    assert error.p_value < 1e-10 and "before min_requests 100" in error.detail
    assert s["latency_p95"].status == "insufficient"  # the other signals still wait for their sample
    # Turned off, or too few failures to be conclusive: hold.
    off = compare_versions(_frame(2000), _failing(20, 10), {**CFG, "early_alpha": 0}, with_labels=False)
    assert _by_name(off)["error_rate"].status == "insufficient"
    assert _by_name(compare_versions(_frame(2000), _failing(3, 1), CFG, with_labels=False))[
        "error_rate"].status == "insufficient"


def test_an_early_look_at_a_candidate_as_good_as_the_baseline_never_breaches() -> None:
    # Same 2% error rate on both: no early look from 10 to 99 candidate requests calls a breach.
    base = _frame(5000, error_rate=0.02, seed=11)
    cand = _frame(99, error_rate=0.02, seed=12)
    for n in range(10, 100):
        assert _by_name(compare_versions(base, cand.iloc[:n], CFG, with_labels=False))[
            "error_rate"].status == "insufficient"


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


def test_requests_answered_by_one_model_call_count_once_for_latency() -> None:
    rng = np.random.default_rng(13)
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    base = _frame(2000, seed=14)
    base["ts"] = t0 + pd.to_timedelta(np.arange(2000) * 10, unit="ms")  # one request per call
    # 120 candidate requests answered in 3 model calls (40 rows each), one of them slow: 3 samples, not 120.
    cand = _frame(120, seed=15)
    arrival = np.repeat([0.0, 1.0, 2.0], 40) + rng.uniform(0, 0.001, 120)
    cand["latency_ms"] = np.repeat([5.0, 5.0, 40.0], 40) - (arrival % 1) * 1000
    cand["ts"] = t0 + pd.to_timedelta(arrival, unit="s")
    latency = _by_name(compare_versions(base, cand, CFG, with_labels=False))["latency_p95"]
    assert latency.status == "insufficient" and latency.n_candidate == 3
    assert "3 successful candidate model calls" in latency.detail
    # Without arrival times every request counts (as in a log written one request per call).
    per_request = _by_name(compare_versions(base, cand.drop(columns="ts"), CFG, with_labels=False))
    assert per_request["latency_p95"].n_candidate == 120


def test_look_alpha_spends_at_most_alpha_over_any_number_of_looks() -> None:
    levels = [look_alpha(0.05, k, 3) for k in range(1, 10_001)]
    assert all(a > b for a, b in zip(levels, levels[1:], strict=False))  # later looks are stricter
    assert 3 * sum(levels) <= 0.05  # every look of every signal together: at most alpha
    assert look_alpha(0.05, 1, 1) == 0.05 * 6 / np.pi**2


def test_re_testing_a_healthy_candidate_every_look_stays_under_alpha_only_with_spending() -> None:
    """A/A rollouts, error rate re-tested on the growing sample at 20 looks: how often any look breaches."""
    rng = np.random.default_rng(7)
    rollouts, looks, per_look = 400, 20, 50
    fixed = spent = 0
    for _ in range(rollouts):
        fails = rng.random((2, looks * per_look)) < 0.1  # candidate and baseline: the same 10% error rate
        p_values = [two_proportion_test(int(fails[0, :n].sum()), n, int(fails[1, :n].sum()), n)[1]
                    for n in range(per_look, looks * per_look + 1, per_look)]
        fixed += any(p < 0.05 for p in p_values)
        spent += any(p < look_alpha(0.05, k, 1) for k, p in enumerate(p_values, start=1))
    assert fixed / rollouts > 0.1  # judged at alpha every look: false breaches pile up
    assert spent / rollouts <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / rollouts)


def test_a_few_milliseconds_slower_is_not_a_latency_breach_however_significant() -> None:
    base, cand = _frame(2000, latency=5.0), _frame(400, latency=8.5, seed=6)  # p95 ~1.7x, ~6 ms more
    s = _by_name(compare_versions(base, cand, CFG, with_labels=False))["latency_p95"]
    assert s.p_value < 1e-6 and s.effect > 1.5 and s.status == "ok"
    strict = _by_name(compare_versions(base, cand, {**CFG, "min_latency_increase_ms": 2.0}, with_labels=False))
    assert strict["latency_p95"].status == "breach"
