"""ASGI guards in front of every route: request body size, and loopback-only in embedded mode.

Both are plain ASGI middleware (no framework version needed): a declared
``Content-Length`` over the limit is refused before the app runs; a streamed
body is counted as it arrives and cut off at the limit.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimitMiddleware", "LoopbackOnlyMiddleware", "is_loopback"]


def is_loopback(host: str | None) -> bool:
    """True for ``127.0.0.0/8``, ``::1`` and ``localhost`` (the only embedded-mode binds)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def _send_json(send: Send, status: int, body: dict[str, object]) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes the limit (FastAPI re-raises HTTP errors)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")


class BodyLimitMiddleware:
    """Refuse request bodies over ``limit_for(path)`` bytes with a 413 JSON error."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str, str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("method", "GET"), scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                await _send_json(send, 400, {"error": "Content-Length is not a number", "field": "content-length",
                                             "rule": "format", "type": "HTTPError"})
                return
            if too_big:
                await _send_json(send, 413, {"error": f"request body of {int(declared)} bytes exceeds the limit "
                                             f"of {limit} bytes", "field": None, "rule": "max_body_bytes",
                                             "type": "HTTPError"})
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


class LoopbackOnlyMiddleware:
    """Embedded single-user mode trusts the machine: refuse any client not on loopback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            if client is not None and not is_loopback(client[0]):
                await _send_json(send, 403, {"error": "this loopml server runs without authentication and only "
                                             "answers loopback clients", "field": None, "rule": "loopback",
                                             "type": "PermissionDenied"})
                return
        await self.app(scope, receive, send)
