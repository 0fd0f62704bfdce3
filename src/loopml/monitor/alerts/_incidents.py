"""Alerts as incidents: deduplicated by key, quiet during a cooldown, acknowledged by people.

A firing rule either opens an incident (and queues one notification per
channel in the same transaction: the outbox) or folds into the incident that
is already open for that key. An incident resolved less than ``cooldown_s``
ago is reopened silently instead of paging again, so a flapping check makes
one incident, not an alert storm.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.kernel.types import utcnow
from loopml.metadata._orm import Alert, Notification
from loopml.monitor.alerts._notifiers import NOTIFIER_TYPES
from loopml.workspace import Workspace

__all__ = ["SEVERITIES", "AlertRecord", "ack_alert", "get_alert", "list_alerts", "raise_alert", "resolve_alerts"]

SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class AlertRecord:
    id: int
    dedup_key: str
    rule: str
    endpoint: str | None
    severity: str
    status: str
    message: str
    context: dict[str, Any] | None
    count: int
    first_seen: datetime
    last_seen: datetime
    monitor_id: int | None
    report_id: int | None
    acked_by: str | None
    acked_at: datetime | None
    resolved_at: datetime | None
    #: True when this firing opened a new incident (and queued notifications).
    opened: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _record(row: Alert, *, opened: bool = False) -> AlertRecord:
    return AlertRecord(
        id=row.id, dedup_key=row.dedup_key, rule=row.rule, endpoint=row.endpoint, severity=row.severity,
        status=row.status, message=row.message, context=row.context, count=row.count,
        first_seen=row.first_seen, last_seen=row.last_seen, monitor_id=row.monitor_id, report_id=row.report_id,
        acked_by=row.acked_by, acked_at=row.acked_at, resolved_at=row.resolved_at, opened=opened,
    )


def raise_alert(
    ws: Workspace,
    *,
    rule: str,
    message: str,
    severity: str = "warning",
    endpoint: str | None = None,
    dedup_key: str | None = None,
    context: dict[str, Any] | None = None,
    channels: list[dict[str, Any]] | None = None,
    cooldown_s: float = 3600.0,
    monitor_id: int | None = None,
    report_id: int | None = None,
    now: datetime | None = None,
) -> AlertRecord:
    """Open an incident for ``dedup_key`` or fold this firing into the current one."""
    if severity not in SEVERITIES:
        raise ValidationError(f"severity {severity!r} is unknown; allowed: {', '.join(SEVERITIES)}", field="severity", rule="enum")
    for channel in channels or []:
        if channel.get("type") not in NOTIFIER_TYPES:
            raise ValidationError(
                f"notifier type {channel.get('type')!r} is unknown; allowed: {', '.join(NOTIFIER_TYPES)}",
                field="notify.type", rule="enum",
            )
    now = now or utcnow()
    key = dedup_key or f"{endpoint or '-'}:{rule}"
    with ws.store.write(ws.actor) as tx:
        s = tx.session
        latest = s.execute(
            select(Alert).where(Alert.dedup_key == key).order_by(Alert.id.desc()).limit(1).with_for_update()
        ).scalar_one_or_none()
        if latest is not None and (
            latest.status in ("open", "acknowledged")
            or (latest.resolved_at is not None and latest.resolved_at > now - timedelta(seconds=cooldown_s))
        ):
            latest.count += 1
            latest.last_seen = now
            latest.message = message
            latest.context = context
            latest.report_id = report_id or latest.report_id
            if latest.status == "resolved":
                latest.status = "open"  # flapping: same incident, no new page
                latest.resolved_at = None
            s.flush()
            return _record(latest)
        row = Alert(
            dedup_key=key, rule=rule, endpoint=endpoint, monitor_id=monitor_id, report_id=report_id,
            severity=severity, status="open", message=message, context=context, count=1,
            first_seen=now, last_seen=now,
        )
        s.add(row)
        s.flush()
        payload = {"text": message, "alert": {"id": row.id, "rule": rule, "severity": severity, "endpoint": endpoint,
                                              "first_seen": now.isoformat(), "context": context}}
        for channel in channels or []:
            s.add(Notification(alert_id=row.id, channel=channel.get("name") or channel["type"], status="pending",
                               attempts=0, next_attempt_at=now, payload={"config": channel, "body": payload},
                               created_at=now))
        tx.audit("alert.open", "alert", row.id, after={"rule": rule, "severity": severity, "endpoint": endpoint,
                                                        "message": message})
        return _record(row, opened=True)


def resolve_alerts(ws: Workspace, dedup_key: str, *, now: datetime | None = None) -> int:
    """Close the open incident for ``dedup_key`` (the check passes again); returns how many closed."""
    now = now or utcnow()
    with ws.store.write(ws.actor) as tx:
        rows = tx.session.execute(
            select(Alert).where(Alert.dedup_key == dedup_key, Alert.status.in_(("open", "acknowledged")))
        ).scalars().all()
        for row in rows:
            row.status = "resolved"
            row.resolved_at = now
            tx.audit("alert.resolve", "alert", row.id, before={"status": "open"}, after={"status": "resolved"})
        return len(rows)


def ack_alert(ws: Workspace, alert_id: int, *, note: str | None = None) -> AlertRecord:
    """A person takes the incident: it stays open for its fold-ins but is marked acknowledged."""
    with ws.store.write(ws.actor) as tx:
        row = tx.session.get(Alert, alert_id)
        if row is None:
            raise NotFoundError(f"alert {alert_id} does not exist")
        if row.status == "resolved":
            raise ValidationError(f"alert {alert_id} is already resolved", field="alert", rule="state")
        before = row.status
        row.status = "acknowledged"
        row.acked_by = ws.actor
        row.acked_at = utcnow()
        tx.audit("alert.ack", "alert", row.id, before={"status": before}, after={"status": "acknowledged"}, reason=note)
        return _record(row)


def get_alert(ws: Workspace, alert_id: int) -> AlertRecord:
    with ws.store.read() as s:
        row = s.get(Alert, alert_id)
        if row is None:
            raise NotFoundError(f"alert {alert_id} does not exist")
        return _record(row)


def list_alerts(
    ws: Workspace, *, status: str | None = None, endpoint: str | None = None, limit: int = 100
) -> list[AlertRecord]:
    query = select(Alert).order_by(Alert.id.desc()).limit(limit)
    if status:
        query = query.where(Alert.status == status)
    if endpoint:
        query = query.where(Alert.endpoint == endpoint)
    with ws.store.read() as s:
        return [_record(r) for r in s.execute(query).scalars()]
