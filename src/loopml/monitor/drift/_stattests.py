"""Per-feature drift tests, estimator-shaped: ``fit(reference)`` then ``score(current)``.

Every test reads the reference *profile* of a column (never raw reference
rows) and a :class:`~loopml.monitor.drift._window.ColumnWindow` of the
current values. Two-sample tests (KS, chi-square, Z) give a p-value and an
effect size: the normalized Wasserstein distance (W1 / reference std) for
numeric columns, the Jensen-Shannon distance (natural log) for categorical and
boolean ones, so one ``min_effect`` means the same thing whatever the test.
Distance methods (Wasserstein, Jensen-Shannon, PSI) have no p-value and
decide on ``effect >= threshold``.

The chi-square test is the contingency test of homogeneity on the 2 x K table
of reference vs current counts: both samples are random, so its false-alarm
rate is nominal, unlike a goodness-of-fit test that treats the reference
shares as exact (Evidently's, inflated to 0.49 at k=10, n=1000).
"""

from __future__ import annotations

import inspect
import math
import warnings
from typing import Any, ClassVar

import numpy as np
from scipy import stats

from loopml.kernel.exceptions import MonitorError, ValidationError
from loopml.monitor.drift._refprofile import ColumnReference, DriftReference
from loopml.monitor.drift._report import FeatureResult
from loopml.monitor.drift._window import ColumnWindow, summarize_window

__all__ = [
    "ChiSquareTest",
    "DriftTest",
    "JensenShannonDistance",
    "KSTest",
    "PSI",
    "WassersteinDistance",
    "ZTest",
    "chi2_homogeneity",
    "js_distance",
    "normalized_wasserstein",
    "psi",
    "two_proportion_z",
]

# ----------------------------------------------------------------- statistics


def chi2_homogeneity(ref: np.ndarray, cur: np.ndarray, *, min_expected: float = 5.0) -> tuple[float, float, int]:
    """Pearson chi-square test of homogeneity on the 2 x K table (stat, p, dof).

    Cells whose smallest expected count is below ``min_expected`` are pooled
    into one cell; pooling looks only at the column totals, which are
    sufficient under the null, so the test keeps its level.
    """
    ref = np.asarray(ref, dtype=np.float64)
    cur = np.asarray(cur, dtype=np.float64)
    tot = ref + cur
    keep = tot > 0
    ref, cur, tot = ref[keep], cur[keep], tot[keep]
    n1, n2 = ref.sum(), cur.sum()
    n = n1 + n2
    if ref.size < 2 or n1 == 0 or n2 == 0:
        return 0.0, 1.0, 0
    sparse = min(n1, n2) * tot / n < min_expected
    if sparse.any() and sparse.sum() < sparse.size:
        pooled_r, pooled_c = ref[sparse].sum(), cur[sparse].sum()
        ref, cur = ref[~sparse], cur[~sparse]
        if min(n1, n2) * (pooled_r + pooled_c) / n < min_expected:
            j = int(np.argmin(ref + cur))  # still too thin: lean it on the smallest cell
            ref[j] += pooled_r
            cur[j] += pooled_c
        else:
            ref = np.append(ref, pooled_r)
            cur = np.append(cur, pooled_c)
    elif sparse.all():
        ref = np.array([ref.sum()])
        cur = np.array([cur.sum()])
    if ref.size < 2:
        return 0.0, 1.0, 0
    tot = ref + cur
    e1 = tot * (n1 / n)
    e2 = tot * (n2 / n)
    stat = float(np.sum((ref - e1) ** 2 / e1) + np.sum((cur - e2) ** 2 / e2))
    dof = int(ref.size - 1)
    return stat, float(stats.chi2.sf(stat, dof)), dof


