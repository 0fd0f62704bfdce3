"""Identities: users, API tokens and roles per project; who may do what.

    >>> create_user(ws, "ana", roles={"default": "data_scientist"})
    >>> token_id, secret = create_token(ws, "ana")      # the secret is shown once
    >>> who = authenticate(ws, f"Bearer {secret}")
    >>> authorize(who, "model.register", "default")     # or PermissionDenied

The role → permission table lives in :mod:`loopml.governance._roles`
(``ROLE_PERMISSIONS``). Every change is one audited transaction
(``user.create``, ``user.disable``, ``role.grant``, ``role.revoke``,
``token.create``, ``token.revoke``); no audit entry, record or message ever
holds a token secret or its hash. Service functions do not check the caller's
rights themselves: the entry points (REST server, CLI) call :func:`authorize`
first, as they do for every other service.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loopml.governance._roles import (
    ACTIONS,
    ALL_PROJECTS,
    PROTECTED_ALIASES,
    ROLE_PERMISSIONS,
    ROLES,
    alias_action,
    permissions_of,
)
from loopml.governance._tokens import new_token, parse_token, verify_secret
from loopml.kernel.exceptions import (
    AlreadyExistsError,
    NotFoundError,
    PermissionDenied,
    ValidationError,
)
from loopml.kernel.types import check_name, utcnow
from loopml.metadata._orm import ApiToken, RoleBinding, User

if TYPE_CHECKING:
    from loopml.workspace import Workspace

__all__ = [
    "ACTIONS",
    "ALL_PROJECTS",
    "PROTECTED_ALIASES",
    "ROLES",
    "ROLE_PERMISSIONS",
    "ApprovalHook",
    "Identity",
    "IssuedToken",
    "NotAuthenticated",
    "TokenRecord",
    "UserRecord",
    "alias_action",
    "authenticate",
    "authorize",
    "clear_approval_hooks",
    "create_token",
    "create_user",
    "disable_user",
    "get_user",
    "grant",
    "list_tokens",
    "list_users",
    "local_identity",
    "register_approval_hook",
    "revoke_role",
    "revoke_token",
    "token_owner",
]

MAX_TOKEN_DAYS = 3650


class NotAuthenticated(PermissionDenied):
    """No valid credentials: missing, malformed, unknown, expired or revoked token (HTTP 401)."""


# ---------------------------------------------------------------------------
# records


@dataclass(frozen=True)
class UserRecord:
    """A user and the roles it holds, per project."""

    name: str
    email: str | None
    active: bool
    roles: dict[str, list[str]]
    created_at: datetime
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "email": self.email, "active": self.active,
                "roles": {p: list(r) for p, r in self.roles.items()},
                "created_at": self.created_at.isoformat(), "created_by": self.created_by}


@dataclass(frozen=True)
class TokenRecord:
    """An API token as lists show it: never its secret, nor its hash."""

    id: str
    user: str
    name: str | None
    created_at: datetime
    created_by: str
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None

    @property
    def status(self) -> str:
        """``active`` | ``expired`` | ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= utcnow() else "active"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "user": self.user, "name": self.name, "status": self.status,
                "created_at": self.created_at.isoformat(), "created_by": self.created_by,
                "expires_at": self.expires_at.isoformat(),
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
                "revoked_by": self.revoked_by}


class IssuedToken(tuple[str, str]):
    """``(token_id, secret)``: the secret (the whole ``lml_<id>_<secret>``) is shown only now."""

    expires_at: datetime

    def __new__(cls, token_id: str, secret: str, expires_at: datetime) -> IssuedToken:
        self = super().__new__(cls, (token_id, secret))
        self.expires_at = expires_at
        return self

    @property
    def token_id(self) -> str:
        return self[0]

    @property
    def secret(self) -> str:
        return self[1]

    def __repr__(self) -> str:  # never print the secret by accident
        return f"IssuedToken(token_id={self[0]!r}, secret='***')"


@dataclass(frozen=True)
class Identity:
    """Who is calling, with their roles per project (``*`` applies everywhere)."""

    name: str
    roles: Mapping[str, frozenset[str]] = field(default_factory=dict)
    token_id: str | None = None
    #: Embedded single-user mode: the OS user, trusted with everything.
    local: bool = False

    def roles_in(self, project: str) -> frozenset[str]:
        return frozenset(self.roles.get(project, frozenset()) | self.roles.get(ALL_PROJECTS, frozenset()))

    def permissions(self, project: str) -> frozenset[str]:
        if self.local:
            return ACTIONS
        return permissions_of(set(self.roles_in(project)))

    def can(self, action: str, project: str = "default") -> bool:
        return action in self.permissions(project)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "roles": {p: sorted(r) for p, r in self.roles.items()},
                "token_id": self.token_id, "local": self.local}


