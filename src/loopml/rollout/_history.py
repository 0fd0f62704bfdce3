"""Who served what: which model version answered a request, which versions served an endpoint when.

:func:`who_answered` reads the prediction log by request id (what was actually
logged, including any shadow version that scored a copy of the request);
:func:`served_between` reads the traffic history (``loopml.deploy``) for a time
window: the policies in force in it and every version that had traffic.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from loopml.deploy import TrafficRecord, shadow_endpoint_name, traffic_history, versions_between
from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.kernel.types import utcnow
from loopml.workspace import Workspace

__all__ = ["Answer", "Served", "served_between", "who_answered"]

_WANT = ("request_id", "row", "ts", "model_name", "model_version", "status", "latency_ms", "prediction", "error")


@dataclass(frozen=True)
class Answer:
    """One logged row of a request: the endpoint and version that scored it, and what it said."""

    endpoint: str
    request_id: str
    row: int
    ts: datetime | None
    model_name: str | None
    model_version: int | None
    status: int | None
    latency_ms: float | None
    prediction: Any
    error: str | None
    #: True for a shadow version's answer (logged, never returned to the client)
    shadow: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _answers(ws: Workspace, endpoint: str, request_id: str, shadow: bool) -> list[Answer]:
    from loopml.predictions import open_view

    con = open_view(ws, endpoint)
    try:
        cols = {r[0] for r in con.execute("DESCRIBE predictions").fetchall()}
        want = [c for c in _WANT if c in cols]
        rows = con.sql(f"SELECT {', '.join(want)} FROM predictions WHERE request_id = $rid ORDER BY row",
                       params={"rid": request_id}).to_arrow_table().to_pylist()  # arrow: no pytz for timestamptz
    finally:
        con.close()
    return [Answer(endpoint=endpoint, request_id=request_id, row=int(r.get("row") or 0), ts=r.get("ts"),
                   model_name=r.get("model_name"), model_version=r.get("model_version"), status=r.get("status"),
                   latency_ms=r.get("latency_ms"), prediction=r.get("prediction"), error=r.get("error"),
                   shadow=shadow) for r in rows]


def who_answered(ws: Workspace, request_id: str, *, endpoint: str | None = None) -> list[Answer]:
    """Every logged row of ``request_id``: the answering version's first, then any shadow's.

    Args:
        request_id: the ``X-Request-ID`` sent, or the id the server returned.
        endpoint: look only there (and in its shadow log); default every logged endpoint.

    Raises:
        ValidationError: an empty request id.
        NotFoundError: the request is not in the log (of ``endpoint``, or of any endpoint).
    """
    from loopml.predictions import list_endpoints

    if not request_id:
        raise ValidationError("request_id must not be empty", field="request_id", rule="required")
    logged = list_endpoints(ws)
    shadows = {shadow_endpoint_name(e) for e in logged}
    if endpoint is not None:
        if endpoint not in logged:
            known = ", ".join(e for e in logged if e not in shadows) or "(none)"
            raise NotFoundError(f"endpoint {endpoint!r} has no logged predictions; logged: {known}")
        names = [endpoint] + [shadow_endpoint_name(endpoint)] * (shadow_endpoint_name(endpoint) in logged)
    else:
        names = logged
    found = [a for name in names for a in _answers(ws, name, request_id, shadow=name in shadows)]
    if not any(not a.shadow for a in found):
        where = f"endpoint {endpoint!r}" if endpoint else "any endpoint"
        raise NotFoundError(f"request {request_id!r} is not in the prediction log of {where}")
    return sorted(found, key=lambda a: a.shadow)


@dataclass(frozen=True)
class Served:
    """The traffic of an endpoint in ``[since, until]``: the versions that had some, the policies in force."""

    endpoint: str
    since: datetime
    until: datetime
    versions_served: list[int]
    #: Every traffic change in force at some moment of the window (the one in force at ``since`` first).
    changes: list[TrafficRecord]

    def to_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "since": self.since.isoformat(), "until": self.until.isoformat(),
                "versions_served": list(self.versions_served), "changes": [c.to_dict() for c in self.changes]}


def served_between(ws: Workspace, endpoint: str, since: datetime | str | None = None,
                   until: datetime | str | None = None) -> Served:
    """Which versions served ``endpoint`` between ``since`` and ``until``, from its traffic history.

    Args:
        since: a datetime, an ISO time or an age such as ``"1h"``, ``"2d"``; default the first traffic change.
        until: the same; default now.

    Raises:
        NotFoundError: no such endpoint.
        ValidationError: a time that is not one, or ``until`` before ``since``.
    """
    from loopml.predictions import parse_time

    changes = traffic_history(ws, endpoint)
    hi = parse_time(until, "until") or utcnow()
    lo = parse_time(since, "since") or (changes[0].ts if changes else hi)
    served = versions_between(ws, endpoint, lo, hi)
    # The change in force at ``since`` belongs to the window too.
    shown = [c for i, c in enumerate(changes) if c.ts <= hi and (i + 1 == len(changes) or changes[i + 1].ts >= lo)]
    return Served(endpoint=endpoint, since=lo, until=hi, versions_served=served, changes=shown)