def two_proportion_z(x1: float, n1: float, x2: float, n2: float) -> tuple[float, float]:
    """Two-sided pooled two-proportion z-test (z, p); p = 1 when both are the same constant."""
    p1, p2 = x1 / n1, x2 / n2
    pp = (x1 + x2) / (n1 + n2)
    var = pp * (1.0 - pp) * (1.0 / n1 + 1.0 / n2)
    if var <= 0.0:
        return 0.0, 1.0
    z = (p1 - p2) / math.sqrt(var)
    return float(z), float(2.0 * stats.norm.sf(abs(z)))


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance (sqrt of the divergence, natural log) of two count or share vectors."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    p = p / p.sum()
    q = q / q.sum()
    m = 0.5 * (p + q)
    nzp, nzq = p > 0, q > 0
    div = 0.5 * (np.sum(p[nzp] * np.log(p[nzp] / m[nzp])) + np.sum(q[nzq] * np.log(q[nzq] / m[nzq])))
    return float(math.sqrt(max(0.0, div)))


def psi(ref: np.ndarray, cur: np.ndarray, *, eps: float = 1e-4) -> float:
    """Population stability index of two count vectors; empty cells count as ``eps``."""
    r = np.asarray(ref, dtype=np.float64)
    c = np.asarray(cur, dtype=np.float64)
    r = r / r.sum()
    c = c / c.sum()
    r = np.where(r == 0, eps, r)
    c = np.where(c == 0, eps, c)
    return float(np.sum((r - c) * np.log(r / c)))


def _w1_binned(ref: ColumnReference, win: ColumnWindow) -> float:
    """W1 between the reference (fine quantile cells) and the current window.

    Exact beyond the reference range. Inside a cell, both CDFs are taken as
    linear, the reference's starting after the point mass of the order
    statistic that opens the cell, and |difference| is integrated exactly
    (error ~ cell mass x cell width; ~1e-3 relative at resolution 1000).
    """
    assert ref.edges is not None and ref.counts is not None and win.bin_counts is not None
    m = ref.edges.size
    fr = np.cumsum(ref.counts[:m]) / ref.n  # share strictly below each edge
    fc = np.cumsum(win.bin_counts[:m]) / win.n
    inner = 0.0
    if m > 1:
        dl = np.minimum(fr[:-1] + 1.0 / ref.n, fr[1:]) - fc[:-1]
        dr = fr[1:] - fc[1:]
        w = np.diff(ref.edges)
        al, ar = np.abs(dl), np.abs(dr)
        same = dl * dr >= 0
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = np.where(al + ar > 0, (dl * dl + dr * dr) / (2.0 * (al + ar)), 0.0)
        inner = float(np.sum(w * np.where(same, 0.5 * (al + ar), cross)))
    return inner + (win.left_tail + win.right_tail) / win.n


def _w1_samples(a_sorted: np.ndarray, b: np.ndarray) -> float:
    """Exact W1 of two samples (as scipy.stats.wasserstein_distance), ``a`` already sorted."""
    b = np.sort(b)
    allv = np.concatenate([a_sorted, b])
    allv.sort(kind="mergesort")
    deltas = np.diff(allv)
    ca = np.searchsorted(a_sorted, allv[:-1], side="right") / a_sorted.size
    cb = np.searchsorted(b, allv[:-1], side="right") / b.size
    return float(np.dot(np.abs(ca - cb), deltas))


def _w1_discrete(ref: ColumnReference, win: ColumnWindow) -> float:
    """Exact W1 when the reference kept its value counts."""
    assert ref.values is not None and ref.value_counts is not None
    cv, cc = win.unique_counts
    grid = np.union1d(ref.values, cv)
    fr = np.cumsum(np.bincount(np.searchsorted(grid, ref.values), ref.value_counts, grid.size)) / ref.n
    fc = np.cumsum(np.bincount(np.searchsorted(grid, cv), cc, grid.size)) / win.n
    return float(np.sum(np.abs(fr - fc)[:-1] * np.diff(grid)))


def normalized_wasserstein(ref: ColumnReference, win: ColumnWindow) -> float:
    """W1(reference, current) / max(reference std, 0.001), as Evidently normalizes it."""
    assert win.values is not None
    if ref.discrete:
        w1 = _w1_discrete(ref, win)
    elif ref.sample_complete and ref.sample is not None:
        w1 = _w1_samples(ref.sample, win.values)  # the profile holds the whole column: exact
    else:
        w1 = _w1_binned(ref, win)
    return w1 / max(ref.std, 0.001)


