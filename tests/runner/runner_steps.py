"""Step functions for the runner tests, in an importable module so process-pool workers find them.

Steps that must prove they ran (or did not) append a line to a file under
``calls_dir``. Light steps (no pandas or scikit-learn at import, so process-pool
workers start fast) live in ``runner_light_steps``.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.linear_model import LogisticRegression

from loopml.pipeline import Pipeline, step

log = logging.getLogger("runner_steps")


def _mark(calls_dir: str, name: str) -> None:
    with open(Path(calls_dir) / name, "a") as f:
        f.write(f"{os.getpid()}\n")


def calls(calls_dir: str | Path, name: str) -> int:
    """How many times step ``name`` ran."""
    path = Path(calls_dir) / name
    return len(path.read_text().splitlines()) if path.exists() else 0


@step
def raw(*, calls_dir: str, rows: int = 40) -> pd.DataFrame:
    _mark(calls_dir, "raw")
    return pd.DataFrame({"x": [float(i) for i in range(rows)], "y": [i % 2 for i in range(rows)]})


@step
def clean(raw: pd.DataFrame, *, calls_dir: str) -> pd.DataFrame:
    _mark(calls_dir, "clean")
    print(f"cleaning {len(raw)} rows")
    log.info("dropped %d rows", 0)
    print("a warning on stderr", file=sys.stderr)
    return raw.dropna()


@step(outputs=("train", "test"))
def split(clean: pd.DataFrame, *, calls_dir: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    _mark(calls_dir, "split")
    n = len(clean) * 3 // 4
    return clean.iloc[:n], clean.iloc[n:]


@step
def model(train: pd.DataFrame, *, calls_dir: str, c: float = 1.0) -> LogisticRegression:
    _mark(calls_dir, "model")
    return LogisticRegression(C=c).fit(train[["x"]], train["y"])


@step
def report(model: LogisticRegression, test: pd.DataFrame, *, calls_dir: str, fail_flag: str = "") -> dict[str, Any]:
    _mark(calls_dir, "report")
    if fail_flag and Path(fail_flag).exists():
        raise ValueError(f"report refused: {Path(fail_flag).name} is set")
    return {"accuracy": float(model.score(test[["x"]], test["y"])), "rows": len(test)}


def training_pipeline() -> Pipeline:
    return Pipeline([raw, clean, split, model, report], name="training")
