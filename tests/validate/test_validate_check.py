"""validate_frame: every failed rule, with counts and up to five example rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.ingest import ingest
from loopml.kernel.exceptions import ContractViolation
from loopml.validate import Contract, validate_dataset, validate_frame

CONTRACT = Contract.from_dict({
    "version": 1,
    "columns": {
        "temp_max": {"type": "float", "nullable": False, "min": -5.0, "max": 40.0},
        "weather": {"type": "category", "nullable": False, "categories": ["rain", "sun"], "unseen": "reject"},
        "id": {"type": "int", "nullable": False, "unique": True},
        "day": {"type": "datetime", "nullable": True, "min": "2024-01-01"},
        "flag": {"type": "bool"},
        "label": {"type": "string", "nullable": True},
    },
    "target": "rain_tomorrow",
})


def _good(n: int = 10) -> pd.DataFrame:
    return pd.DataFrame({
        "temp_max": np.linspace(0, 30, n),
        "weather": ["rain", "sun"] * (n // 2),
        "id": np.arange(n),
        "day": pd.date_range("2024-02-01", periods=n),
        "flag": [True, False] * (n // 2),
        "label": ["x"] * n,
        "rain_tomorrow": [0, 1] * (n // 2),
    })


def _by_rule(report):  # type: ignore[no-untyped-def]
    return {(f.column, f.rule): f for f in report.failures}


def test_valid_frame_passes() -> None:
    report = validate_frame(_good(), CONTRACT)
    assert report.ok and report.failures == () and report.summary() == "all rules pass on 10 rows"


def test_every_rule_is_reported_with_counts_and_examples() -> None:
    df = _good(20)
    df.loc[[1, 2, 3, 4, 5, 6, 7], "temp_max"] = 99.0
    df.loc[8, "temp_max"] = np.nan
    df.loc[[9, 10], "weather"] = "snow"
    df.loc[11, "id"] = 0
    df.loc[12, "day"] = pd.Timestamp("2023-06-01")
    df["label"] = df["label"].astype(object)
    df.loc[13, "label"] = 5
    df = df.drop(columns=["flag", "rain_tomorrow"]).assign(extra=1)
    report = validate_frame(df, CONTRACT)
    got = _by_rule(report)
    assert not report.ok
    assert got[("temp_max", "max")].count == 7
    assert [e["row"] for e in got[("temp_max", "max")].examples] == [1, 2, 3, 4, 5]
    assert got[("temp_max", "max")].examples[0]["value"] == 99.0
    assert got[("temp_max", "not_null")].count == 1
    assert got[("weather", "unseen_category")].count == 2 and got[("weather", "unseen_category")].examples[0] == {"row": 9, "value": "snow"}
    assert got[("id", "unique")].examples == ({"row": 11, "value": 0},)
    assert got[("day", "min")].count == 1
    assert got[("label", "type")].examples == ({"row": 13, "value": 5},)
    assert got[("flag", "missing_column")].count == 20
    assert got[("rain_tomorrow", "missing_target")].severity == "error"
    assert got[("extra", "extra_column")].severity == "warning"
    with pytest.raises(ContractViolation, match="data breaks its contract") as info:
        report.raise_for_errors()
    assert info.value.report is report


def test_types_are_checked_on_object_columns_from_requests() -> None:
    contract = CONTRACT.features()
    df = pd.DataFrame({"temp_max": ["12.5", "hot"], "weather": ["rain", "sun"], "id": [1.0, 2.5],
                       "day": ["2024-03-01", "not a date"], "flag": [True, "yes"], "label": [None, "a"]})
    got = _by_rule(validate_frame(df, contract))
    assert got[("temp_max", "type")].examples == ({"row": 1, "value": "hot"},)
    assert got[("id", "type")].examples == ({"row": 1, "value": 2.5},)
    assert got[("day", "type")].examples == ({"row": 1, "value": "not a date"},)
    assert got[("flag", "type")].count == 1
    assert ("label", "not_null") not in got


def test_unseen_warn_is_a_warning_and_one_row_frames_work() -> None:
    d = CONTRACT.to_dict()
    d["columns"]["weather"]["unseen"] = "warn"
    contract = Contract.from_dict(d).features()
    row = _good(2).drop(columns=["rain_tomorrow"]).head(1).assign(weather="snow")
    report = validate_frame(row, contract)
    assert report.ok and [(f.rule, f.severity) for f in report.failures] == [("unseen_category", "warning")]


def test_validate_dataset_uses_the_stored_contract(sqlite_workspace) -> None:
    ingest(sqlite_workspace, _good(), "w", target="rain_tomorrow")
    assert validate_dataset(sqlite_workspace, "w@1").ok
    assert not validate_dataset(sqlite_workspace, "w", CONTRACT.to_dict() | {"target": "nope"}).ok
