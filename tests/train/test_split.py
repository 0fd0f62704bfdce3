"""split_frame: random, stratified and time splits, and their errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.kernel.exceptions import ValidationError
from loopml.train import Splits, split_frame


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 200
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "label": np.where(np.arange(n) % 4 == 0, "rare", "common"),
            "ts": pd.date_range("2024-01-01", periods=n, freq="h")[rng.permutation(n)],
        }
    )


def _disjoint_and_complete(s: Splits, df: pd.DataFrame) -> None:
    parts = [s.train, s.test] + ([] if s.validation is None else [s.validation])
    index = pd.Index(np.concatenate([p.index.to_numpy() for p in parts]))
    assert index.is_unique
    assert sorted(index) == sorted(df.index)


def test_random_split_sizes_are_disjoint_and_reproducible(frame: pd.DataFrame) -> None:
    s = split_frame(frame, method="random", target=None, test_size=0.2, validation_size=0.1, seed=3)
    assert s.sizes() == {"train": 140, "validation": 20, "test": 40}
    _disjoint_and_complete(s, frame)
    again = split_frame(frame, method="random", target=None, test_size=0.2, validation_size=0.1, seed=3)
    assert s.test.index.equals(again.test.index)
    other = split_frame(frame, method="random", target=None, test_size=0.2, validation_size=0.1, seed=4)
    assert not s.test.index.equals(other.test.index)
    assert s.to_dict() == {"method": "random", "seed": 3, "train": 140, "validation": 20, "test": 40}


def test_no_validation_part_by_default(frame: pd.DataFrame) -> None:
    s = split_frame(frame, method="random", target="label")
    assert s.validation is None
    assert s.sizes()["validation"] == 0


def test_stratified_split_keeps_class_shares(frame: pd.DataFrame) -> None:
    s = split_frame(frame, method="stratified", target="label", test_size=0.2, validation_size=0.2, seed=0)
    _disjoint_and_complete(s, frame)
    for part in (s.train, s.validation, s.test):
        assert part is not None
        assert (part["label"] == "rare").mean() == pytest.approx(0.25, abs=0.01)


def test_time_split_puts_the_latest_rows_in_test(frame: pd.DataFrame) -> None:
    s = split_frame(frame, method="time", target="label", time_column="ts", test_size=0.25, validation_size=0.25)
    assert s.validation is not None
    assert s.train["ts"].max() < s.validation["ts"].min()
    assert s.validation["ts"].max() < s.test["ts"].min()
    assert s.sizes() == {"train": 100, "validation": 50, "test": 50}
    _disjoint_and_complete(s, frame)


def test_time_split_never_splits_one_timestamp_across_parts() -> None:
    df = pd.DataFrame({"day": [1, 1, 2, 2, 2, 3, 3, 3, 3, 3], "x": range(10)})
    s = split_frame(df, method="time", target=None, time_column="day", test_size=0.3)
    assert set(s.test["day"]) == {3}
    assert len(s.test) == 5  # the whole of day 3, not just its last 3 rows
    assert s.train["day"].max() < s.test["day"].min()


def test_unknown_method_names_the_allowed_ones(frame: pd.DataFrame) -> None:
    with pytest.raises(ValidationError, match=r"split method 'kfold' is unknown; allowed: random, stratified, time"):
        split_frame(frame, method="kfold", target=None)  # type: ignore[arg-type]


def test_stratified_without_target_is_rejected(frame: pd.DataFrame) -> None:
    with pytest.raises(ValidationError, match=r"'stratified' needs a target") as info:
        split_frame(frame, method="stratified", target=None)
    assert info.value.field == "target"


def test_time_split_needs_its_column(frame: pd.DataFrame) -> None:
    with pytest.raises(ValidationError, match=r"split method 'time' needs time_column"):
        split_frame(frame, method="time", target=None)
    with pytest.raises(ValidationError, match=r"time_column 'when' is not a column; columns: x, label, ts"):
        split_frame(frame, method="time", target=None, time_column="when")


def test_sizes_that_leave_no_training_rows_are_rejected(frame: pd.DataFrame) -> None:
    with pytest.raises(ValidationError, match=r"test_size=0.6 and validation_size=0.4 leave no training rows out of 200"):
        split_frame(frame, method="random", target=None, test_size=0.6, validation_size=0.4)
    with pytest.raises(ValidationError, match=r"test_size must be a fraction with 0 < test_size < 1; got 0.0"):
        split_frame(frame, method="random", target=None, test_size=0.0)
    with pytest.raises(ValidationError, match=r"validation_size must be a fraction"):
        split_frame(frame, method="random", target=None, validation_size=1.5)


def test_unknown_target_and_empty_frame_are_rejected(frame: pd.DataFrame) -> None:
    with pytest.raises(ValidationError, match=r"target 'y' is not a column"):
        split_frame(frame, method="random", target="y")
    with pytest.raises(ValidationError, match=r"cannot split an empty frame"):
        split_frame(frame.iloc[:0], method="random", target=None)


def test_stratifying_a_singleton_class_says_why() -> None:
    df = pd.DataFrame({"y": ["a"] * 19 + ["b"], "x": range(20)})
    with pytest.raises(ValidationError, match=r"'stratified' cannot build the test part: .*least populated class"):
        split_frame(df, method="stratified", target="y")
