"""Aliases: movable names for versions (``churn@champion``), with their history.

A move is one transaction: the alias row, an ``alias_history`` row and a
``model.alias`` audit event (before/after versions) commit together or not
at all. Moves of one model serialise on its row lock.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.kernel.types import ModelRef, check_name, utcnow
from loopml.metadata._orm import AliasHistory, ModelAlias, ModelVersion, RegisteredModel
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


# Built once with bound parameters (cache key and compiled SQL reused on every move).
_ALIAS_AND_VERSION = (
    select(ModelAlias, ModelVersion.version)
    .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
    .where(ModelAlias.model_id == bindparam("model_id"), ModelAlias.alias == bindparam("alias"))
    .execution_options(populate_existing=True)
)


def _alias_row(session: Session, model_id: int, alias: str) -> ModelAlias | None:
    return _alias_and_version(session, model_id, alias)[0]


def _alias_and_version(session: Session, model_id: int, alias: str) -> tuple[ModelAlias | None, int | None]:
    """The alias row and the number of the version it points at, in one query."""
    found = session.execute(_ALIAS_AND_VERSION, {"model_id": model_id, "alias": alias}).first()
    return (found[0], int(found[1])) if found is not None else (None, None)


def move_alias(
    session: Session, model: RegisteredModel, alias: str, target: ModelVersion, *, actor: str, reason: str | None,
    check_approval: bool = True,
) -> AliasMove | None:
    """Point ``alias`` at ``target`` in the caller's transaction (the model row must be locked).

    Returns ``None`` when it already points there: no history, no audit.

    Raises:
        PermissionDenied: the model's approval policy protects ``alias`` and the
            version lacks its approvals (``check_approval=False`` only for rollbacks).
    """
    row, previous = _alias_and_version(session, model.id, alias)
    now = utcnow()
    if row is not None and row.version_id == target.id:
        return None
    if check_approval:
        require_alias_approval(session, model=model.name, version=target.version, alias=alias,
                               author=target.created_by)
    if row is not None:
        row.version_id = target.id
        row.updated_at = now
    else:
        session.add(ModelAlias(model_id=model.id, alias=alias, version_id=target.id, updated_at=now))
    session.add(AliasHistory(
        model_id=model.id, alias=alias, from_version=previous, to_version=target.version,
        actor=actor, reason=reason, ts=now,
    ))
    session.flush()
    return AliasMove(
        AliasRecord(model.name, alias, target.version, target.id, now, previous_version=previous), reason
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
        model = lock_model(s, name)
        target = find_version(s, model, ModelRef(name=name, version=version))
        move = move_alias(s, model, alias, target, actor=ws.actor, reason=reason)
        if move is None:  # already there
            row = _alias_row(s, model.id, alias)
            assert row is not None
            return AliasRecord(name, alias, version, target.id, row.updated_at, previous_version=None)
        move.audit(tx)
        return move.record


def delete_alias(ws: Workspace, name: str, alias: str, *, reason: str | None = None) -> AliasRecord:
    """Remove ``name@alias``; returns where it pointed. Audited, with a history row."""
    check_name(name, "model")
    check_name(alias, "alias")
    with ws.store.write(ws.actor) as tx:
        s = tx.session
        model = lock_model(s, name)
        row, version = _alias_and_version(s, model.id, alias)
        if row is None or version is None:
            find_version(s, model, ModelRef(name=name, alias=alias))  # raises, listing the aliases
            raise NotFoundError(f"model {name!r} has no alias {alias!r}")  # pragma: no cover
        now = utcnow()
        s.delete(row)
        s.add(AliasHistory(
            model_id=model.id, alias=alias, from_version=version, to_version=None,
            actor=ws.actor, reason=reason, ts=now,
        ))
        s.flush()
        record = AliasRecord(name, alias, version, row.version_id, now, previous_version=version)
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
