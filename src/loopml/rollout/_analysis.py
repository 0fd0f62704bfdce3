"""Online analysis of a rollout: candidate vs baseline on live signals, with tests.

Each signal is judged on two things, never a raw difference alone: a
statistical test (is the gap real?) and a minimum effect (is it big enough to
matter?). Below a minimum sample the signal says ``insufficient`` and the
rollout holds, with one exception: a candidate that fails requests the
baseline does not is rolled back as soon as the evidence is conclusive.
Below ``min_requests`` the error rate is judged by Fisher's exact test
(exact at any sample size) against the stricter ``early_alpha`` (0.001): the
controller looks every second, so each early look must be far stronger than
``alpha`` to keep false rollbacks rare. A candidate failing every request
breaches on its first handful of requests; one failing a fifth of them on a
few dozen. ``early_alpha=0`` turns this off.

| signal               | test                                   | breach when                                  |
|----------------------|----------------------------------------|----------------------------------------------|
| error rate           | two-proportion z-test, one-sided       | p < alpha and increase > max_error_rate_increase |
| (below min_requests) | Fisher's exact test, one-sided          | p < early_alpha and increase > max_error_rate_increase |
| latency p95          | Mann-Whitney U, one-sided, per model call | p < alpha, p95 ratio > max_latency_ratio and p95 increase > min_latency_increase_ms |
| prediction divergence| chi-square homogeneity on binned outputs | p < alpha and Jensen-Shannon > max_divergence |
| model metric (labels)| two-proportion z (accuracy) / Welch t (abs error) | p < alpha and drop > max_metric_drop |

``alpha`` here is the level of one look at one signal (:func:`look_alpha`): the controller
tests the same growing samples again and again, so the rollout's ``alpha`` is spent across
its looks and split across its signals.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["SignalResult", "compare_versions", "metric_comparison", "two_proportion_test"]


@dataclass(frozen=True)
class SignalResult:
    name: str
    #: ok | breach | insufficient | better
    status: str
    baseline: float | None
    candidate: float | None
    p_value: float | None
    effect: float | None
    n_baseline: int
    n_candidate: int
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def look_alpha(alpha: float, look: int, tests: int) -> float:
    """The level for each of ``tests`` signals at a rollout's ``look``-th full analysis (1, 2, ...).

    Why: a full analysis every ``interval_s`` tests the same accumulating samples again; judged at
    ``alpha`` each time, a healthy candidate would be rolled back by chance over a long enough
    rollout (the optional-stopping problem). Look k spends ``alpha * 6 / (pi^2 k^2)`` (the series
    sums to ``alpha``), split evenly across the signals (Bonferroni), so the chance of any false
    breach over the whole rollout stays under ``alpha``. A real breach still shows: its p-value
    shrinks much faster than the level as samples grow.
    """
    return alpha * 6.0 / (math.pi ** 2 * max(look, 1) ** 2) / max(tests, 1)


def two_proportion_test(x_c: int, n_c: int, x_b: int, n_b: int) -> tuple[float, float]:
    """One-sided test that the candidate's rate exceeds the baseline's: (z, p)."""
    if n_c == 0 or n_b == 0:
        return 0.0, 1.0
    pooled = (x_c + x_b) / (n_c + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_b))
    if se == 0:
        return 0.0, 1.0
    z = (x_c / n_c - x_b / n_b) / se
    return z, float(stats.norm.sf(z))


def _error_rate(base: pd.DataFrame, cand: pd.DataFrame, cfg: dict[str, Any]) -> SignalResult:
    nb, nc = len(base), len(cand)
    # A version's failures are 5xx: bad input (4xx) is the client's, not the model's.
    eb = int((base["status"] >= 500).sum()) if nb else 0
    ec = int((cand["status"] >= 500).sum()) if nc else 0
    rb, rc = (eb / nb if nb else None), (ec / nc if nc else None)
    if nc < cfg["min_requests"] or nb == 0:
        early = _early_error_breach(ec, nc, eb, nb, cfg)
        if early is not None:
            return early
        return SignalResult("error_rate", "insufficient", rb, rc, None, None, nb, nc,
                            f"{nc} candidate requests, need {cfg['min_requests']}")
    _, p = two_proportion_test(ec, nc, eb, nb)
    increase = (rc or 0) - (rb or 0)
    breach = p < cfg["alpha"] and increase > cfg["max_error_rate_increase"]
    return SignalResult("error_rate", "breach" if breach else "ok", rb, rc, p, increase, nb, nc,
                        f"candidate {rc:.2%} vs baseline {rb:.2%} errors (p={p:.3g})")


def _early_error_breach(ec: int, nc: int, eb: int, nb: int, cfg: dict[str, Any]) -> SignalResult | None:
    """A breach on fewer than ``min_requests`` candidate requests when Fisher's exact test is conclusive."""
    alpha = float(cfg.get("early_alpha") or 0.0)
    if alpha <= 0 or nb == 0 or nc == 0 or ec == 0:
        return None
    rb, rc = eb / nb, ec / nc
    increase = rc - rb
    if increase <= cfg["max_error_rate_increase"]:
        return None
    p = float(stats.fisher_exact([[ec, nc - ec], [eb, nb - eb]], alternative="greater")[1])
    if p >= alpha:
        return None
    return SignalResult("error_rate", "breach", rb, rc, p, increase, nb, nc,
                        f"candidate {rc:.2%} vs baseline {rb:.2%} errors on {nc} candidate requests, before "
                        f"min_requests {cfg['min_requests']}: conclusive (Fisher p={p:.3g} < {alpha:.2g})",
                        extra={"early": True})


