"""Registry operations inside a caller's transaction.

Deployments move the traffic and the ``champion`` alias in ONE transaction;
these let a later stage do that without opening a second one.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from loopml.kernel.types import ModelRef, check_name
from loopml.metadata.store import Tx
from loopml.register._aliases import move_alias
from loopml.register._queries import check_alias, find_model, find_version, lock_model, version_records
from loopml.register._records import AliasRecord, ModelVersionRecord

__all__ = ["move_alias_in", "resolve_in"]


def resolve_in(session: Session, ref: str | ModelRef) -> ModelVersionRecord:
    """:func:`resolve` on an open session (reads what the transaction sees)."""
    ref = ModelRef.parse(ref) if isinstance(ref, str) else ref
    model = find_model(session, ref.name)
    row = find_version(session, model, ref)
    return version_records(session, model.name, [row])[0]


def move_alias_in(tx: Tx, name: str, alias: str, version: int, *, reason: str | None = None,
                  check_approval: bool = True) -> AliasRecord | None:
    """Point ``name@alias`` at ``version`` in ``tx``; audited; None when it already pointed there.

    ``check_approval=False`` skips the approval policy: only for rolling back to a former version.
    """
    check_name(name, "model")
    check_alias(alias)
    model = lock_model(tx.session, name)
    target = find_version(tx.session, model, ModelRef(name=name, version=version))
    move = move_alias(tx.session, model, alias, target, actor=tx.actor, reason=reason,
                      check_approval=check_approval)
    if move is None:
        return None
    move.audit(tx)
    return move.record
