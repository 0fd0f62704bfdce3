"""Health check of a loaded version: score real rows through the request path before it may get traffic.

A blue-green standby is loaded beside the version that answers; loading and
hash-checking it proves the artifact is intact, not that it answers. This
check synthesises a few rows from the version's contract (its signature: the
bounds, the categories), runs them through what a request goes through
(``Frame`` -> contract check -> :meth:`ServedModel.predict`) and checks the
output's shape. An exception or a wrong-shaped answer is unhealthy. A model
without a usable contract cannot be probed: ``skipped``, never a breach.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from loopml.serve._router import ServedModel
from loopml.serve._validation import ColumnSpec, Contract

__all__ = ["HealthCheck", "check_health", "probe_records"]

_FIELD = "health_check"


@dataclass(frozen=True)
class HealthCheck:
    #: ok | breach | skipped
    status: str
    rows: int
    detail: str

    @property
    def healthy(self) -> bool:
        return self.status != "breach"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _numbers(spec: ColumnSpec, n: int) -> list[float]:
    lo = spec.min if spec.min is not None and math.isfinite(spec.min) else None
    hi = spec.max if spec.max is not None and math.isfinite(spec.max) else None
    if spec.type == "bool":
        return [float(i % 2) for i in range(n)]
    if lo is not None and hi is not None:
        points = [lo, (lo + hi) / 2, hi]
    elif lo is not None:
        points = [lo, lo + 1, lo + 10]
    elif hi is not None:
        points = [hi, hi - 1, hi - 10]
    else:
        points = [0.0, 1.0, 10.0]
    if spec.type == "int":
        points = [float(min(max(round(p), math.ceil(lo) if lo is not None else -math.inf),
                            math.floor(hi) if hi is not None else math.inf)) for p in points]
    return [points[i % len(points)] for i in range(n)]


def _values(spec: ColumnSpec, n: int) -> list[Any]:
    if spec.numeric:
        return _numbers(spec, n)
    if spec.type == "category" and spec.categories:
        return [spec.categories[i % len(spec.categories)] for i in range(n)]
    if spec.type == "datetime":
        return ["2024-01-01T00:00:00"] * n
    return ["probe"] * n


def probe_records(contract: Contract, n: int = 3) -> list[dict[str, Any]] | None:
    """``n`` rows the contract accepts (within its bounds, known categories), or None without a contract."""
    if not contract.known or not contract.specs:
        return None
    cols = {s.name: _values(s, n) for s in contract.specs}
    return [{name: cols[name][i] for name in contract.names} for i in range(n)]


def check_health(served: ServedModel, *, rows: int = 3) -> HealthCheck:
    """Score ``rows`` synthesised rows as a request would be scored; never raises."""
    who = f"{served.name}/{served.version}"
    records = probe_records(served.contract, rows)
    if records is None:
        return HealthCheck("skipped", 0, f"{who} has no contract to synthesise rows from: loaded only")
    contract = served.contract
    try:
        frame = contract.from_records(records, _FIELD)
        errors, codes = contract.check(frame, [0])
    except Exception as exc:  # noqa: BLE001 - our rows, not the model, are at fault
        return HealthCheck("skipped", 0, f"could not build rows from the contract of {who}: {exc}")
    if errors:
        return HealthCheck("skipped", 0, f"synthesised rows break the contract of {who}: {errors[0]}")
    try:
        labels, proba = served.predict(frame, codes)
    except Exception as exc:  # noqa: BLE001 - any failure to answer is the finding
        return HealthCheck("breach", rows, f"{who} raised on {rows} probe rows: {type(exc).__name__}: {exc}"[:500])
    shape = np.shape(labels)
    if shape != (rows,):
        return HealthCheck("breach", rows, f"{who} answered {rows} probe rows with shape {shape}, not ({rows},)")
    if proba is not None:
        want = (rows, len(served.classes_list or []))
        if proba.shape != want:
            return HealthCheck("breach", rows, f"{who} returned probabilities of shape {proba.shape}, not {want}")
        if not np.isfinite(proba).all():
            return HealthCheck("breach", rows, f"{who} returned non-finite probabilities")
    return HealthCheck("ok", rows, f"{who} loaded and answered {rows} probe rows")
