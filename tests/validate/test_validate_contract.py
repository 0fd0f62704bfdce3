"""Contracts: inference, YAML round trip, strict parsing, storage on datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from loopml.ingest import ingest
from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.metadata._orm import AuditEvent
from loopml.validate import Contract, get_contract, infer_contract, set_contract


def _frame(n: int = 100) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "id": np.arange(n),
        "temp_max": rng.uniform(-5, 40, n),
        "weather": rng.choice(["rain", "sun"], n),
        "note": [f"free text {i}" for i in range(n)],
        "rain_tomorrow": rng.random(n) < 0.5,
    })


def test_infer_contract_from_frame_and_yaml_round_trip() -> None:
    df = _frame()
    c = infer_contract(df, target="rain_tomorrow")
    d = c.to_dict()
    assert d["target"] == "rain_tomorrow"
    assert d["columns"]["id"] == {"type": "int", "nullable": False, "min": 0, "max": 99, "unique": True}
    assert d["columns"]["weather"] == {"type": "category", "nullable": False, "categories": ["rain", "sun"], "unseen": "reject"}
    assert d["columns"]["temp_max"]["min"] == pytest.approx(df["temp_max"].min())
    assert d["columns"]["note"] == {"type": "string", "nullable": False}
    assert d["columns"]["rain_tomorrow"]["type"] == "bool"
    assert Contract.from_yaml(c.to_yaml()) == c
    assert Contract.from_dict(d) == c
    assert c.features().feature_names == ["id", "temp_max", "weather", "note"]
    with pytest.raises(ValidationError, match="target column 'y' is not in the data"):
        infer_contract(df, target="y")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("columns: {a: {type: text}}", r"'columns\.a\.type' is 'text'; allowed values: int, float, bool, string, category, datetime"),
        ("columns: {a: {type: int, colour: red}}", r"unknown key 'columns\.a\.colour'; allowed keys: type, nullable, min, max"),
        ("columns: {a: {type: category, categories: [x], unseen: maybe}}", r"'columns\.a\.unseen' is 'maybe'; allowed values: reject, warn, allow"),
        ("columns: {a: {type: float, min: 3, max: 1}}", r"'columns\.a\.min' \(3\) is greater than 'columns\.a\.max' \(1\)"),
        ("columns: {a: {type: float, min: low}}", r"'columns\.a\.min' must be a number for a float column"),
        ("columns: {a: {type: int, nullable: maybe}}", r"'columns\.a\.nullable' must be true or false"),
        ("colums: {}", r"unknown key 'colums'; allowed keys: version, columns, target"),
        ("version: 2\ncolumns: {a: {type: int}}", r"'version' is 2; allowed values: 1"),
        ("columns: [a, b", r"not valid YAML at line 1"),
        ("columns: {}", r"'columns' must be a non-empty mapping"),
    ],
)
def test_invalid_contract_yaml_names_key_and_allowed_values(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match="invalid contract: " + message):
        Contract.from_yaml(text)


def test_contract_is_inferred_at_first_ingest_then_set_and_audited(workspace) -> None:
    ingest(workspace, _frame(), "weather", target="rain_tomorrow")
    inferred = get_contract(workspace, "weather")
    assert inferred.target == "rain_tomorrow"
    edited = inferred.to_dict()
    edited["columns"]["temp_max"] = {"type": "float", "nullable": False, "min": -10.0, "max": 45.0}
    set_contract(workspace, "weather", Contract.from_dict(edited), reason="widen range")
    assert get_contract(workspace, "weather").columns["temp_max"].max == 45.0
    with workspace.store.read() as s:
        ev = s.execute(select(AuditEvent).where(AuditEvent.action == "dataset.contract").order_by(AuditEvent.seq)).scalars().all()
    assert [e.reason for e in ev][-1] == "widen range"
    assert ev[-1].before["columns"]["temp_max"]["max"] != 45.0 and ev[-1].after["columns"]["temp_max"]["max"] == 45.0
    with pytest.raises(NotFoundError, match="dataset 'nope' not found"):
        set_contract(workspace, "nope", edited)
    with pytest.raises(ValidationError, match="allowed values: reject, warn, allow"):
        set_contract(workspace, "weather", {"columns": {"a": {"type": "category", "unseen": "x"}}})
