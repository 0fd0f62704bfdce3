"""Endpoints, their traffic policy history, and rollouts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from loopml.metadata._orm.base import Base, JSONType, UTCDateTime


class Endpoint(Base):
    """A named serving endpoint: one registered model, a traffic policy over its versions."""

    __tablename__ = "endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    model_name: Mapped[str] = mapped_column(String(128), index=True)
    #: Current policy: {"routes": [{"version", "weight", "role"}], "shadow": [...], "sticky": ...}
    policy: Mapped[Any] = mapped_column(JSONType)
    #: Bumped on every policy change; servers poll it to re-read the policy.
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TrafficChange(Base):
    """Every policy an endpoint ever had, from when: answers "who served E between T1 and T2"."""

    __tablename__ = "traffic_changes"
    __table_args__ = (Index("ix_traffic_changes_endpoint_ts", "endpoint_id", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer)
    policy: Mapped[Any] = mapped_column(JSONType)
    rollout_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime())


class Rollout(Base):
    """A change of traffic from a baseline version to a candidate, under a strategy."""

    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"), index=True)
    #: direct | canary | blue-green | shadow | ab
    strategy: Mapped[str] = mapped_column(String(16))
    baseline_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    candidate_version: Mapped[int] = mapped_column(Integer)
    #: running | paused | promoted | rolled_back
    status: Mapped[str] = mapped_column(String(16), index=True)
    #: Strategy options: canary steps, min requests/time per step, thresholds, A/B metric ...
    config: Mapped[Any] = mapped_column(JSONType)
    step: Mapped[int] = mapped_column(Integer, default=0)
    step_started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: One entry per analysis: the figures, the tests and the decision.
    evidence: Mapped[Any] = mapped_column(JSONType, default=list)
    override_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(128))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
