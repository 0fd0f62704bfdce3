"""Endpoints and their traffic policies: what the serving processes route by.

A policy is plain JSON, versioned by the endpoint's ``revision``::

    {"model": "churn",
     "routes": [{"version": 3, "weight": 0.95, "role": "baseline"},
                {"version": 4, "weight": 0.05, "role": "candidate"}],
     "standby": [2],            # loaded and health-checked, no traffic (blue-green)
     "shadow": [5],             # scores a copy of the requests, never answers
     "shadow_fraction": 0.1,    # the share of requests copied to it (only with a shadow; default 1)
     "sticky": true}            # route by a hash of the request key (A/B)

Every change bumps the revision, appends a ``traffic_changes`` row and an
audit event in one transaction, so "which versions served E between T1 and
T2" is a query, and servers re-read the policy without a restart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.kernel.types import check_name, utcnow
from loopml.metadata._orm import Endpoint, TrafficChange
from loopml.metadata.store import Tx
from loopml.workspace import Workspace

__all__ = [
    "EndpointRecord",
    "TrafficRecord",
    "check_fraction",
    "endpoint_record",
    "get_endpoint",
    "list_endpoints",
    "lock_endpoint",
    "make_policy",
    "set_policy",
    "shadow_endpoint_name",
    "traffic_history",
    "versions_between",
]


@dataclass(frozen=True)
class EndpointRecord:
    id: int
    name: str
    model_name: str
    policy: dict[str, Any]
    revision: int
    created_at: datetime
    updated_at: datetime

    @property
    def serving_versions(self) -> list[int]:
        """Versions that answer requests (weight > 0)."""
        return [r["version"] for r in self.policy.get("routes", []) if r.get("weight", 0) > 0]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "serving_versions": self.serving_versions}


@dataclass(frozen=True)
class TrafficRecord:
    revision: int
    policy: dict[str, Any]
    rollout_id: int | None
    actor: str
    reason: str | None
    ts: datetime

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def shadow_endpoint_name(endpoint: str) -> str:
    """Where a shadow version's answers are logged: beside, never inside, the endpoint's log.

    Defined here, below both, so the server (which writes) and ``loopml.rollout`` (which reads) agree.
    """
    return f"{endpoint}.shadow"


def endpoint_record(row: Endpoint) -> EndpointRecord:
    return EndpointRecord(row.id, row.name, row.model_name, row.policy, row.revision, row.created_at, row.updated_at)


def make_policy(
    model: str, routes: list[tuple[int, float, str]], *, shadow: list[int] | None = None,
    standby: list[int] | None = None, sticky: bool = False, shadow_fraction: float = 1.0,
) -> dict[str, Any]:
    """A validated policy: weights in [0, 1] summing to 1 over distinct versions.

    ``shadow_fraction`` (0, 1] is the share of requests the shadow versions score (like Istio's
    ``mirrorPercentage``); it is stored only when there is a shadow.
    """
    total = sum(w for _, w, _ in routes)
    versions = [v for v, _, _ in routes]
    if len(set(versions)) != len(versions):
        raise ValidationError(f"policy routes repeat a version: {versions}", field="routes", rule="unique")
    if any(not 0 <= w <= 1 for _, w, _ in routes) or abs(total - 1.0) > 1e-9:
        raise ValidationError(f"policy weights must lie in [0, 1] and sum to 1; got {[w for _, w, _ in routes]}",
                              field="routes.weight", rule="sum")
    policy: dict[str, Any] = {
        "model": model,
        "routes": [{"version": v, "weight": round(w, 6), "role": role} for v, w, role in routes],
        "shadow": sorted(set(shadow or [])),
        "standby": sorted(set(standby or [])),
        "sticky": sticky,
    }
    if policy["shadow"]:
        policy["shadow_fraction"] = check_fraction(shadow_fraction, "shadow_fraction")
    return policy


def check_fraction(value: Any, field: str) -> float:
    """A share in (0, 1], or a ValidationError naming ``field``."""
    try:
        share = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{field} must be a number in (0, 1]; got {value!r}", field=field,
                              rule="type") from None
    if not 0.0 < share <= 1.0:
        raise ValidationError(f"{field} must be in (0, 1] (a share of requests); got {value!r}", field=field,
                              rule="range")
    return share


def lock_endpoint(session: Session, name: str) -> Endpoint:
    row = session.execute(select(Endpoint).where(Endpoint.name == name).with_for_update()).scalar_one_or_none()
    if row is None:
        known = ", ".join(session.execute(select(Endpoint.name).order_by(Endpoint.name)).scalars()) or "(none)"
        raise NotFoundError(f"endpoint {name!r} does not exist; endpoints: {known}")
    return row


def set_policy(tx: Tx, row: Endpoint, policy: dict[str, Any], *, reason: str | None, rollout_id: int | None) -> None:
    """Change an endpoint's traffic in the caller's transaction: revision, history, audit."""
    before = row.policy
    now = utcnow()
    row.policy = policy
    row.revision += 1
    row.updated_at = now
    tx.session.add(TrafficChange(endpoint_id=row.id, revision=row.revision, policy=policy, rollout_id=rollout_id,
                                 actor=tx.actor, reason=reason, ts=now))
    for route in policy["routes"]:
        if route["weight"] > 0:
            tx.link(("model_version", f"{policy['model']}/{route['version']}"), "serves", ("endpoint", row.name))
    tx.audit("endpoint.traffic", "endpoint", row.name, before=before, after=policy, reason=reason)


def create_endpoint_row(tx: Tx, name: str, model: str, policy: dict[str, Any], reason: str | None) -> Endpoint:
    check_name(name, "endpoint")
    now = utcnow()
    row = Endpoint(name=name, model_name=model, policy=policy, revision=1, created_at=now,
                   created_by=tx.actor, updated_at=now)
    tx.session.add(row)
    tx.session.flush()
    tx.session.add(TrafficChange(endpoint_id=row.id, revision=1, policy=policy, rollout_id=None,
                                 actor=tx.actor, reason=reason, ts=now))
    for route in policy["routes"]:
        tx.link(("model_version", f"{model}/{route['version']}"), "serves", ("endpoint", name))
    tx.audit("endpoint.create", "endpoint", name, after=policy, reason=reason)
    return row


def get_endpoint(ws: Workspace, name: str) -> EndpointRecord:
    with ws.store.read() as s:
        row = s.execute(select(Endpoint).where(Endpoint.name == name)).scalar_one_or_none()
        if row is None:
            known = ", ".join(s.execute(select(Endpoint.name).order_by(Endpoint.name)).scalars()) or "(none)"
            raise NotFoundError(f"endpoint {name!r} does not exist; endpoints: {known}")
        return endpoint_record(row)


def list_endpoints(ws: Workspace) -> list[EndpointRecord]:
    with ws.store.read() as s:
        return [endpoint_record(r) for r in s.execute(select(Endpoint).order_by(Endpoint.name)).scalars()]


def traffic_history(ws: Workspace, name: str) -> list[TrafficRecord]:
    with ws.store.read() as s:
        endpoint = s.execute(select(Endpoint).where(Endpoint.name == name)).scalar_one_or_none()
        if endpoint is None:
            raise NotFoundError(f"endpoint {name!r} does not exist")
        rows = s.execute(select(TrafficChange).where(TrafficChange.endpoint_id == endpoint.id)
                         .order_by(TrafficChange.revision)).scalars()
        return [TrafficRecord(r.revision, r.policy, r.rollout_id, r.actor, r.reason, r.ts) for r in rows]


def versions_between(ws: Workspace, name: str, start: datetime, end: datetime) -> list[int]:
    """Every version that had traffic on ``name`` at some moment in ``[start, end]``."""
    if end < start:
        raise ValidationError("end must not be before start", field="until", rule="order")
    history = traffic_history(ws, name)
    served: set[int] = set()
    for i, change in enumerate(history):
        valid_from = change.ts
        valid_to = history[i + 1].ts if i + 1 < len(history) else None
        if valid_from <= end and (valid_to is None or valid_to >= start):
            served.update(r["version"] for r in change.policy["routes"] if r["weight"] > 0)
    return sorted(served)
