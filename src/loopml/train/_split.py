"""Splitting a frame into train / validation / test: random, stratified or by time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from loopml.kernel.exceptions import ValidationError

__all__ = ["SPLIT_METHODS", "Splits", "split_frame"]

SplitMethod = Literal["random", "stratified", "time"]
SPLIT_METHODS: tuple[str, ...] = ("random", "stratified", "time")


@dataclass(frozen=True, eq=False)
class Splits:
    """The three parts of one split; ``validation`` is None when not asked for.

    Rows keep their original index, so a prediction can be traced back to its
    source row. ``eq=False`` because DataFrames have no single truth value.
    """

    train: pd.DataFrame
    validation: pd.DataFrame | None
    test: pd.DataFrame
    method: str = "random"
    seed: int = 0

    def sizes(self) -> dict[str, int]:
        """Row counts per part (validation is 0 when absent)."""
        return {
            "train": len(self.train),
            "validation": 0 if self.validation is None else len(self.validation),
            "test": len(self.test),
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (sizes, method, seed) for run params."""
        return {"method": self.method, "seed": self.seed, **self.sizes()}


def _check_fraction(name: str, value: Any, *, allow_zero: bool) -> float:
    low = "0 <=" if allow_zero else "0 <"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = (0.0 <= value < 1.0) if allow_zero else (0.0 < value < 1.0)
    if not ok:
        raise ValidationError(
            f"{name} must be a fraction with {low} {name} < 1; got {value!r}",
            field=name,
            rule="range",
        )
    return float(value)


def _counts(n: int, test_size: float, validation_size: float) -> tuple[int, int, int]:
    """Rows per part; rounding up so a small non-zero fraction never means zero rows."""
    n_test = math.ceil(test_size * n)
    n_val = math.ceil(validation_size * n) if validation_size > 0 else 0
    n_train = n - n_test - n_val
    if n_train < 1:
        raise ValidationError(
            f"test_size={test_size} and validation_size={validation_size} leave no training rows "
            f"out of {n} (test {n_test}, validation {n_val}); lower them so that "
            "test_size + validation_size < 1 leaves at least one row",
            field="test_size",
            rule="sizes",
        )
    return n_train, n_val, n_test


def split_frame(
    df: pd.DataFrame,
    *,
    method: SplitMethod = "random",
    target: str | None = None,
    time_column: str | None = None,
    test_size: float = 0.2,
    validation_size: float = 0.0,
    seed: int = 0,
) -> Splits:
    """Split ``df`` into train / validation / test parts.

    ``random`` shuffles with ``seed``; ``stratified`` keeps the class shares of
    ``target`` in every part; ``time`` orders by ``time_column`` and puts the
    latest rows in test (and the ones before them in validation), so a model is
    always tested on data later than any it trained on: rows sharing the
    boundary timestamp all go to the later part.

    Raises:
        ValidationError: an unknown method, a missing column, sizes that leave
            a part empty, or a class too rare to stratify.
    """
    if method not in SPLIT_METHODS:
        raise ValidationError(
            f"split method {method!r} is unknown; allowed: {', '.join(SPLIT_METHODS)}",
            field="method",
            rule="choice",
        )
    if not isinstance(df, pd.DataFrame):
        raise ValidationError(
            f"split_frame needs a pandas DataFrame; got {type(df).__name__}", field="df", rule="type"
        )
    test_size = _check_fraction("test_size", test_size, allow_zero=False)
    validation_size = _check_fraction("validation_size", validation_size, allow_zero=True)
    if len(df) == 0:
        raise ValidationError("cannot split an empty frame (0 rows)", field="df", rule="non_empty")
    if target is not None and target not in df.columns:
        raise ValidationError(
            f"target {target!r} is not a column; columns: {', '.join(map(str, df.columns))}",
            field="target",
            rule="column",
        )
    n_train, n_val, n_test = _counts(len(df), test_size, validation_size)

    if method == "time":
        train, val, test = _time_split(df, time_column, n_val, n_test)
    else:
        stratify = None
        if method == "stratified":
            if target is None:
                raise ValidationError(
                    "split method 'stratified' needs a target column to stratify on; "
                    "set target, or use method 'random' or 'time'",
                    field="target",
                    rule="required",
                )
            stratify = df[target]
            if stratify.isna().any():
                raise ValidationError(
                    f"split method 'stratified': target {target!r} has "
                    f"{int(stratify.isna().sum())} missing values; drop them first",
                    field="target",
                    rule="not_null",
                )
        train, val, test = _shuffled_split(df, stratify, n_val, n_test, seed)
    return Splits(train=train, validation=val, test=test, method=method, seed=seed)


def _shuffled_split(
    df: pd.DataFrame, stratify: pd.Series | None, n_val: int, n_test: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    def cut(frame: pd.DataFrame, labels: pd.Series | None, n: int, part: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        try:
            rest, taken = train_test_split(frame, test_size=n, random_state=seed, shuffle=True, stratify=labels)
        except ValueError as exc:  # sklearn: a class too rare, or too few rows per class
            raise ValidationError(
                f"split method 'stratified' cannot build the {part} part: {exc}; "
                "use method 'random', or larger sizes, or merge rare classes",
                field="method",
                rule="stratify",
            ) from exc
        return rest, taken

    rest, test = cut(df, stratify, n_test, "test")
    val = None
    if n_val:
        labels = None if stratify is None else stratify.loc[rest.index]
        rest, val = cut(rest, labels, n_val, "validation")
    return rest, val, test


def _time_split(
    df: pd.DataFrame, time_column: str | None, n_val: int, n_test: int
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame]:
    if time_column is None:
        raise ValidationError(
            "split method 'time' needs time_column, the column to order rows by",
            field="time_column",
            rule="required",
        )
    if time_column not in df.columns:
        raise ValidationError(
            f"time_column {time_column!r} is not a column; columns: {', '.join(map(str, df.columns))}",
            field="time_column",
            rule="column",
        )
    times = df[time_column]
    if times.isna().any():
        raise ValidationError(
            f"time_column {time_column!r} has {int(times.isna().sum())} missing values; "
            "a time split needs a time for every row",
            field="time_column",
            rule="not_null",
        )
    # A stable sort keeps the input order among equal times (reproducible).
    ordered = df.iloc[np.argsort(times.to_numpy(), kind="stable")]
    values = ordered[time_column]
    n = len(ordered)
    # Move each cut back to the first row of its timestamp, so one timestamp
    # never straddles two parts (no peeking at the "future" in training).
    test_start = _first_of_tie(values, n - n_test)
    val_start = _first_of_tie(values, test_start - n_val) if n_val else test_start
    if val_start < 1 or (n_val and val_start >= test_start):
        raise ValidationError(
            f"time split on {time_column!r}: too many rows share the boundary timestamps, "
            "so a part would be empty; lower test_size/validation_size or use a finer time column",
            field="time_column",
            rule="sizes",
        )
    train = ordered.iloc[:val_start]
    val = ordered.iloc[val_start:test_start] if n_val else None
    test = ordered.iloc[test_start:]
    return train, val, test


def _first_of_tie(values: pd.Series, position: int) -> int:
    """The first position holding the same value as ``position`` (sorted input)."""
    if position <= 0:
        return 0
    arr = values.to_numpy()
    return int(np.searchsorted(arr, arr[position], side="left"))
