"""Issue detection and the self-contained HTML profile report."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from loopml.ingest import ingest
from loopml.validate import detect_issues, get_contract, render_profile_html, validate_dataset


def _messy(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, n)
    x[:40] = 50.0  # outliers
    df = pd.DataFrame({
        "x": x,
        "mostly_missing": np.where(rng.random(n) < 0.4, np.nan, 1.0),
        "constant": ["same"] * n,
        "user_id": [f"u{i}" for i in range(n)],
        "fraud": rng.random(n) < 0.03,
    })
    return pd.concat([df, df.iloc[:5]], ignore_index=True)


def test_detect_issues_finds_common_problems(sqlite_workspace) -> None:
    rec = ingest(sqlite_workspace, _messy(), "m", target="fraud")
    kinds = {(i.kind, i.column) for i in detect_issues(rec.profile, target="fraud")}
    assert {("duplicates", None), ("missing", "mostly_missing"), ("constant", "constant"),
            ("outliers", "x"), ("class_imbalance", "fraud")} <= kinds


def test_profile_html_is_self_contained_with_sections(sqlite_workspace) -> None:
    rec = ingest(sqlite_workspace, _messy(), "m", target="fraud")
    contract = get_contract(sqlite_workspace, "m")
    html = render_profile_html(rec, contract=contract, report=validate_dataset(sqlite_workspace, rec))
    for section in ("warnings", "summary", "missing", "duplicates", "target", "outliers", "columns"):
        assert f'<section id="{section}">' in html
    assert html.index('id="warnings"') < html.index('id="columns"')
    assert "class_imbalance" in html and "<svg" in html and "m@1" in html
    assert not re.search(r"(src|href)=\"https?://", html) and "<script" not in html
