"""What the server hands to the prediction log: one record per answered request.

The log writer (``loopml.predictions``) implements :class:`PredictionSink`; the
server calls ``submit`` once per model batch from its model thread, so a sink
must be thread-safe and must never block (queue, then write in the background).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypedDict, runtime_checkable

import numpy as np

__all__ = ["MatrixColumns", "PredictionBatch", "PredictionRecord", "PredictionSink"]


@dataclass(slots=True)
class PredictionRecord:
    """One request and its answer, as the prediction log stores it.

    ``inputs`` is columnar: a mapping of feature name -> 1-D array (or list) of
    this request's rows, in contract order (``None`` when the body could not be
    parsed). ``outputs`` maps ``"predict"`` to the labels/values (1-D) and, for
    classifiers, ``"predict_proba"`` to an ``(n, n_classes)`` array and
    ``"classes"`` to the class labels. Arrays are views into the batch: read,
    never mutate them.
    """

    request_id: str
    ts: datetime
    endpoint: str
    model_name: str | None
    model_version: int | None
    inputs: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
    outputs: Mapping[str, Any] | None
    latency_ms: float
    status: int
    error: str | None = None

    @property
    def n_rows(self) -> int:
        """Rows in this request (0 for a request that failed before parsing)."""
        if not self.inputs:
            return 0
        if isinstance(self.inputs, Mapping):
            first = next(iter(self.inputs.values()))
            return len(first)
        return len(self.inputs)


class PredictionBatch(TypedDict):
    """One model batch in columns: what ``submit_batch`` gets instead of one record per request.

    Why: a record per request costs the log writer a Python loop per request;
    a batch is converted to Arrow with one call per column. Per-row fields are
    1-D sequences of the batch's row count; ``endpoint``, ``model_name``,
    ``model_version``, ``status`` and ``error`` are shared by all rows. ``ts`` is
    epoch seconds (float), ``row`` the index of the row within its request.
    ``inputs`` is a :class:`MatrixColumns` over the stacked rows; ``outputs``
    maps ``"predict"`` to labels and, for classifiers, ``"predict_proba"`` to an
    ``(n, n_classes)`` array and ``"classes"`` to the class labels.
    """

    request_id: Sequence[str]
    row: np.ndarray
    ts: np.ndarray
    endpoint: str
    model_name: str | None
    model_version: int | None
    latency_ms: np.ndarray
    status: int
    error: str | None
    inputs: MatrixColumns
    outputs: dict[str, Any]


@runtime_checkable
class PredictionSink(Protocol):
    """Where records go. ``submit`` must return at once (no I/O on the caller's thread).

    Optional: a sink may expose ``lag_seconds() -> float`` (age of the oldest
    record not yet written), shown on ``/metrics`` as the log-writer lag, and
    ``submit_batch(batch: PredictionBatch)``: then the server hands over a
    batch of successful, all-numeric requests in columns rather than records;
    and ``reopener() -> Callable[[], PredictionSink]``, picklable, that opens
    the same log in another process (a shadow worker logs through it).
    """

    def submit(self, records: list[PredictionRecord]) -> None: ...

    def close(self) -> None: ...


class MatrixColumns(Mapping[str, np.ndarray]):
    """Columnar view over a 2-D block: no copy until a column is read.

    Why: building 30 column slices per request would cost more than the log is
    worth on the hot path; a sink reads them later, off the request path.
    """

    __slots__ = ("_index", "_matrix", "_names")

    def __init__(self, names: Sequence[str], index: Mapping[str, int], matrix: np.ndarray) -> None:
        self._names = names
        self._index = index
        self._matrix = matrix

    def __getitem__(self, key: str) -> np.ndarray:
        return self._matrix[:, self._index[key]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    @property
    def matrix(self) -> np.ndarray:
        """The underlying ``(n_rows, n_columns)`` block, columns in ``keys()`` order."""
        return self._matrix


def stacked_batch(served: Any, endpoint: str, *, request_ids: Sequence[str], sizes: Sequence[int] | np.ndarray,
                  ts: np.ndarray, latency_ms: np.ndarray, matrix: np.ndarray, labels: Any,
                  proba: np.ndarray | None) -> PredictionBatch:
    """A :class:`PredictionBatch` from per-request columns and the stacked rows of one model call.

    ``served`` is the answering :class:`~loopml.serve.ServedModel`; ``request_ids``,
    ``ts`` and ``latency_ms`` hold one value per request, ``sizes`` its row count;
    they are repeated per row only when a request has more than one row.
    """
    total = int(matrix.shape[0])
    rids: Any = request_ids
    if total == len(request_ids):
        row = np.zeros(total, dtype=np.int32)
    else:
        reps = np.asarray(sizes)
        rids = np.repeat(np.array(request_ids, dtype=object), reps)
        ts, latency_ms = np.repeat(ts, reps), np.repeat(latency_ms, reps)
        row = np.arange(total, dtype=np.int32) - np.repeat(np.cumsum(reps) - reps, reps).astype(np.int32)
    outputs: dict[str, Any] = {"predict": labels}
    if proba is not None:
        outputs["predict_proba"] = proba
        outputs["classes"] = served.classes_list
    return PredictionBatch(
        request_id=rids, row=row, ts=ts, endpoint=endpoint, model_name=served.name, model_version=served.version,
        latency_ms=latency_ms, status=200, error=None,
        inputs=MatrixColumns(served.contract.names, served.contract.index, matrix), outputs=outputs,
    )
