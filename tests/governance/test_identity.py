"""Identities: users, roles per project, tokens (hashed, expiring, revocable) and authorization."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from loopml.governance.identity import (
    ROLE_PERMISSIONS,
    ROLES,
    NotAuthenticated,
    authenticate,
    authorize,
    clear_approval_hooks,
    create_token,
    create_user,
    disable_user,
    get_user,
    grant,
    list_tokens,
    list_users,
    local_identity,
    register_approval_hook,
    revoke_role,
    revoke_token,
)
from loopml.kernel.exceptions import (
    AlreadyExistsError,
    NotFoundError,
    PermissionDenied,
    ValidationError,
)
from loopml.kernel.types import utcnow
from loopml.metadata._orm import ApiToken
from loopml.metadata.audit import audit_log, export_audit


def test_create_user_with_roles_per_project_and_audit(workspace) -> None:  # type: ignore[no-untyped-def]
    user = create_user(workspace, "ana", email="ana@example.org", roles={"default": "viewer", "fraud": ["ml_engineer"]})
    assert user.roles == {"default": ["viewer"], "fraud": ["ml_engineer"]}
    assert [u.name for u in list_users(workspace)] == ["ana"]
    event = audit_log(workspace, action="user.create")[0]
    assert event.object == "user:ana" and event.actor == "tester"
    with pytest.raises(AlreadyExistsError, match="user 'ana' already exists"):
        create_user(workspace, "ana")


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"name": "../etc"}, "user"),
    ({"name": "ok", "email": "not an email"}, "email"),
    ({"name": "ok", "roles": {"default": "superuser"}}, "role"),
    ({"name": "ok", "roles": {"bad/project": "viewer"}}, "project"),
])
def test_create_user_rejects_bad_input_naming_the_field(sqlite_workspace, kwargs, field) -> None:  # type: ignore[no-untyped-def]
    name = kwargs.pop("name")
    with pytest.raises(ValidationError) as info:
        create_user(sqlite_workspace, name, **kwargs)
    assert info.value.field == field


def test_grant_and_revoke_roles(workspace) -> None:  # type: ignore[no-untyped-def]
    create_user(workspace, "admin", roles={"*": "admin"})
    create_user(workspace, "bo")
    assert grant(workspace, "bo", "approver", "fraud").roles == {"fraud": ["approver"]}
    grant(workspace, "bo", "approver", "fraud")  # idempotent
    assert len(audit_log(workspace, action="role.grant")) == 1
    assert revoke_role(workspace, "bo", "approver", "fraud").roles == {}
    with pytest.raises(NotFoundError, match="user 'bo' has no role 'viewer' in project 'default'"):
        revoke_role(workspace, "bo", "viewer")
    with pytest.raises(NotFoundError, match="user 'nobody' not found; users: admin, bo"):
        grant(workspace, "nobody", "viewer")


def test_the_last_admin_cannot_be_removed(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    create_user(sqlite_workspace, "root", roles={"default": "admin"})
    with pytest.raises(ValidationError, match="last active admin"):
        revoke_role(sqlite_workspace, "root", "admin")
    with pytest.raises(ValidationError, match="last active admin"):
        disable_user(sqlite_workspace, "root")
    create_user(sqlite_workspace, "second", roles={"*": "admin"})
    assert disable_user(sqlite_workspace, "root").active is False


def test_token_round_trip_and_stored_only_hashed(workspace) -> None:  # type: ignore[no-untyped-def]
    create_user(workspace, "ana", roles={"default": "data_scientist"})
    token_id, secret = create_token(workspace, "ana", name="laptop", expires_in_days=30)
    assert secret.startswith(f"lml_{token_id}_") and len(secret) > 50
    who = authenticate(workspace, f"Bearer {secret}")
    assert who.name == "ana" and who.token_id == token_id and who.roles_in("default") == {"data_scientist"}
    with workspace.store.read() as session:
        row = session.execute(select(ApiToken).where(ApiToken.id == token_id)).scalar_one()
    stored = " ".join(str(v) for v in (row.salt, row.secret_hash, row.name))
    assert secret.split("_", 2)[2] not in stored
    listed = list_tokens(workspace, "ana")
    assert [t.id for t in listed] == [token_id] and listed[0].status == "active"
    assert "secret" not in listed[0].to_dict() and secret not in repr(create_token(workspace, "ana"))


def test_secrets_never_reach_the_audit_log(workspace, tmp_path) -> None:  # type: ignore[no-untyped-def]
    create_user(workspace, "ana")
    token_id, secret = create_token(workspace, "ana")
    revoke_token(workspace, token_id, reason="rotated")
    export_audit(workspace, tmp_path / "audit.jsonl")
    text = (tmp_path / "audit.jsonl").read_text()
    assert secret.split("_", 2)[2] not in text and token_id in text
    with workspace.store.read() as session:
        digest = session.execute(select(ApiToken.secret_hash)).scalar_one()
    assert digest not in text
    actions = [e.action for e in audit_log(workspace, object=f"token:{token_id}", newest_first=False)]
    assert actions == ["token.create", "token.revoke"]


@pytest.mark.parametrize(("bearer", "message"), [
    (None, "no API token"),
    ("", "no API token"),
    ("Bearer nonsense", "malformed"),
    ("lml_0123456789abcdef_" + "x" * 43, "not valid"),
])
def test_authenticate_refuses_missing_malformed_and_unknown(sqlite_workspace, bearer, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotAuthenticated, match=message):
        authenticate(sqlite_workspace, bearer)


def test_wrong_secret_expired_revoked_and_disabled(workspace) -> None:  # type: ignore[no-untyped-def]
    create_user(workspace, "admin", roles={"*": "admin"})
    create_user(workspace, "ana")
    token_id, secret = create_token(workspace, "ana", expires_in_days=1)
    with pytest.raises(NotAuthenticated, match="^the API token is not valid$"):
        authenticate(workspace, f"lml_{token_id}_" + "y" * 43)
    with workspace.store.write("test") as tx:
        tx.session.execute(update(ApiToken).where(ApiToken.id == token_id).values(expires_at=utcnow() - timedelta(seconds=1)))
    with pytest.raises(NotAuthenticated, match=f"API token {token_id} expired at"):
        authenticate(workspace, secret)
    assert list_tokens(workspace, "ana")[0].status == "expired"

    token_id, secret = create_token(workspace, "ana")
    assert revoke_token(workspace, token_id).status == "revoked"
    with pytest.raises(NotAuthenticated, match=f"API token {token_id} was revoked"):
        authenticate(workspace, secret)
    assert list_tokens(workspace, "ana", include_inactive=False) == []

    _, secret = create_token(workspace, "ana")
    disable_user(workspace, "ana", reason="left")
    with pytest.raises(NotAuthenticated, match="user 'ana' is disabled"):
        authenticate(workspace, secret)
    with pytest.raises(ValidationError, match="disabled"):
        create_token(workspace, "ana")


@pytest.mark.parametrize("days", [0, -1, 3651, True])
def test_token_lifetime_is_bounded(sqlite_workspace, days) -> None:  # type: ignore[no-untyped-def]
    create_user(sqlite_workspace, "ana")
    with pytest.raises(ValidationError, match="expires_in_days must be an integer in 1..3650"):
        create_token(sqlite_workspace, "ana", expires_in_days=days)


def test_role_table_is_a_ladder() -> None:
    for lower, higher in zip(ROLES, ROLES[1:], strict=False):
        assert ROLE_PERMISSIONS[lower] < ROLE_PERMISSIONS[higher], (lower, higher)
    assert ROLE_PERMISSIONS["viewer"] == {p for p in ROLE_PERMISSIONS["admin"] if p.endswith((".read", ".self"))}


def test_authorize_per_role_and_project(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    create_user(sqlite_workspace, "ana", roles={"default": "viewer", "fraud": "ml_engineer"})
    who = authenticate(sqlite_workspace, create_token(sqlite_workspace, "ana").secret)
    authorize(who, "run.read", "default")
    authorize(who, "deployment.write", "fraud")
    with pytest.raises(PermissionDenied, match=r"user 'ana' \(viewer in project 'default'\) may not do "
                                               r"'deployment.write': it needs the role ml_engineer or higher"):
        authorize(who, "deployment.write", "default")
    with pytest.raises(PermissionDenied, match="no role in project 'other'"):
        authorize(who, "run.read", "other")
    with pytest.raises(PermissionDenied, match="may not move the protected alias 'champion'"):
        authorize(who, "model.alias.protected", "fraud", target={"alias": "champion"})
    with pytest.raises(ValidationError, match="action 'model.teleport' is unknown"):
        authorize(who, "model.teleport")
    local = local_identity("me")
    authorize(local, "user.admin", "anything")


def test_an_approval_hook_can_unlock_a_champion_move(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    create_user(sqlite_workspace, "eng", roles={"default": "ml_engineer"})
    who = get_user(sqlite_workspace, "eng")
    identity = authenticate(sqlite_workspace, create_token(sqlite_workspace, who.name).secret)
    register_approval_hook(lambda ident, action, project, target: target.get("version") == 3)
    try:
        authorize(identity, "model.alias.protected", target={"alias": "champion", "version": 3})
        with pytest.raises(PermissionDenied):
            authorize(identity, "model.alias.protected", target={"alias": "champion", "version": 4})
        with pytest.raises(PermissionDenied):  # hooks unlock only approvable actions
            authorize(identity, "user.admin", target={"version": 3})
    finally:
        clear_approval_hooks()
