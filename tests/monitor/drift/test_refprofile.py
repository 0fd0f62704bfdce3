"""Reference profiles: content, JSON round-trip, and the errors on bad reference data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from loopml.kernel.exceptions import ValidationError
from loopml.monitor.drift import DriftReference, profile_frame


def _frame(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 2, n)
    x[:10] = np.nan
    return pd.DataFrame({
        "x": x,
        "color": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
        "flag": rng.random(n) < 0.25,
        "k": rng.integers(0, 4, n),
    })


def test_profile_round_trips_through_json() -> None:
    prof = profile_frame(_frame())
    again = json.loads(json.dumps(prof))
    assert again == prof
    ref = DriftReference.from_profile(again)
    assert list(ref.columns) == ["x", "color", "flag", "k"]
    assert ref["color"].categories[0] == "red"
    assert ref["flag"].categories == (False, True)


def test_numeric_profile_holds_exact_counts_and_moments() -> None:
    df = _frame()
    col = profile_frame(df)["columns"]["x"]
    x = df["x"].dropna().to_numpy()
    assert col["type"] == "numeric"
    assert col["n"] == x.size and col["n_missing"] == 10
    assert col["missing_rate"] == pytest.approx(10 / 2000)
    assert col["mean"] == pytest.approx(x.mean()) and col["std"] == pytest.approx(x.std())
    assert sum(col["counts"]) == x.size and len(col["counts"]) == len(col["edges"]) + 1
    assert col["quantiles"]["0.5"] == pytest.approx(np.quantile(x, 0.5))
    # small column: the sample is the whole column, so KS on it is exact
    assert col["sample_complete"] and sorted(col["sample"]) == sorted(x.tolist())


def test_large_column_keeps_a_seeded_sample() -> None:
    x = np.random.default_rng(3).normal(size=20_000)
    a = profile_frame({"x": x}, sample_size=500, seed=7)["columns"]["x"]
    b = profile_frame({"x": x}, sample_size=500, seed=7)["columns"]["x"]
    c = profile_frame({"x": x}, sample_size=500, seed=8)["columns"]["x"]
    assert len(a["sample"]) == 500 and not a["sample_complete"]
    assert a["sample"] == b["sample"] != c["sample"]


def test_categorical_top_k_pools_the_tail_as_other() -> None:
    vals = np.repeat(np.array(["a", "b", "c", "d"]), [50, 30, 15, 5])
    col = profile_frame({"c": vals}, top_k=2)["columns"]["c"]
    assert col["categories"] == ["a", "b"] and col["counts"] == [50, 30] and col["other_count"] == 20
    assert col["n_unique"] == 4


def test_low_cardinality_numeric_keeps_value_counts() -> None:
    col = profile_frame(_frame())["columns"]["k"]
    assert col["values"] == [0.0, 1.0, 2.0, 3.0] and sum(col["value_counts"]) == 2000


def test_types_override_makes_int_codes_categorical() -> None:
    col = profile_frame(_frame(), types={"k": "categorical"})["columns"]["k"]
    assert col["type"] == "categorical" and sorted(col["categories"]) == [0, 1, 2, 3]


def test_all_missing_reference_column_is_refused() -> None:
    with pytest.raises(ValidationError, match="column 'x' has no finite value in the reference") as err:
        profile_frame({"x": np.full(5, np.nan)})
    assert err.value.field == "x" and err.value.rule == "all_missing"


def test_empty_reference_is_refused() -> None:
    with pytest.raises(ValidationError, match="reference data has no rows"):
        profile_frame(pd.DataFrame({"x": np.array([], dtype=float)}))


def test_unsupported_dtype_names_the_column() -> None:
    df = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=3)})
    with pytest.raises(ValidationError, match="column 't' has dtype datetime64.*does not support"):
        profile_frame(df)


def test_unknown_column_lists_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="column 'nope' is not in the reference data; known columns: 'x'"):
        profile_frame({"x": [1.0, 2.0]}, columns=["nope"])


def test_foreign_dict_is_not_a_profile() -> None:
    with pytest.raises(ValidationError, match="not a drift profile"):
        DriftReference.from_profile({"columns": {}})
    prof = profile_frame({"x": [1.0, 2.0, 3.0]})
    with pytest.raises(ValidationError, match="version 99 is not supported"):
        DriftReference.from_profile({**prof, "version": 99})
