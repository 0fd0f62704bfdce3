"""Alerts: incidents with deduplication and cooldown, an outbox, and notifiers."""

from loopml.monitor.alerts._incidents import (
    SEVERITIES,
    AlertRecord,
    ack_alert,
    get_alert,
    list_alerts,
    raise_alert,
    resolve_alerts,
)
from loopml.monitor.alerts._notifiers import (
    NOTIFIER_TYPES,
    EmailNotifier,
    Notifier,
    SlackNotifier,
    WebhookNotifier,
    notifier_from_config,
)
from loopml.monitor.alerts._outbox import DeliveryStats, NotificationDispatcher, deliver_pending

__all__ = [
    "NOTIFIER_TYPES",
    "SEVERITIES",
    "AlertRecord",
    "DeliveryStats",
    "EmailNotifier",
    "NotificationDispatcher",
    "Notifier",
    "SlackNotifier",
    "WebhookNotifier",
    "ack_alert",
    "deliver_pending",
    "get_alert",
    "list_alerts",
    "notifier_from_config",
    "raise_alert",
    "resolve_alerts",
]