def quantile_bins(ref: ColumnReference, win: ColumnWindow, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current counts in ``n_bins`` cells of equal reference mass.

    Built by merging the profile's fine cells, so values below the reference
    minimum join the first cell and values above its maximum the last one.
    """
    assert ref.counts is not None and win.bin_counts is not None
    cum = np.cumsum(ref.counts)
    mid = cum - 0.5 * ref.counts
    group = np.minimum((mid * n_bins / ref.n).astype(np.int64), n_bins - 1)
    r = np.bincount(group, weights=ref.counts, minlength=n_bins)
    c = np.bincount(group, weights=win.bin_counts, minlength=n_bins)
    return r, c


def category_table(ref: ColumnReference, win: ColumnWindow) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current counts per category (the union of keys).

    A current key the reference never saw gets its own cell (reference count
    0). Pooling all of them into one cell would pick cells by their reference
    count, which inflates the chi-square test's false alarms; only when the
    reference itself pooled its tail (beyond top-K) do unseen keys go to that
    "other" cell, since they may belong to it.
    """
    assert ref.category_counts is not None and win.counts is not None and win.new_counts is not None
    k = ref.category_counts.size
    if ref.other_count:
        return np.append(ref.category_counts, ref.other_count).astype(np.float64), win.counts.astype(np.float64)
    r = np.concatenate([ref.category_counts, np.zeros(win.new_counts.size, dtype=np.int64)])
    c = np.concatenate([win.counts[:k], win.new_counts])
    return r.astype(np.float64), c.astype(np.float64)


def effect_size(ref: ColumnReference, win: ColumnWindow) -> tuple[float, str]:
    """(effect, name): normalized Wasserstein for numeric, Jensen-Shannon distance otherwise."""
    if ref.type == "numeric":
        return normalized_wasserstein(ref, win), "wasserstein_norm"
    return js_distance(*category_table(ref, win)), "jensenshannon"


# ----------------------------------------------------------------- estimators


def _as_reference(reference: Any) -> ColumnReference:
    if isinstance(reference, ColumnReference):
        return reference
    import pandas as pd

    series = reference if isinstance(reference, pd.Series) else pd.Series(np.asarray(reference))
    name = str(series.name) if series.name is not None else "value"
    return DriftReference.from_frame(pd.DataFrame({name: series.to_numpy()})).columns[name]


class DriftTest:
    """Base of the per-feature tests: parameters in ``__init__``, policy in ``score``.

    Subclasses implement the mechanism, :meth:`_evaluate`, on an already
    summarized window; the detector calls that hook directly so a window is
    binned once for every test that reads it.
    """

    name: ClassVar[str]
    types: ClassVar[tuple[str, ...]]
    has_p_value: ClassVar[bool]

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, for the registry and the audit log."""
        sig = inspect.signature(type(self).__init__)
        return {p: getattr(self, p) for p in sig.parameters if p != "self"}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def check_applies(self, ref: ColumnReference) -> None:
        """Refuse a column type the test is not defined for."""
        if ref.type not in self.types:
            raise ValidationError(
                f"method '{self.name}' does not apply to {ref.type} column '{ref.name}'; "
                f"it applies to: {', '.join(self.types)}",
                field=ref.name, rule="method_type",
            )

    def fit(self, reference: ColumnReference | Any) -> DriftTest:
        """Learn the reference column (a ColumnReference, or raw values to profile)."""
        ref = _as_reference(reference)
        self.check_applies(ref)
        self.reference_ = ref
        return self

    def score(self, current: Any) -> FeatureResult:
        """Compare a current column (array-like or Series) with the fitted reference."""
        ref: ColumnReference | None = getattr(self, "reference_", None)
        if ref is None:
            raise MonitorError(f"{type(self).__name__} is not fitted; call fit(reference) first")
        return self._evaluate(ref, summarize_window(ref, current))

    def _evaluate(self, ref: ColumnReference, win: ColumnWindow) -> FeatureResult:
        raise NotImplementedError

    def _result(self, ref: ColumnReference, win: ColumnWindow, **kw: Any) -> FeatureResult:
        return FeatureResult(column=ref.name, type=ref.type, method=self.name, n_reference=ref.n,
                             n_current=win.n, missing_reference=ref.missing_rate,
                             missing_current=win.missing_rate, **kw)


class _PValueTest(DriftTest):
    """A two-sample test: drift when p < alpha and effect >= min_effect."""

    has_p_value = True

    def __init__(self, *, alpha: float = 0.05, min_effect: float = 0.0) -> None:
        self.alpha = alpha
        self.min_effect = min_effect

    def _decide(self, ref: ColumnReference, win: ColumnWindow, stat: float, p: float) -> FeatureResult:
        effect, effect_name = effect_size(ref, win)
        return self._result(ref, win, statistic=stat, p_value=p, effect=effect, effect_name=effect_name,
                            drifted=bool(p < self.alpha and effect >= self.min_effect),
                            threshold=self.alpha, min_effect=self.min_effect, p_adjusted=p)


class KSTest(_PValueTest):
    """Two-sample Kolmogorov-Smirnov on the reference sample (exact when the sample is the whole column)."""

    name = "ks"
    types = ("numeric",)

    def _evaluate(self, ref: ColumnReference, win: ColumnWindow) -> FeatureResult:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # scipy's exact->asymp fallback notice
            res = stats.ks_2samp(ref.sample, win.values)
        return self._decide(ref, win, float(res.statistic), float(res.pvalue))


class ChiSquareTest(_PValueTest):
    """Chi-square test of homogeneity on the 2 x K table of reference vs current counts.

    K = reference categories + "other" for categorical columns, or up to
    ``n_bins`` cells of equal reference mass for numeric ones (fewer when
    either sample is small: about 10 rows per cell).
    """

    name = "chisquare"
    types = ("numeric", "categorical", "boolean")

    def __init__(self, *, alpha: float = 0.05, min_effect: float = 0.0, n_bins: int = 20,
                 min_expected: float = 5.0) -> None:
        super().__init__(alpha=alpha, min_effect=min_effect)
        self.n_bins = n_bins
        self.min_expected = min_expected

    def _evaluate(self, ref: ColumnReference, win: ColumnWindow) -> FeatureResult:
        if ref.type == "numeric":
            bins = int(min(self.n_bins, max(2, min(ref.n, win.n) // 10)))
            r, c = quantile_bins(ref, win, bins)
        else:
            r, c = category_table(ref, win)
        stat, p, _ = chi2_homogeneity(r, c, min_expected=self.min_expected)
        return self._decide(ref, win, stat, p)


def binary_counts(ref: ColumnReference, win: ColumnWindow) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Distinct keys of reference and current (sorted when comparable) and the counts of each."""
    if ref.type == "numeric":
        assert ref.values is not None and ref.value_counts is not None
        cv, cc = win.unique_counts
        keys_a = np.union1d(ref.values, cv)
        r = np.bincount(np.searchsorted(keys_a, ref.values), ref.value_counts, keys_a.size)
        c = np.bincount(np.searchsorted(keys_a, cv), cc, keys_a.size)
        return keys_a.tolist(), r, c
    assert win.keys is not None and win.key_counts is not None and ref.category_counts is not None
    keys = list(ref.categories) + [k for k in win.keys if k not in ref.index]
    try:
        keys = sorted(keys)
    except TypeError:
        keys = sorted(keys, key=str)
    pos = {k: i for i, k in enumerate(keys)}
    r = np.zeros(len(keys))
    c = np.zeros(len(keys))
    for k, v in zip(ref.categories, ref.category_counts.tolist(), strict=True):
        r[pos[k]] += v
    for k, v in zip(win.keys, win.key_counts.tolist(), strict=True):
        c[pos[k]] += v
    return keys, r, c


def distinct_values(ref: ColumnReference, win: ColumnWindow, limit: int) -> int:
    """Distinct non-missing values of reference + current, exact up to ``limit``, else ``limit + 1``."""
    if ref.type == "numeric":
        if ref.values is None or ref.n_unique > limit:
            return max(ref.n_unique, limit + 1)
        return int(np.union1d(ref.values, win.unique_counts[0]).size)
    return ref.n_unique + win.n_new_keys


class ZTest(_PValueTest):
    """Two-proportion z-test for a column with at most two distinct values (reference + current)."""

    name = "z"
    types = ("numeric", "categorical", "boolean")

    def _evaluate(self, ref: ColumnReference, win: ColumnWindow) -> FeatureResult:
        if distinct_values(ref, win, 2) > 2 or (ref.type != "numeric" and ref.other_count):
            raise ValidationError(
                f"method 'z' needs a binary column, but column '{ref.name}' has more than 2 distinct values",
                field=ref.name, rule="method_type",
            )
        keys, r, c = binary_counts(ref, win)
        if len(keys) < 2:
            return self._decide(ref, win, 0.0, 1.0)
        z, p = two_proportion_z(float(r[1:].sum()), ref.n, float(c[1:].sum()), win.n)
        return self._decide(ref, win, z, p)


class _DistanceTest(DriftTest):
    """A distance with no p-value: drift when the distance reaches ``threshold``."""

    has_p_value = False
    effect_name: ClassVar[str]

    def __init__(self, *, threshold: float = 0.1) -> None:
        self.threshold = threshold

    def _distance(self, ref: ColumnReference, win: ColumnWindow) -> float:
        raise NotImplementedError

    def _evaluate(self, ref: ColumnReference, win: ColumnWindow) -> FeatureResult:
        d = self._distance(ref, win)
        return self._result(ref, win, statistic=d, p_value=None, effect=d, effect_name=self.effect_name,
                            drifted=bool(d >= self.threshold), threshold=self.threshold)


class WassersteinDistance(_DistanceTest):
    """Normalized Wasserstein-1 distance (W1 / reference std, floor 0.001)."""

    name = "wasserstein"
    types = ("numeric",)
    effect_name = "wasserstein_norm"

    def _distance(self, ref: ColumnReference, win: ColumnWindow) -> float:
        return normalized_wasserstein(ref, win)


class JensenShannonDistance(_DistanceTest):
    """Jensen-Shannon distance on categories, or on ``n_bins`` reference-quantile cells."""

    name = "jensenshannon"
    types = ("numeric", "categorical", "boolean")
    effect_name = "jensenshannon"

    def __init__(self, *, threshold: float = 0.1, n_bins: int = 20) -> None:
        super().__init__(threshold=threshold)
        self.n_bins = n_bins

    def _distance(self, ref: ColumnReference, win: ColumnWindow) -> float:
        r, c = quantile_bins(ref, win, self.n_bins) if ref.type == "numeric" else category_table(ref, win)
        return js_distance(r, c)


class PSI(_DistanceTest):
    """Population stability index on categories, or on ``n_bins`` reference-quantile cells."""

    name = "psi"
    types = ("numeric", "categorical", "boolean")
    effect_name = "psi"

    def __init__(self, *, threshold: float = 0.1, n_bins: int = 10, eps: float = 1e-4) -> None:
        super().__init__(threshold=threshold)
        self.n_bins = n_bins
        self.eps = eps

    def _distance(self, ref: ColumnReference, win: ColumnWindow) -> float:
        r, c = quantile_bins(ref, win, self.n_bins) if ref.type == "numeric" else category_table(ref, win)
        return psi(r, c, eps=self.eps)


#: Test classes by method name.
TESTS: dict[str, type[DriftTest]] = {
    cls.name: cls for cls in (KSTest, ChiSquareTest, ZTest, WassersteinDistance, JensenShannonDistance, PSI)
}
