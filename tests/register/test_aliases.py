"""Aliases move atomically, keep a history, and are audited with before/after."""

from __future__ import annotations

import pytest

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.metadata.audit import audit_log
from loopml.register import alias_history, delete_alias, get_model, list_aliases, register_model, resolve, set_alias


def _versions(ws, n: int = 3) -> None:  # type: ignore[no-untyped-def]
    for i in range(n):
        register_model(ws, "churn", {"v": i + 1}, flavor="custom")


def test_alias_moves_and_keeps_its_history(workspace) -> None:  # type: ignore[no-untyped-def]
    _versions(workspace)
    first = set_alias(workspace, "churn", "champion", 1)
    assert (first.version, first.previous_version) == (1, None)
    moved = set_alias(workspace, "churn", "champion", 3, reason="better auc")
    assert (moved.version, moved.previous_version, moved.ref) == (3, 1, "churn@champion")
    assert resolve(workspace, "churn@champion").version == 3
    assert resolve(workspace, "churn/3").aliases == ("champion",)
    assert resolve(workspace, "churn/1").aliases == ()
    set_alias(workspace, "churn", "champion", 3)  # already there: no history, no event
    history = alias_history(workspace, "churn", "champion")
    assert [(h.from_version, h.to_version, h.reason, h.actor) for h in history] == [
        (None, 1, None, "tester"), (1, 3, "better auc", "tester"),
    ]
    events = audit_log(workspace, action="model.alias", newest_first=False)
    assert [(e.object, e.before, e.after, e.reason) for e in events] == [
        ("model_alias:churn@champion", None, {"version": 1}, None),
        ("model_alias:churn@champion", {"version": 1}, {"version": 3}, "better auc"),
    ]


def test_delete_alias(workspace) -> None:  # type: ignore[no-untyped-def]
    _versions(workspace, 2)
    set_alias(workspace, "churn", "challenger", 2)
    set_alias(workspace, "churn", "champion", 1)
    removed = delete_alias(workspace, "churn", "challenger", reason="retired")
    assert removed.version == 2
    assert [a.alias for a in list_aliases(workspace, "churn")] == ["champion"]
    assert get_model(workspace, "churn").aliases == {"champion": 1}
    assert alias_history(workspace, "churn", "challenger")[-1].to_version is None
    last = audit_log(workspace, limit=1)[0]
    assert (last.action, last.before, last.after, last.reason) == ("model.alias", {"version": 2}, None, "retired")
    with pytest.raises(NotFoundError, match=r"model 'churn' has no alias 'challenger'; aliases: champion"):
        delete_alias(workspace, "churn", "challenger")


def test_alias_errors_name_the_problem(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    _versions(sqlite_workspace, 2)
    with pytest.raises(NotFoundError, match=r"model 'churn' has no version 5; versions: 1, 2"):
        set_alias(sqlite_workspace, "churn", "champion", 5)
    with pytest.raises(NotFoundError, match=r"model 'other' not found; models: churn"):
        set_alias(sqlite_workspace, "other", "champion", 1)
    with pytest.raises(ValidationError, match=r"alias 'bad alias' is invalid"):
        set_alias(sqlite_workspace, "churn", "bad alias", 1)
    with pytest.raises(ValidationError, match=r"version must be a positive integer, got 0"):
        set_alias(sqlite_workspace, "churn", "champion", 0)
    assert alias_history(sqlite_workspace, "churn") == []


def test_aliases_at_registration(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    register_model(sqlite_workspace, "churn", {"v": 1}, flavor="custom", aliases=["champion"])
    rec = register_model(sqlite_workspace, "churn", {"v": 2}, flavor="custom", aliases="champion")
    assert rec.aliases == ("champion",)
    assert [(h.from_version, h.to_version) for h in alias_history(sqlite_workspace, "churn")] == [(None, 1), (1, 2)]


def test_move_in_a_transaction_refreshes_an_alias_row_loaded_earlier(workspace) -> None:  # type: ignore[no-untyped-def]
    """Moves write with Core statements; an ORM copy the caller's session holds must not go stale."""
    from loopml.metadata._orm import ModelAlias
    from loopml.register._intx import move_alias_in

    _versions(workspace, 2)
    set_alias(workspace, "churn", "champion", 1)
    with workspace.store.write("tester") as tx:
        row = tx.session.query(ModelAlias).filter_by(alias="champion").one()
        first = row.version_id
        moved = move_alias_in(tx, "churn", "champion", 2, reason="rollout")
        assert moved is not None and moved.previous_version == 1
        assert row.version_id == moved.version_id != first
    assert resolve(workspace, "churn@champion").version == 2


def test_register_with_aliases_moves_them_in_its_transaction(workspace) -> None:  # type: ignore[no-untyped-def]
    _versions(workspace, 1)
    set_alias(workspace, "churn", "champion", 1)
    record = register_model(workspace, "churn", {"v": 2}, flavor="custom", aliases=["champion", "candidate"])
    assert (record.version, record.aliases) == (2, ("candidate", "champion"))
    assert resolve(workspace, "churn@champion").version == 2
    assert [(h.alias, h.from_version, h.to_version) for h in alias_history(workspace, "churn")] == [
        ("champion", None, 1), ("champion", 1, 2), ("candidate", None, 2),
    ]
    assert resolve(workspace, "churn/2") == record
