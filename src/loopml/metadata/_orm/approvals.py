"""Approvals (policies, requests, decisions) and prediction-log retention policies.

A policy says how many approvals a model's protected alias move (``champion``)
or an endpoint's production traffic needs; a request asks for them on one
model version; decisions approve, reject or override it. ``deploy`` and
``register`` read these rows through :mod:`loopml.metadata.approvals_gate`
(a backward edge of the loop is a row, never an import).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from loopml.metadata._orm.base import Base, UTCDateTime


class ApprovalPolicy(Base):
    """``scope`` (``model`` | ``endpoint``) ``name`` needs ``required`` approvals (0: none)."""

    __tablename__ = "approval_policies"
    __table_args__ = (UniqueConstraint("scope", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128))
    required: Mapped[int] = mapped_column(Integer)
    #: The alias a model policy protects (``champion``); unused for endpoints.
    alias: Mapped[str] = mapped_column(String(64), default="champion")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(128))


class ApprovalRequest(Base):
    """A request to approve model version ``model_name/model_version`` (on ``endpoint`` if set)."""

    __tablename__ = "approval_requests"
    __table_args__ = (Index("ix_approval_requests_model", "model_name", "model_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[int] = mapped_column(Integer)
    endpoint: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    #: pending | approved | rejected | overridden
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    requested_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ApprovalDecision(Base):
    """One person's ``approve`` | ``reject`` | ``override`` of a request, with the reason."""

    __tablename__ = "approval_decisions"
    __table_args__ = (UniqueConstraint("request_id", "actor"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("approval_requests.id", ondelete="CASCADE"), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    ts: Mapped[datetime] = mapped_column(UTCDateTime())


class RetentionPolicy(Base):
    """Prediction-log and feedback rows of ``endpoint`` older than ``days`` are deleted."""

    __tablename__ = "retention_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(128), unique=True)
    days: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(128))
    last_applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
