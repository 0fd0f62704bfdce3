"""Aliases: movable names for versions (``churn@champion``), with their history.

A move is one transaction: the alias row, an ``alias_history`` row and a
``model.alias`` audit event (before/after versions) commit together or not
at all. Moves of one model serialise on its row lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.kernel.types import ModelRef, check_name, utcnow
from loopml.metadata._orm import AliasHistory, ApprovalPolicy, ModelAlias, ModelVersion, RegisteredModel
from loopml.metadata.approvals_gate import require_alias_approval
from loopml.metadata.store import Tx
from loopml.register._queries import check_alias, find_model, find_version, lock_model
from loopml.register._records import AliasChange, AliasRecord
from loopml.workspace import Workspace

__all__ = ["alias_history", "delete_alias", "list_aliases", "set_alias"]


@dataclass(frozen=True)
class AliasMove:
    """A move made in a session, whose audit event is appended at the end of the transaction."""

    record: AliasRecord
    reason: str | None
    deleted: bool = False

    def audit(self, tx: Tx) -> None:
        r = self.record
        before = {"version": r.previous_version} if r.previous_version is not None else None
        after = None if self.deleted else {"version": r.version}
        tx.audit("model.alias", "model_alias", r.ref, before=before, after=after, reason=self.reason)


class ModelKey(Protocol):
    """What a move needs of the model: a ``RegisteredModel`` row, or any object with these."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...


class VersionKey(Protocol):
    """What a move needs of the target version: a ``ModelVersion`` row, or any object with these."""

    @property
    def id(self) -> int: ...
    @property
    def version(self) -> int: ...
    @property
    def created_by(self) -> str: ...


@dataclass(frozen=True)
class ModelHandle:
    """A model as a move needs it (no ORM row)."""

    id: int
    name: str


@dataclass(frozen=True)
class Target:
    """A version as a move needs it, read with a Core statement (no ORM row)."""

    id: int
    version: int
    created_by: str


class AliasState(NamedTuple):
    """Where an alias points now, and the model's approval policy, read in one statement."""

    version_id: int | None
    version: int | None
    updated_at: datetime | None
    policy_required: int | None
    policy_alias: str | None


_MODELS = RegisteredModel.__table__
_VERSIONS = ModelVersion.__table__
_ALIASES = ModelAlias.__table__
_HISTORY = AliasHistory.__table__
_POLICIES = ApprovalPolicy.__table__
_CURRENT = _VERSIONS.alias("current_version")
_TARGET = _VERSIONS.alias("target_version")

# Built once with bound parameters (cache key and compiled SQL reused on every move). Core, not
# ORM: a move reads a few scalars and writes two rows, and the ORM's identity map and unit of work
# cost more than the statements. The approval policy rides along (a LEFT JOIN), so a model without
# one costs no extra query.
_STATE_COLUMNS = (
    _ALIASES.c.version_id, _CURRENT.c.version, _ALIASES.c.updated_at, _POLICIES.c.required, _POLICIES.c.alias,
)


def _state_joins(models: Any) -> Any:
    return (
        models.outerjoin(_ALIASES, (_ALIASES.c.model_id == _MODELS.c.id) & (_ALIASES.c.alias == bindparam("alias")))
        .outerjoin(_CURRENT, _CURRENT.c.id == _ALIASES.c.version_id)
        .outerjoin(_POLICIES, (_POLICIES.c.scope == "model") & (_POLICIES.c.name == _MODELS.c.name))
    )


_ALIAS_STATE = select(*_STATE_COLUMNS).select_from(_state_joins(_MODELS)).where(_MODELS.c.id == bindparam("model_id"))
#: ``set_alias`` in one statement: lock the model row, find the target version and the alias state.
_LOCK_TARGET_STATE = (
    select(_MODELS.c.id, _TARGET.c.id, _TARGET.c.created_by, *_STATE_COLUMNS)
    .select_from(_state_joins(
        _MODELS.outerjoin(_TARGET, (_TARGET.c.model_id == _MODELS.c.id) & (_TARGET.c.version == bindparam("version")))
    ))
    .where(_MODELS.c.name == bindparam("name"))
    .with_for_update(of=_MODELS)
)
_INSERT_ALIAS = insert(_ALIASES)
_UPDATE_ALIAS = (
    update(_ALIASES)
    .where(_ALIASES.c.model_id == bindparam("m_id"), _ALIASES.c.alias == bindparam("a_name"))
    .values(version_id=bindparam("v_id"), updated_at=bindparam("ts"))
)
_DELETE_ALIAS = delete(_ALIASES).where(_ALIASES.c.model_id == bindparam("m_id"), _ALIASES.c.alias == bindparam("a_name"))
_INSERT_HISTORY = insert(_HISTORY)


def _alias_state(session: Session, model_id: int, alias: str) -> AliasState:
    found = session.connection().execute(_ALIAS_STATE, {"model_id": model_id, "alias": alias}).first()
    return AliasState(*found) if found is not None else AliasState(None, None, None, None, None)


def _forget(session: Session, model_id: int, alias: str) -> None:
    """Expire an ORM copy of the alias row this session may hold: the Core write bypassed it."""
    obj = session.identity_map.get(identity_key(ModelAlias, (model_id, alias)))
    if obj is not None:
        session.expire(obj)


