"""Per-feature tests: agreement with scipy, calibration under no drift, power, estimator contract."""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from loopml.kernel.exceptions import MonitorError, ValidationError
from loopml.monitor.drift import (
    PSI,
    ChiSquareTest,
    DriftReference,
    JensenShannonDistance,
    KSTest,
    WassersteinDistance,
    ZTest,
)
from loopml.monitor.drift._stattests import chi2_homogeneity, js_distance, two_proportion_z

ALPHA = 0.05


def _ref(values: np.ndarray, **kw: object):  # type: ignore[no-untyped-def]
    return DriftReference.from_frame(pd.DataFrame({"v": values}), **kw).columns["v"]


def _fpr_bound(reps: int) -> float:
    """Nominal rate plus a one-sided 99.5% binomial margin."""
    return float(stats.binom.ppf(0.995, reps, ALPHA)) / reps


def test_chi2_homogeneity_matches_scipy_contingency() -> None:
    a, b = np.array([10, 20, 30, 5, 0]), np.array([12, 18, 40, 9, 0])
    stat, p, dof = chi2_homogeneity(a, b)
    ref = stats.chi2_contingency(np.vstack([a[:4], b[:4]]), correction=False)
    assert (stat, p, dof) == pytest.approx((ref[0], ref[1], ref[2]))


def test_two_proportion_z_matches_the_formula() -> None:
    z, p = two_proportion_z(30, 100, 45, 100)
    pp = 75 / 200
    expect = (0.30 - 0.45) / np.sqrt(pp * (1 - pp) * (2 / 100))
    assert z == pytest.approx(expect) and p == pytest.approx(2 * stats.norm.sf(abs(expect)))
    assert two_proportion_z(0, 10, 0, 20) == (0.0, 1.0)


def test_js_distance_matches_scipy() -> None:
    from scipy.spatial import distance

    p, q = np.array([5.0, 3, 2, 0]), np.array([1.0, 3, 3, 3])
    assert js_distance(p, q) == pytest.approx(distance.jensenshannon(p / p.sum(), q / q.sum()))


def test_wasserstein_from_profile_is_close_to_exact() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.lognormal(1, 0.8, 50_000), rng.lognormal(1.05, 0.8, 40_000)
    got = WassersteinDistance().fit(_ref(x)).score(y).statistic
    exact = stats.wasserstein_distance(x, y) / x.std()
    assert got == pytest.approx(exact, rel=5e-3)


def test_ks_on_a_complete_sample_equals_scipy() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=300), rng.normal(0.2, 1, 400)
    res = KSTest().fit(x).score(y)
    assert res.p_value == pytest.approx(stats.ks_2samp(x, y).pvalue)
    assert res.method == "ks" and res.n_reference == 300 and res.n_current == 400


@pytest.mark.parametrize(
    ("test", "make", "n_ref", "n_cur", "kw"),
    [
        (KSTest(), "normal", 200, 200, {}),
        (ChiSquareTest(), "lognormal", 1000, 300, {"sample_size": 100}),  # binned path
        (ChiSquareTest(), "cat3", 150, 150, {}),
        (ChiSquareTest(), "cat30", 200, 200, {}),
        (ZTest(), "binary", 150, 150, {}),
    ],
)
def test_false_alarm_rate_is_at_most_nominal(test, make, n_ref, n_cur, kw) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(zlib.crc32(make.encode()))
    reps = 300
    hits = 0
    for _ in range(reps):
        if make == "normal":
            x, y = rng.normal(size=n_ref), rng.normal(size=n_cur)
        elif make == "lognormal":
            x, y = rng.lognormal(size=n_ref), rng.lognormal(size=n_cur)
        elif make == "binary":
            x, y = rng.random(n_ref) < 0.2, rng.random(n_cur) < 0.2
        else:
            k = int(make[3:])
            p = rng.dirichlet(np.full(k, 5.0))
            x = rng.choice(k, n_ref, p=p).astype(str)
            y = rng.choice(k, n_cur, p=p).astype(str)
        hits += test.fit(_ref(x, **kw)).score(y).p_value < ALPHA
    assert hits / reps <= _fpr_bound(reps)


def test_clear_shift_is_found() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=3000)
    assert KSTest().fit(_ref(x)).score(rng.normal(0.3, 1, 500)).drifted
    assert ChiSquareTest().fit(_ref(x, sample_size=100)).score(rng.normal(0.3, 1, 500)).drifted
    cats = rng.choice(["a", "b", "c"], 2000, p=[0.5, 0.3, 0.2])
    res = ChiSquareTest().fit(_ref(cats)).score(rng.choice(["a", "b", "c"], 800, p=[0.4, 0.3, 0.3]))
    assert res.drifted and res.effect_name == "jensenshannon" and res.effect > 0.05


def test_min_effect_keeps_tiny_significant_drift_quiet() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=200_000), rng.normal(0.03, 1, 200_000)
    loose = ChiSquareTest().fit(_ref(x)).score(y)
    strict = ChiSquareTest(min_effect=0.05).fit(_ref(x)).score(y)
    assert loose.p_value < 1e-6 and loose.drifted
    assert not strict.drifted and strict.effect < 0.05


def test_distance_methods_decide_on_threshold() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=5000)
    for cls in (WassersteinDistance, JensenShannonDistance, PSI):
        res = cls(threshold=0.1).fit(_ref(x)).score(rng.normal(1.0, 1, 5000))
        assert res.p_value is None and res.drifted and res.statistic == res.effect
        assert not cls(threshold=0.1).fit(_ref(x)).score(rng.normal(size=5000)).drifted


def test_unseen_category_is_drift_in_the_chi_square_test() -> None:
    ref = _ref(np.array(["a"] * 500 + ["b"] * 500))
    res = ChiSquareTest().fit(ref).score(np.array(["a"] * 300 + ["b"] * 300 + ["new"] * 100))
    assert res.drifted


def test_estimator_contract() -> None:
    t = ChiSquareTest(alpha=0.01, n_bins=8)
    assert t.get_params() == {"alpha": 0.01, "min_effect": 0.0, "n_bins": 8, "min_expected": 5.0}
    assert not hasattr(t, "reference_")
    assert t.fit(np.arange(100.0)) is t and t.reference_.n == 100
    with pytest.raises(MonitorError, match="KSTest is not fitted; call fit"):
        KSTest().score([1.0, 2.0])


def test_test_refuses_a_column_type_it_does_not_handle() -> None:
    with pytest.raises(ValidationError, match="method 'ks' does not apply to categorical column 'v'"):
        KSTest().fit(_ref(np.array(["a", "b"])))
    with pytest.raises(ValidationError, match="method 'z' needs a binary column, but column 'v' has more"):
        ZTest().fit(_ref(np.array(["a", "b", "c"]))).score(np.array(["a", "b"]))


def test_all_missing_current_column_is_refused() -> None:
    with pytest.raises(ValidationError, match="column 'v' has no finite value in the current window"):
        KSTest().fit(_ref(np.arange(10.0))).score(np.full(4, np.nan))
