from __future__ import annotations

from datetime import timedelta

import pytest

from loopml.kernel.exceptions import NotifierError, ValidationError
from loopml.kernel.types import utcnow
from loopml.monitor.alerts import (
    EmailNotifier,
    SlackNotifier,
    WebhookNotifier,
    deliver_pending,
    notifier_from_config,
    raise_alert,
)

PAYLOAD = {"text": "drift on churn", "alert": {"id": 1, "severity": "warning", "rule": "data_drift", "endpoint": "churn"}}


def test_webhook_posts_the_alert_as_json(http_receiver) -> None:
    WebhookNotifier(http_receiver.url).send(PAYLOAD)
    assert http_receiver.bodies == [PAYLOAD]


def test_slack_webhook_gets_text_and_blocks(http_receiver) -> None:
    SlackNotifier(http_receiver.url).send(PAYLOAD)
    body = http_receiver.bodies[0]
    assert "WARNING" in body["text"] and "drift on churn" in body["text"]
    assert body["blocks"][0]["type"] == "section"


def test_email_reaches_a_real_smtp_server(smtp_server) -> None:
    EmailNotifier(to=["oncall@example.org"], host="127.0.0.1", port=smtp_server.port).send(PAYLOAD)
    [msg] = smtp_server.handler_obj.messages
    assert msg["To"] == "oncall@example.org"
    assert "drift on churn" in msg["Subject"]


def test_http_error_and_refused_connection_are_notifier_errors(http_receiver, dead_port) -> None:
    http_receiver.status = 500
    with pytest.raises(NotifierError, match="HTTP 500"):
        WebhookNotifier(http_receiver.url).send(PAYLOAD)
    with pytest.raises(NotifierError, match="webhook delivery failed"):
        WebhookNotifier(f"http://127.0.0.1:{dead_port}/x", timeout_s=1).send(PAYLOAD)
    with pytest.raises(NotifierError, match="email delivery failed"):
        EmailNotifier(to=["oncall@example.org"], host="127.0.0.1", port=dead_port, timeout_s=1).send(PAYLOAD)
    # A URL urllib cannot parse is a delivery failure too (a ValueError would kill the outbox thread).
    with pytest.raises(NotifierError, match="slack delivery failed: Invalid IPv6 URL"):
        SlackNotifier("http://[::1/hook").send(PAYLOAD)


def test_webhook_url_must_be_http() -> None:
    with pytest.raises(ValidationError, match="webhook notifier url 'hooks.example.org/x' must start with http://"):
        WebhookNotifier("hooks.example.org/x")
    with pytest.raises(ValidationError, match="slack notifier url 'ftp://h/x' must start with http://"):
        notifier_from_config({"type": "slack", "url": "ftp://h/x"})


def test_unknown_notifier_type_names_the_allowed_ones() -> None:
    with pytest.raises(ValidationError, match="allowed: webhook, slack, email"):
        notifier_from_config({"type": "sms"})


def test_outbox_retries_with_backoff_until_delivered(workspace, http_receiver) -> None:
    http_receiver.status = 503
    t0 = utcnow()
    raise_alert(workspace, rule="drift", endpoint="e", message="drift", now=t0,
                channels=[{"type": "webhook", "url": http_receiver.url, "timeout_s": 2}])
    first = deliver_pending(workspace, now=t0, backoff_base_s=30)
    assert (first.sent, first.retried) == (0, 1)
    # Not due again before the backoff has passed.
    assert deliver_pending(workspace, now=t0 + timedelta(seconds=10)).retried == 0
    http_receiver.status = 200
    later = deliver_pending(workspace, now=t0 + timedelta(seconds=31))
    assert later.sent == 1
    assert http_receiver.bodies[0]["alert"]["rule"] == "drift"


def test_outbox_gives_up_after_max_attempts(workspace, dead_port) -> None:
    t0 = utcnow()
    raise_alert(workspace, rule="x", message="m", now=t0,
                channels=[{"type": "webhook", "url": f"http://127.0.0.1:{dead_port}/", "timeout_s": 1}])
    stats = [deliver_pending(workspace, now=t0 + timedelta(hours=i), max_attempts=2) for i in range(3)]
    assert [s.gave_up for s in stats] == [0, 1, 0]


def test_a_channel_that_cannot_be_built_is_retried_not_fatal(workspace) -> None:
    t0 = utcnow()
    raise_alert(workspace, rule="x", message="m", now=t0, channels=[{"type": "webhook", "url": "hooks.example.org/x"}])
    stats = deliver_pending(workspace, now=t0, max_attempts=2)  # no exception escapes the outbox
    assert (stats.sent, stats.retried) == (0, 1)
    assert deliver_pending(workspace, now=t0 + timedelta(hours=1), max_attempts=2).gave_up == 1
