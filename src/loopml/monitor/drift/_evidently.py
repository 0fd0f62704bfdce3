"""Evidently-compatible mode: Evidently 0.7's default DataDriftPreset, test by test.

For users migrating from Evidently: the same per-column test choice, the same
scores and the same verdict rules, read from its source
(``legacy/calculations/stattests/registry.py::_get_default_stattest`` and the
``stattests/*.py`` files; see ``shared/bench/drift/RESULTS.md`` section 1):

==================  ======================  =============================
column              reference rows <= 1000  reference rows > 1000
==================  ======================  =============================
numeric, > 5 vals   ks, drift if p <= 0.05  wasserstein (normed) >= 0.1
numeric, 3-5 vals   chisquare_gof, p < 0.05  jensenshannon >= 0.1
numeric, <= 2 vals  z, p < 0.05            jensenshannon >= 0.1
categorical, > 2    chisquare_gof, p < 0.05  jensenshannon >= 0.1
categorical, <= 2   z, p < 0.05            jensenshannon >= 0.1
==================  ======================  =============================

"vals" counts distinct non-missing values of reference + current; only the
reference size matters. ``chisquare_gof`` is Evidently's one-sample
goodness-of-fit test (reference shares taken as exact), kept here *only* for
compatibility: its false-alarm rate is far above nominal. No multiple-testing
correction and no minimum effect apply in this mode.

Differences that remain: Wasserstein is computed from the profile's fine
quantile grid (relative error ~1e-3 against the exact value, which only
matters within that margin of 0.1), and with more categories than the
profile's ``top_k`` the tail categories are pooled.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

from loopml.monitor.drift._refprofile import ColumnReference
from loopml.monitor.drift._report import FeatureResult
from loopml.monitor.drift._stattests import (
    binary_counts,
    category_table,
    distinct_values,
    effect_size,
    js_distance,
    normalized_wasserstein,
    two_proportion_z,
)
from loopml.monitor.drift._window import ColumnWindow

__all__ = ["EVIDENTLY_METHODS", "EVIDENTLY_NAMES", "evidently_method", "evidently_score"]

#: loopml method name -> threshold and comparison in Evidently's default preset.
EVIDENTLY_METHODS = ("ks", "chisquare_gof", "z", "wasserstein", "jensenshannon")
#: loopml method name -> the method string Evidently reports.
EVIDENTLY_NAMES = {
    "ks": "K-S p_value",
    "chisquare_gof": "chi-square p_value",
    "z": "Z-test p_value",
    "jensenshannon": "Jensen-Shannon distance",
    "wasserstein": "Wasserstein distance (normed)",
}
_P_THRESHOLD = 0.05
_DISTANCE_THRESHOLD = 0.1
_SMALL_REFERENCE = 1000


def evidently_method(ref: ColumnReference, win: ColumnWindow) -> str:
    """Evidently's default test for this column (registry.py::_get_default_stattest)."""
    if ref.type == "numeric":
        n_values = distinct_values(ref, win, 5)
        if ref.n <= _SMALL_REFERENCE:
            if n_values <= 5:
                return "chisquare_gof" if n_values > 2 else "z"
            return "ks"
        return "jensenshannon" if n_values <= 5 else "wasserstein"
    n_values = ref.n_unique + win.n_new_keys
    if ref.n <= _SMALL_REFERENCE:
        return "chisquare_gof" if n_values > 2 else "z"
    return "jensenshannon"


def _chisquare_gof(r: np.ndarray, c: np.ndarray, n_ref: int, n_cur: int) -> tuple[float, float]:
    """scipy.stats.chisquare(cur, ref * n_cur / n_ref) without its warnings; new keys give inf."""
    f_exp = r * (n_cur / n_ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(f_exp > 0, (c - f_exp) ** 2 / np.where(f_exp > 0, f_exp, 1.0), np.inf)
    stat = float(np.sum(terms))
    dof = r.size - 1
    if dof < 1:
        return stat, float("nan")
    return stat, float(stats.chi2.sf(stat, dof))


def evidently_score(method: str, ref: ColumnReference, win: ColumnWindow) -> FeatureResult:
    """Score one column the way Evidently's default preset does."""
    p: float | None
    if method == "ks":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = stats.ks_2samp(ref.sample, win.values)
        stat, p = float(res.statistic), float(res.pvalue)
        drifted, thr = p <= _P_THRESHOLD, _P_THRESHOLD
    elif method == "chisquare_gof":
        _, r, c = binary_counts(ref, win)
        stat, p = _chisquare_gof(r, c, ref.n, win.n)
        drifted, thr = p < _P_THRESHOLD, _P_THRESHOLD
    elif method == "z":
        keys, r, c = binary_counts(ref, win)
        stat, p = (0.0, 1.0) if len(keys) < 2 else two_proportion_z(float(r[1:].sum()), ref.n,
                                                                     float(c[1:].sum()), win.n)
        drifted, thr = p < _P_THRESHOLD, _P_THRESHOLD
    elif method == "wasserstein":
        stat, p = normalized_wasserstein(ref, win), None
        drifted, thr = stat >= _DISTANCE_THRESHOLD, _DISTANCE_THRESHOLD
    else:
        if ref.type == "numeric":
            _, r, c = binary_counts(ref, win)
        else:
            r, c = category_table(ref, win)
        stat, p = js_distance(r, c), None
        drifted, thr = stat >= _DISTANCE_THRESHOLD, _DISTANCE_THRESHOLD
    if p is None:
        effect, effect_name = stat, ("wasserstein_norm" if method == "wasserstein" else "jensenshannon")
    else:
        effect, effect_name = effect_size(ref, win)
    return FeatureResult(
        column=ref.name, type=ref.type, method=method, statistic=stat, p_value=p, effect=effect,
        effect_name=effect_name, drifted=bool(drifted), n_reference=ref.n, n_current=win.n, threshold=thr,
        p_adjusted=p, missing_reference=ref.missing_rate, missing_current=win.missing_rate,
    )
