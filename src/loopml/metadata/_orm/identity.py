"""Identities: users, their API tokens (hashed, expiring, revocable) and role bindings per project."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from loopml.metadata._orm.base import Base, UTCDateTime


class User(Base):
    """A person or a service account that can hold roles and tokens."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    email: Mapped[str | None] = mapped_column(String(256), nullable=True)
    #: A disabled user's tokens stop authenticating; the row stays for the audit trail.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(128))


class ApiToken(Base):
    """An API token: only a salted hash of its secret is stored, never the secret."""

    __tablename__ = "api_tokens"

    #: The public part of ``lml_<id>_<secret>``: safe to show, log and audit.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    salt: Mapped[str] = mapped_column(String(64))
    #: hex sha256(salt || secret); compared in constant time.
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(128), nullable=True)


class RoleBinding(Base):
    """``user`` holds ``role`` in ``project`` (``*`` means every project)."""

    __tablename__ = "role_bindings"
    __table_args__ = (UniqueConstraint("user_id", "project", "role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(128))