def _per_call(frame: pd.DataFrame) -> np.ndarray:
    """Latencies of a version's successful requests, one per model call.

    Requests scored in one micro-batch finish together and share one latency; a split draws a
    version per batch (``loopml.serve``), so under load a version's requests come in such groups,
    and counting each request as a sample would overstate the evidence (and the test's p). A
    request's finish time (arrival + latency, to the millisecond) identifies its call; each call
    counts once, at its median latency. Without an arrival time every request counts.
    """
    ok = frame.loc[frame["status"] < 500]
    latency = ok["latency_ms"].to_numpy(dtype=float)
    if "ts" not in ok.columns or len(ok) < 2:
        return latency
    arrived = (pd.to_datetime(ok["ts"], utc=True) - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    done = np.round(arrived * 1000.0 + latency).astype(np.int64)
    return pd.Series(latency).groupby(done).median().to_numpy(dtype=float)


def _latency(base: pd.DataFrame, cand: pd.DataFrame, cfg: dict[str, Any]) -> SignalResult:
    lb, lc = _per_call(base), _per_call(cand)
    if len(lc) < cfg["min_requests"] // 2 or len(lb) < 10:
        return SignalResult("latency_p95", "insufficient", None, None, None, None, len(lb), len(lc),
                            f"{len(lc)} successful candidate model calls")
    pb, pc = float(np.percentile(lb, 95)), float(np.percentile(lc, 95))
    p = float(stats.mannwhitneyu(lc, lb, alternative="greater").pvalue)
    ratio = pc / pb if pb > 0 else math.inf
    # Rollouts stored before min_latency_increase_ms existed keep judging on the ratio alone.
    floor = float(cfg.get("min_latency_increase_ms", 0.0))
    breach = p < cfg["alpha"] and ratio > cfg["max_latency_ratio"] and pc - pb > floor
    return SignalResult("latency_p95", "breach" if breach else "ok", pb, pc, p, ratio, len(lb), len(lc),
                        f"p95 {pc:.1f} ms vs {pb:.1f} ms over {len(lc)} / {len(lb)} model calls (x{ratio:.2f}, p={p:.3g})")


def _binned(values_b: np.ndarray, values_c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if values_b.dtype.kind in "OUSb" or len(np.unique(np.concatenate([values_b, values_c]))) <= 20:
        cats = np.unique(np.concatenate([values_b.astype(str), values_c.astype(str)]))
        cb = np.array([(values_b.astype(str) == c).sum() for c in cats])
        cc = np.array([(values_c.astype(str) == c).sum() for c in cats])
        return cb, cc
    edges = np.unique(np.quantile(values_b.astype(float), np.linspace(0, 1, 11)))
    edges[0], edges[-1] = -np.inf, np.inf
    return np.histogram(values_b.astype(float), edges)[0], np.histogram(values_c.astype(float), edges)[0]


def _divergence(base: pd.DataFrame, cand: pd.DataFrame, cfg: dict[str, Any]) -> SignalResult:
    if "prediction" not in base.columns or "prediction" not in cand.columns:
        return SignalResult("prediction_divergence", "insufficient", None, None, None, None, len(base), len(cand),
                            "no prediction column in the log")
    vb = base.loc[base["status"] < 500, "prediction"].dropna().to_numpy()
    vc = cand.loc[cand["status"] < 500, "prediction"].dropna().to_numpy()
    if len(vc) < cfg["min_requests"] // 2 or len(vb) < 10:
        return SignalResult("prediction_divergence", "insufficient", None, None, None, None, len(vb), len(vc),
                            f"{len(vc)} candidate predictions")
    cb, cc = _binned(vb, vc)
    keep = (cb + cc) > 0
    cb, cc = cb[keep], cc[keep]
    if len(cb) < 2:
        return SignalResult("prediction_divergence", "ok", None, None, 1.0, 0.0, len(vb), len(vc), "one output value only")
    p = float(stats.chi2_contingency(np.vstack([cb, cc]))[1])
    pb_, pc_ = cb / cb.sum(), cc / cc.sum()
    m = (pb_ + pc_) / 2
    js = float(math.sqrt(max(0.0, (stats.entropy(pb_, m, base=2) + stats.entropy(pc_, m, base=2)) / 2)))
    breach = p < cfg["alpha"] and js > cfg["max_divergence"]
    return SignalResult("prediction_divergence", "breach" if breach else "ok", None, None, p, js, len(vb), len(vc),
                        f"Jensen-Shannon {js:.3f} between output distributions (p={p:.3g})")


def metric_comparison(base: pd.DataFrame, cand: pd.DataFrame, cfg: dict[str, Any], *, name: str | None = None) -> SignalResult:
    """Candidate vs baseline on labelled rows: accuracy (classification) or absolute error."""
    metric = cfg.get("metric") or "accuracy"
    sig = name or f"metric_{metric}"
    lb = base.dropna(subset=["label"]) if "label" in base.columns else base.iloc[0:0]
    lc = cand.dropna(subset=["label"]) if "label" in cand.columns else cand.iloc[0:0]
    if len(lc) < cfg["min_labels"] or len(lb) < cfg["min_labels"]:
        return SignalResult(sig, "insufficient", None, None, None, None, len(lb), len(lc),
                            f"{len(lc)} labelled candidate rows and {len(lb)} baseline rows; need {cfg['min_labels']} each")
    if metric in ("mae", "abs_error"):
        eb = (lb["prediction"].astype(float) - lb["label"].astype(float)).abs()
        ec = (lc["prediction"].astype(float) - lc["label"].astype(float)).abs()
        p_worse = float(stats.ttest_ind(ec, eb, equal_var=False, alternative="greater").pvalue)
        p_better = float(stats.ttest_ind(ec, eb, equal_var=False, alternative="less").pvalue)
        vb, vc = float(eb.mean()), float(ec.mean())
        drop = vc - vb
    else:
        ok_b = (lb["prediction"].astype(str) == lb["label"].astype(str)).to_numpy()
        ok_c = (lc["prediction"].astype(str) == lc["label"].astype(str)).to_numpy()
        vb, vc = float(ok_b.mean()), float(ok_c.mean())
        # "worse" = candidate's error rate higher.
        _, p_worse = two_proportion_test(int((~ok_c).sum()), len(ok_c), int((~ok_b).sum()), len(ok_b))
        _, p_better = two_proportion_test(int(ok_c.sum()), len(ok_c), int(ok_b.sum()), len(ok_b))
        drop = vb - vc
    if p_worse < cfg["alpha"] and drop > cfg["max_metric_drop"]:
        status, p = "breach", p_worse
    elif p_better < cfg["alpha"] and -drop > cfg["max_metric_drop"]:
        status, p = "better", p_better
    else:
        status, p = "ok", min(p_worse, p_better)
    return SignalResult(sig, status, vb, vc, p, -drop, len(lb), len(lc),
                        f"{metric}: candidate {vc:.4f} vs baseline {vb:.4f} on {len(lc)}/{len(lb)} labelled rows (p={p:.3g})")


def compare_versions(base: pd.DataFrame, cand: pd.DataFrame, cfg: dict[str, Any], *, with_labels: bool) -> list[SignalResult]:
    """Every signal for one analysis window."""
    signals = [_error_rate(base, cand, cfg), _latency(base, cand, cfg), _divergence(base, cand, cfg)]
    if with_labels:
        signals.append(metric_comparison(base, cand, cfg))
    return signals