def local_identity(name: str) -> Identity:
    """The identity of embedded single-user mode: the OS user, allowed everything."""
    return Identity(name=name, roles={ALL_PROJECTS: frozenset({"admin"})}, local=True)


# ---------------------------------------------------------------------------
# authorization


#: ``(identity, action, project, target) -> True`` when an approval covers the action.
ApprovalHook = Callable[[Identity, str, str, Mapping[str, Any]], bool]
_APPROVAL_HOOKS: list[ApprovalHook] = []
#: Actions an approval may unlock for someone whose role does not hold them.
_APPROVABLE = frozenset({"model.alias.protected"})


def register_approval_hook(hook: ApprovalHook) -> None:
    """Let an approval workflow unlock approvable actions (e.g. a champion move)."""
    _APPROVAL_HOOKS.append(hook)


def clear_approval_hooks() -> None:
    _APPROVAL_HOOKS.clear()


def _needed_roles(action: str) -> list[str]:
    return [r for r in ROLES if action in ROLE_PERMISSIONS[r]]


def authorize(identity: Identity, action: str, project: str = "default", *,
              target: Mapping[str, Any] | None = None) -> None:
    """Allow ``action`` in ``project`` or raise :class:`PermissionDenied` saying which role it needs.

    Raises:
        ValidationError: ``action`` is not a known action (a programming error).
        PermissionDenied: the identity's roles there do not hold the action and
            no approval hook covers it.
    """
    if action not in ACTIONS:
        raise ValidationError(f"action {action!r} is unknown; known: {', '.join(sorted(ACTIONS))}",
                              field="action", rule="enum")
    if identity.can(action, project):
        return
    if action in _APPROVABLE and any(hook(identity, action, project, target or {}) for hook in _APPROVAL_HOOKS):
        return
    held = ", ".join(sorted(identity.roles_in(project))) or "no role"
    needed = _needed_roles(action)
    if action == "model.alias.protected":
        alias = (target or {}).get("alias", "champion")
        raise PermissionDenied(
            f"user {identity.name!r} ({held} in project {project!r}) may not move the protected alias {alias!r}: "
            f"that needs an approval or the role {needed[0]} or higher"
        )
    raise PermissionDenied(
        f"user {identity.name!r} ({held} in project {project!r}) may not do '{action}': "
        f"it needs the role {needed[0]} or higher"
    )


# ---------------------------------------------------------------------------
# users and roles


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ValidationError(f"role {role!r} is unknown; roles: {', '.join(ROLES)}", field="role", rule="enum")
    return role


def _check_project(project: str) -> str:
    return project if project == ALL_PROJECTS else check_name(project, "project")


def _user_row(session: Session, name: str) -> User:
    row = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if row is None:
        known = session.execute(select(User.name).order_by(User.name).limit(20)).scalars().all()
        raise NotFoundError(f"user {name!r} not found; users: {', '.join(known) or '(none)'}")
    return row


def _roles_of(session: Session, user_id: int) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    rows = session.execute(
        select(RoleBinding.project, RoleBinding.role).where(RoleBinding.user_id == user_id)
        .order_by(RoleBinding.project, RoleBinding.id)
    ).all()
    for project, role in rows:
        out.setdefault(project, []).append(role)
    return out


def _user_record(session: Session, row: User) -> UserRecord:
    return UserRecord(name=row.name, email=row.email, active=bool(row.active), roles=_roles_of(session, row.id),
                      created_at=row.created_at, created_by=row.created_by)


def create_user(ws: Workspace, name: str, *, email: str | None = None,
                roles: Mapping[str, str | Sequence[str]] | None = None) -> UserRecord:
    """A new user with ``roles`` (``{project: role}`` or ``{project: [roles]}``).

    Raises:
        ValidationError: a bad name, email, role or project.
        AlreadyExistsError: the name is taken.
    """
    check_name(name, "user")
    if email is not None and ("@" not in email or len(email) > 256 or any(c.isspace() for c in email)):
        raise ValidationError(f"email {email!r} is invalid: expected name@host", field="email", rule="format")
    bindings: list[tuple[str, str]] = []
    for project, value in (roles or {}).items():
        for role in [value] if isinstance(value, str) else list(value):
            bindings.append((_check_project(project), _check_role(role)))
    now = utcnow()
    with ws.store.write(ws.actor) as tx:
        if tx.session.execute(select(User.id).where(User.name == name)).first() is not None:
            raise AlreadyExistsError(f"user {name!r} already exists")
        row = User(name=name, email=email, active=True, created_at=now, created_by=ws.actor)
        tx.session.add(row)
        tx.session.flush()
        for project, role in dict.fromkeys(bindings):
            tx.session.add(RoleBinding(user_id=row.id, project=project, role=role, created_at=now,
                                       created_by=ws.actor))
        tx.session.flush()
        record = _user_record(tx.session, row)
        tx.audit("user.create", "user", name, after={"name": name, "email": email, "roles": record.roles})
        return record


