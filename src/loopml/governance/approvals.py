"""Approvals: who must agree before a model becomes ``champion`` or takes production traffic.

    >>> set_policy(ws, "model:churn", 2)                 # champion moves need 2 approvals
    >>> set_policy(ws, "endpoint:churn-api", 1)          # so does traffic on this endpoint
    >>> req = request_approval(ws, "churn/3", endpoint="churn-api", reason="beats v2 on every slice")
    >>> approve(ws.as_actor("bob"), req.id, reason="checked the slices")
    >>> reject(ws.as_actor("eve"), req.id, reason="fairness gap on region=south")
    >>> override(ws.as_actor("root"), req.id, reason="incident 42: hotfix")   # an admin's call

The policy model:

- A policy belongs to a model (it protects an alias, ``champion`` by default:
  ``set_alias``, ``register_model(aliases=...)``, ``deploy``/``promote``
  moving it) or to an endpoint (``deploy`` and ``promote`` sending its traffic
  to a version). ``required`` approvals; 0 or no policy: none needed.
- Approvals are per model version (immutable), gathered on requests. A
  request for an endpoint counts for that endpoint's policy and for the
  model's; a request without one counts for the model's only.
- Separation of duties: the version's author (its ``created_by``) can neither
  approve nor reject it. Each person decides a request once; a rejection
  closes the request (its approvals stop counting); a new request starts over.
- An admin may override a request with a reason: the version then passes the
  policies the request covers.
- Every step is one audited transaction: ``approval.policy``,
  ``approval.request``, ``approval.approve``, ``approval.reject``,
  ``approval.override`` (each with its reason), and a lineage edge
  ``model_version --approval--> approval:<id>``.

The check itself (:mod:`loopml.metadata.approvals_gate`) reads these rows from
inside the ``register`` and ``deploy`` transactions; service functions here do
not check the caller's role: the REST server and the CLI call ``authorize``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loopml.kernel.exceptions import (
    AlreadyExistsError,
    NotFoundError,
    PermissionDenied,
    ValidationError,
)
from loopml.kernel.types import ModelRef, check_name, utcnow
from loopml.metadata._orm import (
    ApprovalDecision,
    ApprovalPolicy,
    ApprovalRequest,
    Endpoint,
)
from loopml.metadata.approvals_gate import find_policy

if TYPE_CHECKING:
    from loopml.workspace import Workspace

__all__ = [
    "DECISIONS",
    "SCOPES",
    "STATUSES",
    "ApprovalDecisionRecord",
    "ApprovalPolicyRecord",
    "ApprovalRequestRecord",
    "approve",
    "get_policy",
    "get_request",
    "list_policies",
    "list_requests",
    "override",
    "reject",
    "request_approval",
    "set_policy",
]

SCOPES = ("model", "endpoint")
STATUSES = ("pending", "approved", "rejected", "overridden")
DECISIONS = ("approve", "reject", "override")
MAX_REQUIRED = 20
MAX_REASON = 2000


# ---------------------------------------------------------------------------
# records


@dataclass(frozen=True)
class ApprovalPolicyRecord:
    """How many approvals ``scope:name`` needs (a model's ``alias`` moves, or an endpoint's traffic)."""

    scope: str
    name: str
    required: int
    alias: str | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str

    @property
    def target(self) -> str:
        return f"{self.scope}:{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "scope": self.scope, "name": self.name, "required": self.required,
                "alias": self.alias, "created_at": self.created_at.isoformat(), "created_by": self.created_by,
                "updated_at": self.updated_at.isoformat(), "updated_by": self.updated_by}


@dataclass(frozen=True)
class ApprovalDecisionRecord:
    """One person's decision on a request, with the reason."""

    actor: str
    decision: str
    reason: str
    ts: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"actor": self.actor, "decision": self.decision, "reason": self.reason, "ts": self.ts.isoformat()}


