"""Light steps for the runner tests: nothing heavy at import, so spawned workers start fast.

``left`` and ``right`` wait for each other on files under ``barrier_dir``:
they can only both finish if they run at the same time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from loopml.pipeline import NONE, Pipeline, step


def _meet(barrier_dir: str, me: str, other: str, timeout_s: float = 30.0) -> dict[str, Any]:
    start = time.time()
    Path(barrier_dir, me).write_text(str(os.getpid()))
    while not Path(barrier_dir, other).exists():
        if time.time() - start > timeout_s:
            raise TimeoutError(f"{me} waited {timeout_s}s for {other}: the steps did not run in parallel")
        time.sleep(0.01)
    return {"pid": os.getpid(), "start": start, "end": time.time()}


@step
def seed(*, n: int = 3) -> list[int]:
    return list(range(n))


@step(cache=NONE)
def left(seed: list[int], *, barrier_dir: str) -> dict[str, Any]:
    return _meet(barrier_dir, "left", "right")


@step(cache=NONE)
def right(seed: list[int], *, barrier_dir: str) -> dict[str, Any]:
    return _meet(barrier_dir, "right", "left")


@step
def join(left: dict[str, Any], right: dict[str, Any]) -> list[int]:
    return [left["pid"], right["pid"]]


def parallel_pipeline() -> Pipeline:
    return Pipeline([seed, left, right, join], name="parallel")


# -- failures


@step
def boom(seed: list[int]) -> int:
    print("about to fail")
    raise RuntimeError("boom in step")


@step(outputs=("a", "b"))
def wrong_arity(seed: list[int]) -> tuple[int, int, int]:
    return 1, 2, 3


@step
def frame(seed: list[int]) -> Any:
    import pandas as pd

    return pd.DataFrame({"v": seed, "pid": os.getpid()})


@step
def total(frame: Any) -> int:
    return int(frame["v"].sum())


def chain_pipeline() -> Pipeline:
    return Pipeline([seed, frame, total], name="chain")