def move_alias(
    session: Session, model: ModelKey, alias: str, target: VersionKey, *, actor: str, reason: str | None,
    check_approval: bool = True, state: AliasState | None = None,
) -> AliasMove | None:
    """Point ``alias`` at ``target`` in the caller's transaction (the model row must be locked).

    Returns ``None`` when it already points there: no history, no audit. ``state``
    is the alias state when the caller already read it under the lock.

    Raises:
        PermissionDenied: the model's approval policy protects ``alias`` and the
            version lacks its approvals (``check_approval=False`` only for rollbacks).
    """
    if state is None:
        state = _alias_state(session, model.id, alias)
    if state.version_id == target.id:
        return None
    # Only a policy that protects this alias can refuse; the full check reads its requests.
    if check_approval and state.policy_required and state.policy_alias == alias:
        require_alias_approval(session, model=model.name, version=target.version, alias=alias,
                               author=target.created_by)
    now = utcnow()
    conn = session.connection()
    if state.version_id is not None:
        conn.execute(_UPDATE_ALIAS, {"m_id": model.id, "a_name": alias, "v_id": target.id, "ts": now})
        _forget(session, model.id, alias)
    else:
        conn.execute(_INSERT_ALIAS, {"model_id": model.id, "alias": alias, "version_id": target.id, "updated_at": now})
    conn.execute(_INSERT_HISTORY, {
        "model_id": model.id, "alias": alias, "from_version": state.version, "to_version": target.version,
        "actor": actor, "reason": reason, "ts": now,
    })
    return AliasMove(
        AliasRecord(model.name, alias, target.version, target.id, now, previous_version=state.version), reason
    )


def _check_version(version: int) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValidationError(f"version must be a positive integer, got {version!r}", field="version", rule="type")
    return version


def set_alias(ws: Workspace, name: str, alias: str, version: int, *, reason: str | None = None) -> AliasRecord:
    """Point ``name@alias`` at ``version`` (creating or moving it), atomically and audited."""
    check_name(name, "model")
    check_alias(alias)
    _check_version(version)
    with ws.store.write(ws.actor) as tx:
        s = tx.session
        found = s.connection().execute(_LOCK_TARGET_STATE, {"name": name, "version": version, "alias": alias}).first()
        if found is None or found[1] is None:
            # Raises the not-found error that lists the models or the versions.
            find_version(s, lock_model(s, name), ModelRef(name=name, version=version))
            raise NotFoundError(f"model {name!r} has no version {version}")  # pragma: no cover
        model_id, target_id, author, *rest = found
        state = AliasState(*rest)
        move = move_alias(s, ModelHandle(model_id, name), alias, Target(target_id, version, author),
                          actor=ws.actor, reason=reason, state=state)
        if move is None:  # already there
            assert state.updated_at is not None
            return AliasRecord(name, alias, version, target_id, state.updated_at, previous_version=None)
        move.audit(tx)
        return move.record


def delete_alias(ws: Workspace, name: str, alias: str, *, reason: str | None = None) -> AliasRecord:
    """Remove ``name@alias``; returns where it pointed. Audited, with a history row."""
    check_name(name, "model")
    check_name(alias, "alias")
    with ws.store.write(ws.actor) as tx:
        s = tx.session
        model = lock_model(s, name)
        state = _alias_state(s, model.id, alias)
        if state.version_id is None or state.version is None:
            find_version(s, model, ModelRef(name=name, alias=alias))  # raises, listing the aliases
            raise NotFoundError(f"model {name!r} has no alias {alias!r}")  # pragma: no cover
        now = utcnow()
        conn = s.connection()
        conn.execute(_DELETE_ALIAS, {"m_id": model.id, "a_name": alias})
        _forget(s, model.id, alias)
        conn.execute(_INSERT_HISTORY, {
            "model_id": model.id, "alias": alias, "from_version": state.version, "to_version": None,
            "actor": ws.actor, "reason": reason, "ts": now,
        })
        record = AliasRecord(name, alias, state.version, state.version_id, now, previous_version=state.version)
        AliasMove(record, reason, deleted=True).audit(tx)
        return record


def list_aliases(ws: Workspace, name: str) -> list[AliasRecord]:
    """The aliases of ``name``, by alias."""
    with ws.store.read() as s:
        model = find_model(s, name)
        rows = s.execute(
            select(ModelAlias, ModelVersion.version)
            .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
            .where(ModelAlias.model_id == model.id)
            .order_by(ModelAlias.alias)
        ).all()
        return [AliasRecord(name, a.alias, v, a.version_id, a.updated_at) for a, v in rows]


def alias_history(ws: Workspace, name: str, alias: str | None = None) -> list[AliasChange]:
    """Every move of ``name``'s aliases (or of one alias), oldest first."""
    with ws.store.read() as s:
        model = find_model(s, name)
        stmt = select(AliasHistory).where(AliasHistory.model_id == model.id)
        if alias is not None:
            stmt = stmt.where(AliasHistory.alias == alias)
        rows = s.execute(stmt.order_by(AliasHistory.id)).scalars().all()
        return [
            AliasChange(name, r.alias, r.from_version, r.to_version, r.actor, r.reason, r.ts) for r in rows
        ]