@dataclass(frozen=True)
class ApprovalRequestRecord:
    """A request to approve one model version (on one endpoint, if named), and where it stands."""

    id: int
    model: str
    version: int
    endpoint: str | None
    status: str
    reason: str | None
    requested_by: str
    created_at: datetime
    decided_at: datetime | None
    author: str
    #: Approvals the policies covering this request need (the largest; 0 without a policy).
    required: int
    decisions: tuple[ApprovalDecisionRecord, ...] = field(default_factory=tuple)

    @property
    def ref(self) -> str:
        return f"{self.model}/{self.version}"

    @property
    def approvers(self) -> list[str]:
        return [d.actor for d in self.decisions if d.decision == "approve"]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "model": self.model, "version": self.version, "ref": self.ref,
                "endpoint": self.endpoint, "status": self.status, "reason": self.reason,
                "requested_by": self.requested_by, "author": self.author, "required": self.required,
                "approvals": len(self.approvers), "approvers": self.approvers,
                "created_at": self.created_at.isoformat(),
                "decided_at": self.decided_at.isoformat() if self.decided_at else None,
                "decisions": [d.to_dict() for d in self.decisions]}


# ---------------------------------------------------------------------------
# helpers


def _parse_target(target: str) -> tuple[str, str]:
    scope, sep, name = str(target).partition(":")
    if not sep or scope not in SCOPES or not name:
        raise ValidationError(
            f"approval policy target {target!r} is invalid: use model:NAME or endpoint:NAME",
            field="target", rule="format",
        )
    return scope, check_name(name, scope)


def _reason(reason: str | None, *, required: bool, what: str) -> str | None:
    text = (reason or "").strip()
    if required and not text:
        raise ValidationError(f"{what} needs a reason (--reason)", field="reason", rule="required")
    if len(text) > MAX_REASON:
        raise ValidationError(f"reason is {len(text)} characters; at most {MAX_REASON}", field="reason", rule="max_length")
    return text or None


def _policy_record(row: ApprovalPolicy) -> ApprovalPolicyRecord:
    return ApprovalPolicyRecord(row.scope, row.name, int(row.required), row.alias if row.scope == "model" else None,
                                row.created_at, row.created_by, row.updated_at, row.updated_by)


def _required(session: Session, row: ApprovalRequest) -> int:
    needed = 0
    model_policy = find_policy(session, "model", row.model_name)
    if model_policy is not None:
        needed = max(needed, int(model_policy.required))
    if row.endpoint:
        endpoint_policy = find_policy(session, "endpoint", row.endpoint)
        if endpoint_policy is not None:
            needed = max(needed, int(endpoint_policy.required))
    return needed


def _version_row(session: Session, model: str, version: int) -> Any:
    from loopml.metadata._orm import ModelVersion, RegisteredModel

    return session.execute(
        select(ModelVersion).join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .where(RegisteredModel.name == model, ModelVersion.version == version)
    ).scalar_one_or_none()


def _author(session: Session, row: ApprovalRequest) -> str:
    version = _version_row(session, row.model_name, row.model_version)
    return version.created_by if version is not None else ""


def _request_record(session: Session, row: ApprovalRequest) -> ApprovalRequestRecord:
    decisions = session.execute(
        select(ApprovalDecision).where(ApprovalDecision.request_id == row.id).order_by(ApprovalDecision.id)
    ).scalars().all()
    return ApprovalRequestRecord(
        id=row.id, model=row.model_name, version=row.model_version, endpoint=row.endpoint, status=row.status,
        reason=row.reason, requested_by=row.requested_by, created_at=row.created_at, decided_at=row.decided_at,
        author=_author(session, row), required=_required(session, row),
        decisions=tuple(ApprovalDecisionRecord(d.actor, d.decision, d.reason, d.ts) for d in decisions),
    )


def _request_row(session: Session, request_id: int, *, lock: bool = False) -> ApprovalRequest:
    if isinstance(request_id, bool) or not isinstance(request_id, int) or request_id < 1:
        raise ValidationError(f"approval request id must be a positive integer, got {request_id!r}",
                              field="id", rule="type")
    row = session.get(ApprovalRequest, request_id, with_for_update=lock)
    if row is None:
        raise NotFoundError(f"approval request {request_id} not found")
    return row


# ---------------------------------------------------------------------------
# policies


