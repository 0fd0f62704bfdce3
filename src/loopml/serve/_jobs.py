"""A request waiting for the model, and its answer: what the batcher and the shadow lane pass around."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import numpy as np

from loopml.kernel.exceptions import BadRequest
from loopml.serve._router import ServedModel
from loopml.serve._validation import Frame

__all__ = ["FRAME", "REQUEST_ID", "ROWS", "SERVED", "T0", "TS", "Job", "Result"]


@dataclass(slots=True)
class Job:
    """One request waiting for the model."""

    served: ServedModel
    frame: Frame
    request_id: str
    t0: float  # perf_counter at arrival
    ts: float  # wall clock at arrival
    future: asyncio.Future[Result]


@dataclass(slots=True)
class Result:
    """The answer for one job: outputs, or the error that stopped it."""

    labels: Any = None
    proba: np.ndarray | None = None
    error: BadRequest | None = None


# Getters for map() over the many jobs of a shadow window (C speed, unlike a lambda or a loop).
FRAME = attrgetter("frame")
SERVED = attrgetter("served")
REQUEST_ID = attrgetter("request_id")
T0 = attrgetter("t0")
TS = attrgetter("ts")
ROWS = attrgetter("n")  # of a Frame
