"""The approval check that ``register`` and ``deploy`` run inside their own transaction.

Policies, requests and decisions are rows (written by
:mod:`loopml.governance.approvals`); this module only reads them, so the stages
below governance can ask "is this move approved?" without importing it::

    require_alias_approval(session, model="churn", version=3, alias="champion", author="ana")
    require_traffic_approval(session, endpoint="churn-api", model="churn", version=3, author="ana")

No policy (or a policy of 0) means no approval is needed: embedded mode keeps
working. Otherwise a move needs ``required`` distinct approvers, none of them
the version's author, on requests for that version that were not rejected; an
admin's override (a request with status ``overridden``) also lets it pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from loopml.kernel.exceptions import PermissionDenied
from loopml.metadata._orm import ApprovalDecision, ApprovalPolicy, ApprovalRequest

__all__ = [
    "ApprovalState",
    "approval_state",
    "find_policy",
    "require_alias_approval",
    "require_traffic_approval",
]


@dataclass(frozen=True)
class ApprovalState:
    """Where one model version stands against one policy."""

    scope: str
    name: str
    required: int
    approvers: tuple[str, ...]
    overridden: bool

    @property
    def satisfied(self) -> bool:
        return self.overridden or len(self.approvers) >= self.required


# Built once: every alias move asks, so reuse the cache key and compiled SQL.
_FIND_POLICY = select(ApprovalPolicy).where(
    ApprovalPolicy.scope == bindparam("scope"), ApprovalPolicy.name == bindparam("name")
)


def find_policy(session: Session, scope: str, name: str) -> ApprovalPolicy | None:
    """The policy of ``scope`` (``model`` | ``endpoint``) ``name``, if any."""
    return session.execute(_FIND_POLICY, {"scope": scope, "name": name}).scalar_one_or_none()


def approval_state(session: Session, policy: ApprovalPolicy, *, model: str, version: int,
                   author: str | None) -> ApprovalState:
    """Distinct non-author approvers of ``model/version`` that count for ``policy``."""
    stmt = select(ApprovalRequest).where(
        ApprovalRequest.model_name == model, ApprovalRequest.model_version == version,
        ApprovalRequest.status != "rejected",
    )
    if policy.scope == "endpoint":
        stmt = stmt.where(ApprovalRequest.endpoint == policy.name)
    requests = session.execute(stmt).scalars().all()
    overridden = any(r.status == "overridden" for r in requests)
    approvers: set[str] = set()
    if requests:
        rows = session.execute(
            select(ApprovalDecision.actor).where(
                ApprovalDecision.request_id.in_([r.id for r in requests]),
                ApprovalDecision.decision == "approve",
            )
        ).scalars()
        approvers = {a for a in rows if a != author}
    return ApprovalState(policy.scope, policy.name, int(policy.required), tuple(sorted(approvers)), overridden)


def _refuse(state: ApprovalState, what: str, model: str, version: int) -> None:
    if state.satisfied:
        return
    present = len(state.approvers)
    raise PermissionDenied(
        f"{what} needs {state.required} approval(s) under the approval policy of {state.scope} {state.name!r}, "
        f"and model {model}/{version} has {present}"
        + (f" ({', '.join(state.approvers)})" if state.approvers else "")
        + f"; request one with 'loopml approvals request {model}/{version}' or ask an admin to override"
    )


def require_alias_approval(session: Session, *, model: str, version: int, alias: str, author: str | None) -> None:
    """Raise :class:`PermissionDenied` unless moving ``model@alias`` to ``version`` is approved."""
    policy = find_policy(session, "model", model)
    if policy is None or policy.required <= 0 or policy.alias != alias:
        return
    state = approval_state(session, policy, model=model, version=version, author=author)
    _refuse(state, f"moving {model}@{alias} to version {version}", model, version)


def require_traffic_approval(session: Session, *, endpoint: str, model: str, version: int,
                             author: str | None) -> None:
    """Raise :class:`PermissionDenied` unless sending ``endpoint``'s traffic to the version is approved."""
    policy = find_policy(session, "endpoint", endpoint)
    if policy is None or policy.required <= 0:
        return
    state = approval_state(session, policy, model=model, version=version, author=author)
    _refuse(state, f"sending endpoint {endpoint!r} traffic to {model}/{version}", model, version)