def set_policy(ws: Workspace, target: str, required: int, *, alias: str = "champion",
               reason: str | None = None) -> ApprovalPolicyRecord:
    """Require ``required`` approvals for ``model:NAME`` (its ``alias`` moves) or ``endpoint:NAME`` (traffic).

    ``required=0`` keeps the row but needs no approval. Audited as ``approval.policy``.

    Raises:
        ValidationError: a bad target, a count outside 0..20, a bad alias.
    """
    scope, name = _parse_target(target)
    if isinstance(required, bool) or not isinstance(required, int) or not 0 <= required <= MAX_REQUIRED:
        raise ValidationError(f"required approvals must be an integer in 0..{MAX_REQUIRED}, got {required!r}",
                              field="required", rule="range")
    check_name(alias, "alias")
    why = _reason(reason, required=False, what="a policy change")
    now = utcnow()
    with ws.store.write(ws.actor) as tx:
        row = find_policy(tx.session, scope, name)
        before = None
        if row is None:
            row = ApprovalPolicy(scope=scope, name=name, required=required, alias=alias, created_at=now,
                                 created_by=ws.actor, updated_at=now, updated_by=ws.actor)
            tx.session.add(row)
        else:
            before = {"required": row.required, "alias": row.alias}
            row.required, row.alias, row.updated_at, row.updated_by = required, alias, now, ws.actor
        tx.session.flush()
        record = _policy_record(row)
        tx.audit("approval.policy", "approval_policy", record.target, before=before,
                 after={"required": required, "alias": record.alias}, reason=why)
        return record


def get_policy(ws: Workspace, target: str) -> ApprovalPolicyRecord:
    """The policy of ``model:NAME`` or ``endpoint:NAME``.

    Raises:
        NotFoundError: it has none (no approval is needed then).
    """
    scope, name = _parse_target(target)
    with ws.store.read() as session:
        row = find_policy(session, scope, name)
        if row is None:
            raise NotFoundError(f"{scope} {name!r} has no approval policy: no approval is needed")
        return _policy_record(row)


def list_policies(ws: Workspace) -> list[ApprovalPolicyRecord]:
    """Every approval policy, by target."""
    with ws.store.read() as session:
        rows = session.execute(select(ApprovalPolicy).order_by(ApprovalPolicy.scope, ApprovalPolicy.name)).scalars()
        return [_policy_record(r) for r in rows]


# ---------------------------------------------------------------------------
# requests and decisions


def request_approval(ws: Workspace, ref: str, *, endpoint: str | None = None,
                     reason: str | None = None) -> ApprovalRequestRecord:
    """Ask for approvals of model version ``ref`` (``NAME/VERSION`` or ``NAME@ALIAS``), for ``endpoint`` if given.

    Raises:
        NotFoundError: no such model version, or ``endpoint`` serves another model.
        ValidationError: a bad reference or reason.
    """
    from loopml.metadata._orm import RegisteredModel

    parsed = ModelRef.parse(ref)
    if endpoint is not None:
        check_name(endpoint, "endpoint")
    why = _reason(reason, required=False, what="a request")
    with ws.store.write(ws.actor) as tx:
        s = tx.session
        if parsed.version is not None:
            version = _version_row(s, parsed.name, parsed.version)
        else:
            from loopml.metadata._orm import ModelAlias, ModelVersion

            version = s.execute(
                select(ModelVersion).join(ModelAlias, ModelAlias.version_id == ModelVersion.id)
                .join(RegisteredModel, RegisteredModel.id == ModelAlias.model_id)
                .where(RegisteredModel.name == parsed.name, ModelAlias.alias == parsed.alias)
            ).scalar_one_or_none()
        if version is None:
            raise NotFoundError(f"model version {ref!r} not found")
        if endpoint is not None:
            ep = s.execute(select(Endpoint.model_name).where(Endpoint.name == endpoint)).scalar_one_or_none()
            if ep is not None and ep != parsed.name:
                raise ValidationError(f"endpoint {endpoint!r} serves model {ep!r}, not {parsed.name!r}",
                                      field="endpoint", rule="model")
        row = ApprovalRequest(model_name=parsed.name, model_version=version.version, endpoint=endpoint,
                              status="pending", reason=why, requested_by=ws.actor, created_at=utcnow())
        s.add(row)
        s.flush()
        record = _request_record(s, row)
        tx.link(("model_version", record.ref), "approval", ("approval", row.id))
        tx.audit("approval.request", "approval", row.id,
                 after={"model_version": record.ref, "endpoint": endpoint, "required": record.required}, reason=why)
        return record