def get_user(ws: Workspace, name: str) -> UserRecord:
    """One user with its roles.

    Raises:
        NotFoundError: no such user (lists some that exist).
    """
    with ws.store.read() as session:
        return _user_record(session, _user_row(session, name))


def list_users(ws: Workspace) -> list[UserRecord]:
    """Every user, by name."""
    with ws.store.read() as session:
        return [_user_record(session, r) for r in session.execute(select(User).order_by(User.name)).scalars()]


def _other_active_admins(session: Session, user_id: int) -> int:
    return len(session.execute(
        select(RoleBinding.user_id).join(User, User.id == RoleBinding.user_id)
        .where(RoleBinding.role == "admin", User.active.is_(True), RoleBinding.user_id != user_id)
        .distinct()
    ).all())


def disable_user(ws: Workspace, name: str, *, reason: str | None = None) -> UserRecord:
    """Stop a user from authenticating (its tokens stop working); the row stays for the audit trail.

    Raises:
        ValidationError: it is the last active admin.
    """
    with ws.store.write(ws.actor) as tx:
        row = _user_row(tx.session, name)
        is_admin = any("admin" in r for r in _roles_of(tx.session, row.id).values())
        if row.active and is_admin and _other_active_admins(tx.session, row.id) == 0:
            raise ValidationError(f"user {name!r} is the last active admin and cannot be disabled",
                                  field="user", rule="last_admin")
        if row.active:
            row.active = False
            tx.audit("user.disable", "user", name, before={"active": True}, after={"active": False}, reason=reason)
        return _user_record(tx.session, row)


def grant(ws: Workspace, user: str, role: str, project: str = "default", *,
          reason: str | None = None) -> UserRecord:
    """Give ``user`` ``role`` in ``project`` (``*``: every project); granting twice is a no-op."""
    _check_role(role)
    _check_project(project)
    with ws.store.write(ws.actor) as tx:
        row = _user_row(tx.session, user)
        exists = tx.session.execute(select(RoleBinding.id).where(
            RoleBinding.user_id == row.id, RoleBinding.project == project, RoleBinding.role == role)).first()
        if exists is None:
            tx.session.add(RoleBinding(user_id=row.id, project=project, role=role, created_at=utcnow(),
                                       created_by=ws.actor))
            tx.session.flush()
            tx.audit("role.grant", "user", user, after={"project": project, "role": role}, reason=reason)
        return _user_record(tx.session, row)


def revoke_role(ws: Workspace, user: str, role: str, project: str = "default", *,
                reason: str | None = None) -> UserRecord:
    """Take ``role`` in ``project`` away from ``user``.

    Raises:
        NotFoundError: the user does not hold that role there (names the roles it holds).
        ValidationError: it would remove the last active admin.
    """
    _check_role(role)
    _check_project(project)
    with ws.store.write(ws.actor) as tx:
        row = _user_row(tx.session, user)
        binding = tx.session.execute(select(RoleBinding).where(
            RoleBinding.user_id == row.id, RoleBinding.project == project, RoleBinding.role == role)
        ).scalar_one_or_none()
        if binding is None:
            held = _roles_of(tx.session, row.id)
            shown = "; ".join(f"{p}: {', '.join(r)}" for p, r in held.items()) or "none"
            raise NotFoundError(f"user {user!r} has no role {role!r} in project {project!r}; roles: {shown}")
        if role == "admin" and row.active:
            admin_bindings = [p for p, r in _roles_of(tx.session, row.id).items() if "admin" in r]
            if len(admin_bindings) == 1 and _other_active_admins(tx.session, row.id) == 0:
                raise ValidationError(f"user {user!r} is the last active admin; grant admin to someone else first",
                                      field="role", rule="last_admin")
        tx.session.delete(binding)
        tx.session.flush()
        tx.audit("role.revoke", "user", user, before={"project": project, "role": role}, reason=reason)
        return _user_record(tx.session, row)


# ---------------------------------------------------------------------------
# tokens


def _token_record(row: ApiToken, user: str) -> TokenRecord:
    return TokenRecord(id=row.id, user=user, name=row.name, created_at=row.created_at, created_by=row.created_by,
                       expires_at=row.expires_at, revoked_at=row.revoked_at, revoked_by=row.revoked_by)


