"""The automatic test choice and the multiple-testing corrections."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.kernel.exceptions import ValidationError
from loopml.monitor.drift import DriftReference, adjust_pvalues
from loopml.monitor.drift._selection import auto_method, check_method
from loopml.monitor.drift._window import summarize_window


def _choice(ref_values: np.ndarray, cur_values: np.ndarray, **kw: object) -> str:
    ref = DriftReference.from_frame(pd.DataFrame({"v": ref_values}), **kw).columns["v"]
    return auto_method(ref, summarize_window(ref, cur_values))


def test_auto_choice_follows_the_documented_table() -> None:
    rng = np.random.default_rng(0)
    assert _choice(rng.random(100) < 0.5, rng.random(50) < 0.5) == "z"
    assert _choice(np.array([0.0, 1.0] * 50), np.array([1.0, 0.0, 1.0])) == "z"
    assert _choice(np.array(["a", "b"] * 50), np.array(["a", "b"])) == "z"
    assert _choice(np.array(["a", "b"] * 50), np.array(["a", "c"])) == "chisquare"  # 3 values in all
    assert _choice(np.array(["a", "b", "c"] * 50), np.array(["a"])) == "chisquare"
    assert _choice(rng.normal(size=1000), rng.normal(size=10)) == "ks"  # whole reference in the sample
    assert _choice(rng.normal(size=1000), rng.normal(size=10), sample_size=100) == "chisquare"


def test_bh_adjustment_matches_the_step_up_rule() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5])
    # sorted: .005 .01 .03 .04 .5 -> *5/rank: .025 .025 .05 .05 .5, then running min from the top
    assert adjust_pvalues(p, "bh") == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.5])


def test_holm_and_bonferroni_are_stricter_than_bh() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5])
    assert adjust_pvalues(p, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.5])
    assert adjust_pvalues(p, "bonferroni") == pytest.approx([0.05, 0.2, 0.15, 0.025, 1.0])
    assert adjust_pvalues(p, "none") == pytest.approx(p)
    assert adjust_pvalues(np.array([]), "bh").size == 0


def test_bh_keeps_family_false_alarms_near_alpha_under_the_global_null() -> None:
    rng = np.random.default_rng(1)
    any_hit = sum(bool((adjust_pvalues(rng.random(20), "bh") < 0.05).any()) for _ in range(2000))
    assert any_hit / 2000 < 0.07  # uncorrected it would be 1 - 0.95**20 = 0.64


def test_unknown_method_lists_the_allowed_ones() -> None:
    with pytest.raises(ValidationError, match=r"unknown drift method 'kss' for method; allowed: auto, evidently, ks,"):
        check_method("kss")
