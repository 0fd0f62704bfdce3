"""Evidently-compatible mode: Evidently's default choice and verdicts, re-derived with scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from loopml.monitor.drift import DriftDetector


def _case(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({
        "num": rng.normal(0, 1, n),
        "num_shift": rng.normal(0, 1, n),
        "few": rng.integers(0, 4, n).astype(float),
        "cat": rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1]),
        "bin": rng.choice(["x", "y"], n),
    })
    cur = pd.DataFrame({
        "num": rng.normal(0, 1, n),
        "num_shift": rng.normal(0.4, 1, n),
        "few": rng.integers(0, 4, n).astype(float),
        "cat": rng.choice(["a", "b", "c", "d"], n, p=[0.3, 0.3, 0.2, 0.2]),
        "bin": rng.choice(["x", "y"], n, p=[0.6, 0.4]),
    })
    return ref, cur


def _evidently_reference(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, tuple[str, float, bool]]:
    """Evidently 0.7 default rules (RESULTS.md section 1), written straight with scipy."""
    out = {}
    for c in ref:
        a, b = ref[c], cur[c]
        n_values = pd.concat([a, b]).nunique()
        numeric = a.dtype.kind == "f"
        keys = sorted(set(a) | set(b))
        ca = np.array([(a == k).sum() for k in keys])
        cb = np.array([(b == k).sum() for k in keys])
        if len(a) <= 1000:
            if numeric and n_values > 5:
                p = stats.ks_2samp(a, b).pvalue
                out[c] = ("ks", p, p <= 0.05)
            elif n_values > 2:
                p = stats.chisquare(cb, ca * len(b) / len(a)).pvalue
                out[c] = ("chisquare_gof", p, p < 0.05)
            else:
                p1, p2 = (a != keys[0]).mean(), (b != keys[0]).mean()
                pp = (p1 * len(a) + p2 * len(b)) / (len(a) + len(b))
                z = (p1 - p2) / np.sqrt(pp * (1 - pp) * (1 / len(a) + 1 / len(b)))
                p = 2 * (1 - stats.norm.cdf(abs(z)))
                out[c] = ("z", p, p < 0.05)
        elif numeric and n_values > 5:
            w = stats.wasserstein_distance(a, b) / max(np.std(a), 0.001)
            out[c] = ("wasserstein", w, w >= 0.1)
        else:
            js = distance.jensenshannon(ca / len(a), cb / len(b))
            out[c] = ("jensenshannon", js, js >= 0.1)
    return out


@pytest.mark.parametrize("n", [400, 1000, 1001, 5000])
def test_evidently_mode_reproduces_evidently_decisions(n: int) -> None:
    ref, cur = _case(n)
    expect = _evidently_reference(ref, cur)
    report = DriftDetector(method="evidently").fit(ref).score(cur)
    for r in report.per_feature:
        method, score, drift = expect[r.column]
        got = r.p_value if r.p_value is not None else r.statistic
        assert (r.column, r.method, r.drifted) == (r.column, method, drift)
        assert got == pytest.approx(score, rel=2e-3, abs=1e-9)
    assert report.params["correction"] == "none" and report.params["min_effect"] == 0.0


def test_evidently_mode_has_its_inflated_chi_square_and_loopml_does_not() -> None:
    # 400 null replicates at k=10 would show 0.49 vs 0.05; one seeded case suffices here:
    # same distribution, small sample, Evidently's goodness-of-fit flags it, the contingency test does not.
    rng = np.random.default_rng(11)
    p = rng.dirichlet(np.full(10, 5.0))
    flagged = {"evidently": 0, "auto": 0}
    for _ in range(40):
        ref = pd.DataFrame({"c": rng.choice(10, 500, p=p).astype(str)})
        cur = pd.DataFrame({"c": rng.choice(10, 500, p=p).astype(str)})
        for m in flagged:
            flagged[m] += DriftDetector(method=m).fit(ref).score(cur).per_feature[0].drifted
    assert flagged["evidently"] >= 10 and flagged["auto"] <= 6


def test_dataset_rule_counts_exactly_half_as_drift() -> None:
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"a": rng.normal(size=3000), "b": rng.normal(size=3000)})
    cur = pd.DataFrame({"a": rng.normal(1.0, 1, 3000), "b": rng.normal(size=3000)})
    report = DriftDetector(method="evidently").fit(ref).score(cur)
    assert report.drift_share == 0.5 and report.dataset_drift