def create_token(ws: Workspace, user: str, *, expires_in_days: int = 90, name: str | None = None) -> IssuedToken:
    """A new API token for ``user``: ``(token_id, secret)``; the secret is never retrievable again.

    Raises:
        ValidationError: ``expires_in_days`` outside 1..3650, a bad name, or a disabled user.
        NotFoundError: no such user.
    """
    if isinstance(expires_in_days, bool) or not isinstance(expires_in_days, int) or not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
        raise ValidationError(f"expires_in_days must be an integer in 1..{MAX_TOKEN_DAYS}, got {expires_in_days!r}",
                              field="expires_in_days", rule="range")
    if name is not None:
        check_name(name, "token name")
    token_id, secret, salt, digest = new_token()
    now = utcnow()
    expires = now + timedelta(days=expires_in_days)
    with ws.store.write(ws.actor) as tx:
        row = _user_row(tx.session, user)
        if not row.active:
            raise ValidationError(f"user {user!r} is disabled: no new tokens", field="user", rule="active")
        tx.session.add(ApiToken(id=token_id, user_id=row.id, name=name, salt=salt, secret_hash=digest,
                                created_at=now, created_by=ws.actor, expires_at=expires))
        tx.session.flush()
        # Only public facts: the id, the owner, the name, the expiry. Never the secret or its hash.
        tx.audit("token.create", "token", token_id,
                 after={"id": token_id, "user": user, "name": name, "expires_at": expires.isoformat()})
    return IssuedToken(token_id, secret, expires)


def revoke_token(ws: Workspace, token_id: str, *, reason: str | None = None) -> TokenRecord:
    """Revoke a token now (idempotent: revoking twice keeps the first time).

    Raises:
        NotFoundError: no token has this id.
    """
    with ws.store.write(ws.actor) as tx:
        row = tx.session.get(ApiToken, token_id) if isinstance(token_id, str) else None
        if row is None:
            raise NotFoundError(f"API token {token_id!r} not found")
        owner = tx.session.get(User, row.user_id)
        assert owner is not None
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            row.revoked_by = ws.actor
            tx.session.flush()
            tx.audit("token.revoke", "token", row.id, after={"id": row.id, "user": owner.name}, reason=reason)
        return _token_record(row, owner.name)


def token_owner(ws: Workspace, token_id: str) -> str:
    """The user a token belongs to (so the server can let users revoke their own)."""
    with ws.store.read() as session:
        row = session.get(ApiToken, token_id)
        if row is None:
            raise NotFoundError(f"API token {token_id!r} not found")
        owner = session.get(User, row.user_id)
        assert owner is not None
        return owner.name


def list_tokens(ws: Workspace, user: str | None = None, *, include_inactive: bool = True) -> list[TokenRecord]:
    """Tokens (of one user, or all), newest first; never their secrets."""
    with ws.store.read() as session:
        stmt = select(ApiToken, User.name).join(User, User.id == ApiToken.user_id)
        if user is not None:
            stmt = stmt.where(ApiToken.user_id == _user_row(session, user).id)
        rows = session.execute(stmt.order_by(ApiToken.created_at.desc(), ApiToken.id)).all()
    records = [_token_record(t, owner) for t, owner in rows]
    return records if include_inactive else [r for r in records if r.status == "active"]


def authenticate(ws: Workspace, bearer: str | None) -> Identity:
    """The identity behind ``Authorization: Bearer lml_<id>_<secret>`` (or the bare token).

    The secret is checked before anything else is revealed: a wrong secret
    reads "not valid" whether or not the id exists, and costs the same hash.

    Raises:
        NotAuthenticated: missing, malformed, unknown, wrong, expired or revoked
            token, or a disabled user; the message says which (never the secret).
    """
    text = (bearer or "").strip()
    if text.lower().startswith("bearer "):
        text = text[7:].strip()
    if not text:
        raise NotAuthenticated("no API token: send 'Authorization: Bearer lml_<id>_<secret>'")
    parsed = parse_token(text)
    if parsed is None:
        raise NotAuthenticated("the API token is malformed: expected lml_<id>_<secret>")
    token_id, secret = parsed
    with ws.store.read() as session:
        row = session.get(ApiToken, token_id)
        ok = verify_secret(secret, row.salt if row else None, row.secret_hash if row else None)
        if row is None or not ok:
            raise NotAuthenticated("the API token is not valid")
        if row.revoked_at is not None:
            raise NotAuthenticated(f"API token {token_id} was revoked at {row.revoked_at.isoformat(timespec='seconds')}")
        if row.expires_at <= utcnow():
            raise NotAuthenticated(f"API token {token_id} expired at {row.expires_at.isoformat(timespec='seconds')}; "
                                   "ask an admin for a new one")
        user = session.get(User, row.user_id)
        assert user is not None
        if not user.active:
            raise NotAuthenticated(f"user {user.name!r} is disabled")
        roles = {p: frozenset(r) for p, r in _roles_of(session, user.id).items()}
        return Identity(name=user.name, roles=roles, token_id=token_id)
