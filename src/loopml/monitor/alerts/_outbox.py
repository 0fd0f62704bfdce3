"""Deliver queued notifications with retries and exponential backoff.

The outbox rows are written with the alert, so a crash between "alert opened"
and "message sent" loses nothing. Delivery runs on its own thread
(:class:`NotificationDispatcher`): a slow or dead SMTP server never blocks
monitoring.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from loopml.kernel.exceptions import LoopmlError
from loopml.kernel.types import utcnow
from loopml.metadata._orm import Notification
from loopml.monitor.alerts._notifiers import notifier_from_config
from loopml.workspace import Workspace

__all__ = ["DeliveryStats", "NotificationDispatcher", "deliver_pending"]

log = logging.getLogger("loopml.alerts")


@dataclass(frozen=True)
class DeliveryStats:
    sent: int = 0
    retried: int = 0
    gave_up: int = 0


def deliver_pending(
    ws: Workspace, *, now: datetime | None = None, max_attempts: int = 6,
    backoff_base_s: float = 2.0, backoff_max_s: float = 600.0, limit: int = 50,
) -> DeliveryStats:
    """Try every due notification once; failures are rescheduled ``base * 2**attempt`` later."""
    now = now or utcnow()
    with ws.store.read() as s:
        due = s.execute(
            select(Notification.id, Notification.payload, Notification.attempts)
            .where(Notification.status == "pending", Notification.next_attempt_at <= now)
            .order_by(Notification.id).limit(limit)
        ).all()
    sent = retried = gave_up = 0
    for note_id, payload, attempts in due:
        error: str | None = None
        try:
            notifier_from_config(payload["config"]).send(payload["body"])
        except LoopmlError as exc:
            error = str(exc)
        with ws.store.write("loopml-notifier") as tx:
            row = tx.session.get(Notification, note_id)
            if row is None or row.status != "pending":
                continue
            row.attempts = attempts + 1
            if error is None:
                row.status, row.sent_at, row.last_error = "sent", utcnow(), None
                sent += 1
            elif row.attempts >= max_attempts:
                row.status, row.last_error = "failed", error
                gave_up += 1
                log.warning("notification %s gave up after %s attempts: %s", note_id, row.attempts, error)
            else:
                delay = min(backoff_max_s, backoff_base_s * 2 ** (row.attempts - 1))
                row.next_attempt_at = now + timedelta(seconds=delay)
                row.last_error = error
                retried += 1
    return DeliveryStats(sent=sent, retried=retried, gave_up=gave_up)


class NotificationDispatcher:
    """A daemon thread that drains the outbox every ``interval_s`` seconds."""

    def __init__(self, ws: Workspace, *, interval_s: float = 1.0, **options: float) -> None:
        self.ws = ws
        self.interval_s = interval_s
        self.options = options
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> NotificationDispatcher:
        self._thread = threading.Thread(target=self._loop, name="loopml-notifier", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                deliver_pending(self.ws, **self.options)  # type: ignore[arg-type]
            except Exception:  # the thread must outlive any one failure, or alerts silently stop
                log.exception("notification delivery failed; retrying next tick")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
