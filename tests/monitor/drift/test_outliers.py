"""Outlier shares against the reference's [q0.001, q0.999] bounds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.monitor.drift import DriftDetector


def test_outlier_share_per_feature_and_per_row() -> None:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"a": rng.normal(size=10_000), "b": rng.normal(size=10_000), "c": ["x"] * 10_000})
    a = rng.normal(size=1000)
    a[:100] = 50.0  # 10% far outside
    b = rng.normal(size=1000)
    b[:50] = -50.0  # 5%, on rows already counted for a
    b[500] = np.nan  # missing is not an outlier
    report = DriftDetector().fit(ref).score(pd.DataFrame({"a": a, "b": b, "c": ["x"] * 1000}))
    by = {o.column: o for o in report.outliers}
    assert set(by) == {"a", "b"}
    assert by["a"].share == pytest.approx(0.10, abs=0.005)
    assert by["b"].share == pytest.approx(50 / 999, abs=0.005) and by["b"].n_current == 999
    assert by["a"].reference_share == pytest.approx(0.002, abs=1e-3)
    assert report.outlier_share == pytest.approx(0.10, abs=0.006)


def test_outliers_can_be_switched_off() -> None:
    ref = pd.DataFrame({"a": np.arange(100.0)})
    report = DriftDetector(outliers=False).fit(ref).score(ref)
    assert report.outliers == [] and report.outlier_share is None
