"""Monitors and reports as plain records, and the read side: list, get, HTML.

Rows never leave this module: callers get frozen dataclasses with ``to_dict()``.
A report's JSON is the whole result (every check with its metrics, details and
parameters); its HTML view is rendered once at run time into the artifact store
(its digest on the row) and re-rendered from the JSON if that copy is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.metadata._orm import Monitor, MonitorReport
from loopml.workspace import Workspace

__all__ = [
    "MonitorRecord",
    "MonitorReportRecord",
    "get_monitor",
    "get_report",
    "history",
    "list_monitors",
    "list_reports",
    "report_html",
]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True)
class MonitorRecord:
    """A defined monitor: its spec (as stored) and its schedule state."""

    id: int
    name: str
    endpoint: str
    spec: dict[str, Any]
    schedule: str | None
    enabled: bool
    next_due_at: datetime | None
    last_run_at: datetime | None
    created_at: datetime
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "endpoint": self.endpoint, "spec": self.spec,
                "schedule": self.schedule, "enabled": self.enabled, "next_due_at": _iso(self.next_due_at),
                "last_run_at": _iso(self.last_run_at), "created_at": _iso(self.created_at),
                "created_by": self.created_by}


@dataclass(frozen=True)
class MonitorReportRecord:
    """One monitor run: status (ok | drift | degraded), summary, the full report JSON, the HTML digest."""

    id: int
    monitor_id: int | None
    endpoint: str
    window_start: datetime | None
    window_end: datetime | None
    n_rows: int
    status: str
    summary: dict[str, Any]
    report: dict[str, Any]
    html_digest: str | None
    created_at: datetime

    @property
    def checks(self) -> dict[str, dict[str, Any]]:
        """Check name -> its result dict (status, reason, metrics, details, params)."""
        return self.report.get("checks", {})

    @property
    def alerts(self) -> list[dict[str, Any]]:
        """What the alert rules did after this run (raised, folded, resolved)."""
        return self.report.get("alerts", [])

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "monitor_id": self.monitor_id, "endpoint": self.endpoint,
                "window_start": _iso(self.window_start), "window_end": _iso(self.window_end),
                "n_rows": self.n_rows, "status": self.status, "summary": self.summary, "report": self.report,
                "html_digest": self.html_digest, "created_at": _iso(self.created_at)}


def monitor_record(row: Monitor) -> MonitorRecord:
    return MonitorRecord(id=row.id, name=row.name, endpoint=row.endpoint, spec=dict(row.spec or {}),
                         schedule=row.schedule, enabled=bool(row.enabled), next_due_at=row.next_due_at,
                         last_run_at=row.last_run_at, created_at=row.created_at, created_by=row.created_by)


def report_record(row: MonitorReport) -> MonitorReportRecord:
    return MonitorReportRecord(id=row.id, monitor_id=row.monitor_id, endpoint=row.endpoint,
                               window_start=row.window_start, window_end=row.window_end, n_rows=row.n_rows,
                               status=row.status, summary=dict(row.summary or {}), report=dict(row.report or {}),
                               html_digest=row.html_digest, created_at=row.created_at)


def list_monitors(ws: Workspace) -> list[MonitorRecord]:
    """Every defined monitor, by name."""
    with ws.store.read() as s:
        return [monitor_record(r) for r in s.execute(select(Monitor).order_by(Monitor.name)).scalars()]


def find_monitor(ws: Workspace, name_or_endpoint: str) -> MonitorRecord | None:
    """The monitor named so, else the (first) monitor of that endpoint, else None."""
    with ws.store.read() as s:
        row = s.execute(select(Monitor).where(Monitor.name == name_or_endpoint)).scalar_one_or_none()
        if row is None:
            row = s.execute(select(Monitor).where(Monitor.endpoint == name_or_endpoint).order_by(Monitor.id)
                            .limit(1)).scalar_one_or_none()
        return None if row is None else monitor_record(row)


def get_monitor(ws: Workspace, name: str) -> MonitorRecord:
    """One monitor by name (or by endpoint).

    Raises:
        NotFoundError: no such monitor; lists the defined ones.
    """
    rec = find_monitor(ws, name)
    if rec is None:
        known = ", ".join(m.name for m in list_monitors(ws)) or "none yet"
        raise NotFoundError(f"monitor {name!r} is not defined; defined monitors: {known}")
    return rec


def list_reports(ws: Workspace, endpoint: str | None = None, limit: int = 50) -> list[MonitorReportRecord]:
    """Reports, newest first (optionally of one endpoint)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError(f"limit must be an integer >= 1, got {limit!r}", field="limit", rule="range")
    query = select(MonitorReport).order_by(MonitorReport.created_at.desc(), MonitorReport.id.desc()).limit(limit)
    if endpoint:
        query = query.where(MonitorReport.endpoint == endpoint)
    with ws.store.read() as s:
        return [report_record(r) for r in s.execute(query).scalars()]


def get_report(ws: Workspace, report_id: int) -> MonitorReportRecord:
    """One report by id.

    Raises:
        NotFoundError: no report has this id.
    """
    with ws.store.read() as s:
        row = s.get(MonitorReport, int(report_id))
        if row is None:
            raise NotFoundError(f"monitor report {report_id} does not exist")
        return report_record(row)


def report_html(ws: Workspace, report_id: int) -> str:
    """The HTML view of a report: the stored copy, else rendered again from the JSON."""
    rec = get_report(ws, report_id)
    if rec.html_digest and ws.artifacts.exists(rec.html_digest):
        return ws.artifacts.get_bytes(rec.html_digest).decode("utf-8")
    from loopml.monitor._html import render_report

    full = rec.to_dict()
    return render_report(full, [*history(ws, rec.endpoint, before_id=rec.id), {**full, "created_at": _iso(rec.created_at)}])


def history(ws: Workspace, endpoint: str, *, before_id: int | None = None, limit: int = 60) -> list[dict[str, Any]]:
    """Previous reports of ``endpoint``, oldest first, summaries only (for the drift-over-time chart)."""
    query = (select(MonitorReport.id, MonitorReport.created_at, MonitorReport.status, MonitorReport.summary)
             .where(MonitorReport.endpoint == endpoint).order_by(MonitorReport.id.desc()).limit(limit))
    if before_id is not None:
        query = query.where(MonitorReport.id < before_id)
    with ws.store.read() as s:
        rows = s.execute(query).all()
    return [{"id": r.id, "created_at": _iso(r.created_at), "status": r.status, "summary": dict(r.summary or {})}
            for r in reversed(rows)]
