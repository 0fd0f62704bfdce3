"""Notifiers: a generic JSON webhook, a Slack-compatible webhook, e-mail over SMTP.

Public ``send(payload)`` is the policy (timeouts, error translation); each
notifier implements the protected ``_send`` mechanism. All are stdlib-only,
so alerting works on a bare install.
"""

from __future__ import annotations

import http.client
import json
import smtplib
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from email.message import EmailMessage
from typing import Any

from loopml.kernel.exceptions import LoopmlError, NotifierError, ValidationError

__all__ = ["EmailNotifier", "Notifier", "SlackNotifier", "WebhookNotifier", "notifier_from_config", "NOTIFIER_TYPES"]


class Notifier(ABC):
    """Delivers one alert payload; raises :class:`NotifierError` on failure."""

    kind: str = "notifier"

    def __init__(self, *, timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s

    def send(self, payload: dict[str, Any]) -> None:
        """Deliver ``payload``; every failure is a :class:`NotifierError` (the outbox retries those).

        Raises:
            NotifierError: the receiver refused, timed out, answered an error,
                or the channel config cannot be used (e.g. a malformed URL).
        """
        try:
            self._send(payload)
        except LoopmlError:
            raise
        # ValueError: a URL urllib cannot parse; HTTPException: a broken HTTP answer.
        except (OSError, ValueError, http.client.HTTPException, smtplib.SMTPException, urllib.error.URLError) as exc:
            raise NotifierError(f"{self.kind} delivery failed: {exc}") from exc

    @abstractmethod
    def _send(self, payload: dict[str, Any]) -> None: ...


def _post_json(url: str, body: dict[str, Any], headers: dict[str, str], timeout: float) -> None:
    data = json.dumps(body, default=str).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - URL is operator config
            status = response.status
    except urllib.error.HTTPError as exc:
        raise NotifierError(f"webhook answered HTTP {exc.code}") from exc
    if status >= 300:
        raise NotifierError(f"webhook answered HTTP {status}")


class WebhookNotifier(Notifier):
    """POSTs the alert as JSON: ``{"alert": {...}, "text": "..."}``."""

    kind = "webhook"

    def __init__(self, url: str, *, headers: dict[str, str] | None = None, timeout_s: float = 5.0) -> None:
        super().__init__(timeout_s=timeout_s)
        if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
            raise ValidationError(f"{self.kind} notifier url {url!r} must start with http:// or https://",
                                  field="url", rule="url")
        self.url = url
        self.headers = headers or {}

    def _send(self, payload: dict[str, Any]) -> None:
        _post_json(self.url, payload, self.headers, self.timeout_s)


class SlackNotifier(WebhookNotifier):
    """Slack incoming-webhook format (also accepted by Mattermost, Rocket.Chat, Teams' Slack shim)."""

    kind = "slack"

    def _send(self, payload: dict[str, Any]) -> None:
        alert = payload.get("alert", {})
        icon = {"critical": ":red_circle:", "warning": ":warning:"}.get(alert.get("severity"), ":information_source:")
        text = f"{icon} *{alert.get('severity', '').upper()}* {payload.get('text', '')}"
        body = {
            "text": text,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": f"alert #{alert.get('id')} · endpoint {alert.get('endpoint')} · rule {alert.get('rule')}"}]},
            ],
        }
        _post_json(self.url, body, self.headers, self.timeout_s)


class EmailNotifier(Notifier):
    """Plain-text e-mail over SMTP (optionally STARTTLS and login)."""

    kind = "email"

    def __init__(
        self, *, to: list[str], sender: str = "loopml@localhost", host: str = "localhost", port: int = 25,
        username: str | None = None, password: str | None = None, starttls: bool = False, timeout_s: float = 10.0,
    ) -> None:
        super().__init__(timeout_s=timeout_s)
        if not to:
            raise ValidationError("email notifier needs at least one recipient in 'to'", field="to", rule="required")
        self.to, self.sender, self.host, self.port = list(to), sender, host, port
        self.username, self.password, self.starttls = username, password, starttls

    def _send(self, payload: dict[str, Any]) -> None:
        alert = payload.get("alert", {})
        msg = EmailMessage()
        msg["Subject"] = f"[loopml {alert.get('severity', 'alert')}] {payload.get('text', '')}"[:200]
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg.set_content(payload.get("text", "") + "\n\n" + json.dumps(alert, indent=2, default=str))
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(msg)


NOTIFIER_TYPES = ("webhook", "slack", "email")


def notifier_from_config(config: dict[str, Any]) -> Notifier:
    """Build a notifier from its channel config (``{"type": "slack", "url": ...}``)."""
    kind = config.get("type")
    options = {k: v for k, v in config.items() if k not in ("type", "name")}
    try:
        if kind == "webhook":
            return WebhookNotifier(**options)
        if kind == "slack":
            return SlackNotifier(**options)
        if kind == "email":
            return EmailNotifier(**options)
    except TypeError as exc:
        raise ValidationError(f"notifier {kind!r}: {exc}", field="notify", rule="options") from exc
    raise ValidationError(
        f"notifier type {kind!r} is unknown; allowed: {', '.join(NOTIFIER_TYPES)}", field="notify.type", rule="enum"
    )