def _decide(ws: Workspace, request_id: int, decision: str, reason: str | None) -> ApprovalRequestRecord:
    why = _reason(reason, required=True, what=f"an {decision}" if decision[0] in "ao" else f"a {decision}")
    assert why is not None
    with ws.store.write(ws.actor) as tx:
        s = tx.session
        row = _request_row(s, request_id, lock=True)
        if row.status in ("rejected", "overridden"):
            raise ValidationError(f"approval request {row.id} is {row.status}: it takes no more decisions; "
                                  "file a new request", field="id", rule="status")
        author = _author(s, row)
        ref = f"{row.model_name}/{row.model_version}"
        if decision != "override" and ws.actor == author:
            raise PermissionDenied(
                f"user {ws.actor!r} is the author of model {ref} and may not {decision} it "
                "(separation of duties: an approver must not be the author of the version)"
            )
        previous = s.execute(select(ApprovalDecision).where(
            ApprovalDecision.request_id == row.id, ApprovalDecision.actor == ws.actor)).scalar_one_or_none()
        if previous is not None and decision != "override":
            raise AlreadyExistsError(f"user {ws.actor!r} already decided approval request {row.id} "
                                     f"({previous.decision}) at {previous.ts.isoformat(timespec='seconds')}")
        now = utcnow()
        if previous is not None:  # an admin who approved earlier now overrides: keep one decision per person
            previous.decision, previous.reason, previous.ts = decision, why, now
        else:
            s.add(ApprovalDecision(request_id=row.id, actor=ws.actor, decision=decision, reason=why, ts=now))
        s.flush()
        before = row.status
        if decision == "reject":
            row.status, row.decided_at = "rejected", now
        elif decision == "override":
            row.status, row.decided_at = "overridden", now
        else:
            approvers = set(s.execute(select(ApprovalDecision.actor).where(
                ApprovalDecision.request_id == row.id, ApprovalDecision.decision == "approve")).scalars())
            if len(approvers - {author}) >= _required(s, row):
                row.status, row.decided_at = "approved", now
        s.flush()
        record = _request_record(s, row)
        tx.audit(f"approval.{decision}", "approval", row.id, before={"status": before},
                 after={"status": row.status, "model_version": ref, "endpoint": row.endpoint,
                        "approvals": len(record.approvers), "required": record.required}, reason=why)
        return record


def approve(ws: Workspace, request_id: int, *, reason: str) -> ApprovalRequestRecord:
    """Approve a request as ``ws.actor``; it turns ``approved`` once its policies have their count.

    Raises:
        PermissionDenied: the actor authored the version (separation of duties).
        AlreadyExistsError: the actor already decided this request.
        ValidationError: no reason, or the request is rejected or overridden.
    """
    return _decide(ws, request_id, "approve", reason)


def reject(ws: Workspace, request_id: int, *, reason: str) -> ApprovalRequestRecord:
    """Reject a request (final): its approvals stop counting."""
    return _decide(ws, request_id, "reject", reason)


def override(ws: Workspace, request_id: int, *, reason: str) -> ApprovalRequestRecord:
    """Let the version through without its approvals (an admin's decision; entry points check the role)."""
    return _decide(ws, request_id, "override", reason)


def get_request(ws: Workspace, request_id: int) -> ApprovalRequestRecord:
    """One request with its decisions.

    Raises:
        NotFoundError: no request has this id.
    """
    with ws.store.read() as session:
        return _request_record(session, _request_row(session, request_id))


def list_requests(ws: Workspace, *, status: str | None = None, model: str | None = None,
                  version: int | None = None) -> list[ApprovalRequestRecord]:
    """Requests, newest first, filtered by status and model (version)."""
    if status is not None and status not in STATUSES:
        raise ValidationError(f"status {status!r} is unknown; allowed: {', '.join(STATUSES)}",
                              field="status", rule="enum")
    with ws.store.read() as session:
        stmt = select(ApprovalRequest)
        if status is not None:
            stmt = stmt.where(ApprovalRequest.status == status)
        if model is not None:
            stmt = stmt.where(ApprovalRequest.model_name == model)
        if version is not None:
            stmt = stmt.where(ApprovalRequest.model_version == version)
        rows = session.execute(stmt.order_by(ApprovalRequest.id.desc())).scalars().all()
        return [_request_record(session, r) for r in rows]
