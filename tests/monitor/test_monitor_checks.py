"""Checks as estimators: fit on the reference, score a window, parameters recorded, skips with reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd

from loopml import monitor
from loopml.monitor import (
    CHECKS,
    DataDriftCheck,
    MonitorReference,
    MonitorWindow,
    OutliersCheck,
    QualityCheck,
)
from loopml.monitor.drift import profile_frame


def _ref() -> MonitorReference:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(0, 1, 3000), "c": rng.choice(["a", "b"], 3000)})
    return MonitorReference.build(profile=profile_frame(df), model_ref="m/1")


def _win(df: pd.DataFrame) -> MonitorWindow:
    types = {c: ("float" if df[c].dtype.kind == "f" else "string") for c in df.columns}
    return MonitorWindow(frame=df, start=None, end=None, n_rows=len(df), log_types=types)


def test_every_check_has_the_estimator_shape() -> None:
    ref = _ref()
    for name, cls in CHECKS.items():
        check = cls()
        assert check.fit(ref) is check and check.reference_ is ref
        assert set(check.get_params()) == set(cls._param_names)
        assert name == cls.name


def test_drift_check_flags_a_shift_and_records_params() -> None:
    rng = np.random.default_rng(1)
    same = pd.DataFrame({"x": rng.normal(0, 1, 2000), "c": rng.choice(["a", "b"], 2000)})
    moved = pd.DataFrame({"x": rng.normal(1, 1, 2000), "c": rng.choice(["a", "b"], 2000, p=[0.9, 0.1])})
    check = DataDriftCheck(method="auto", alpha=0.05, drift_share=0.5).fit(_ref())
    ok = check.score(_win(same))
    assert ok.status == "ok" and ok.params["alpha"] == 0.05
    bad = check.score(_win(moved))
    assert bad.status == "fail" and bad.details["drifted_columns"] == ["x", "c"]
    assert {f["method"] for f in bad.details["per_feature"]} == {"ks", "z"}
    assert set(bad.details["histograms"]) == {"x", "c"}
    assert abs(sum(bad.details["histograms"]["x"]["reference"]) - 1.0) < 1e-6


def test_checks_skip_with_a_reason_instead_of_crashing() -> None:
    empty = _win(pd.DataFrame({"x": pd.Series([], dtype=float)}))
    res = DataDriftCheck().fit(_ref()).score(empty)
    assert res.status == "skipped" and res.reason == "no logged rows in the window"
    no_profile = MonitorReference.build(profile=None, reason="model 'm@champion' cannot be resolved")
    res = OutliersCheck(max_share=0.05).fit(no_profile).score(_win(pd.DataFrame({"x": [1.0]})))
    assert res.status == "skipped" and res.reason == "model 'm@champion' cannot be resolved"
    all_missing = _win(pd.DataFrame({"x": [np.nan] * 10, "c": ["a"] * 10}))
    all_missing.empty_columns = {"x"}
    res = DataDriftCheck().fit(_ref()).score(all_missing)
    assert res.details["excluded"] == {"x": "no value in the window"}  # the rest is still compared
    assert [f["column"] for f in res.details["per_feature"]] == ["c"]


def test_quality_uses_profile_categories_without_a_contract() -> None:
    df = pd.DataFrame({"x": np.zeros(100), "c": ["a"] * 90 + ["zz"] * 10})
    res = QualityCheck(max_missing_rate=0.05, max_out_of_range_share=0.01, max_unseen_share=0.05).fit(_ref()).score(_win(df))
    assert res.status == "fail" and res.details["failing_columns"] == ["c"]


def test_public_names_are_exported() -> None:
    for name in monitor.__all__:
        assert getattr(monitor, name) is not None
    assert hasattr(monitor, "drift") or __import__("loopml.monitor.drift")
