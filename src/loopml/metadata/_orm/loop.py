"""The loop's backward edges as rows: monitors, reports, alerts, notifications,
triggers, run requests and scheduler leases."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from loopml.metadata._orm.base import Base, JSONType, UTCDateTime


class Monitor(Base):
    __tablename__ = "monitors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    endpoint: Mapped[str] = mapped_column(String(128), index=True)
    #: The whole definition: window, reference, checks, thresholds, alert rules.
    spec: Mapped[Any] = mapped_column(JSONType)
    schedule: Mapped[str | None] = mapped_column(String(128), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(128))


class MonitorReport(Base):
    __tablename__ = "monitor_reports"
    __table_args__ = (Index("ix_monitor_reports_endpoint_created", "endpoint", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    monitor_id: Mapped[int | None] = mapped_column(ForeignKey("monitors.id", ondelete="SET NULL"), nullable=True, index=True)
    endpoint: Mapped[str] = mapped_column(String(128))
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    n_rows: Mapped[int] = mapped_column(Integer, default=0)
    #: ok | drift | degraded | error
    status: Mapped[str] = mapped_column(String(16), index=True)
    summary: Mapped[Any] = mapped_column(JSONType)
    report: Mapped[Any] = mapped_column(JSONType)
    html_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Alert(Base):
    """One incident: repeated firings of the same rule fold into it (deduplication)."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_key_status", "dedup_key", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(256))
    rule: Mapped[str] = mapped_column(String(128))
    endpoint: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    monitor_id: Mapped[int | None] = mapped_column(ForeignKey("monitors.id", ondelete="SET NULL"), nullable=True)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("monitor_reports.id", ondelete="SET NULL"), nullable=True)
    #: info | warning | critical
    severity: Mapped[str] = mapped_column(String(16))
    #: open | acknowledged | resolved
    status: Mapped[str] = mapped_column(String(16), index=True)
    message: Mapped[str] = mapped_column(Text)
    context: Mapped[Any] = mapped_column(JSONType, nullable=True)
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    acked_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Notification(Base):
    """The outbox: written with the alert, delivered later with retries."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(128))
    #: pending | sent | failed (gave up)
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    payload: Mapped[Any] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Trigger(Base):
    __tablename__ = "triggers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    #: schedule | new_data | alert | manual
    kind: Mapped[str] = mapped_column(String(16), index=True)
    #: The recipe to run (its spec, so the scheduler needs no file) and where it came from.
    recipe: Mapped[Any] = mapped_column(JSONType)
    recipe_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Kind-specific: cron; dataset + min_rows + drift; alert rule filter + debounce.
    config: Mapped[Any] = mapped_column(JSONType)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    #: What the trigger has already acted on (last dataset version, alert ids ...).
    state: Mapped[Any] = mapped_column(JSONType, default=dict)
    last_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(128))


class RunRequest(Base):
    """A wish for a pipeline run (a trigger's, or a recipe a person submitted): the runner claims and executes it."""

    __tablename__ = "run_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trigger_id: Mapped[int | None] = mapped_column(ForeignKey("triggers.id", ondelete="SET NULL"), nullable=True, index=True)
    #: pending | running | succeeded | failed
    status: Mapped[str] = mapped_column(String(16), index=True)
    #: Why: {"type": "alert", "alert_id": 3, "features": [...], "window": [...]} ...
    context: Mapped[Any] = mapped_column(JSONType)
    run_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: A submitted recipe (its spec); a trigger's request runs its trigger's recipe instead.
    recipe: Mapped[Any | None] = mapped_column(JSONType, nullable=True)
    #: What the run produced (the recipe result's JSON), so a remote caller sees what a local run prints.
    result: Mapped[Any | None] = mapped_column(JSONType, nullable=True)
    #: The run's step events so far, ``{"events": [[step, status, seconds], ...]}`` (status ``running`` when it
    #: starts), for a remote caller's progress display.
    progress: Mapped[Any | None] = mapped_column(JSONType, nullable=True)


class Lease(Base):
    """A named lease with an expiry: one scheduler (or one firing) at a time."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
