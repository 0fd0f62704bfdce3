"""Who is looking at the UI, and may they: the server's identities and roles, read from a cookie.

Embedded mode (``auth=False``, loopback only): the workspace's OS user, allowed
everything, exactly as the REST server. With auth on, a browser cannot send a
bearer header, so ``/ui/login`` stores the same API token in an HttpOnly,
SameSite=Strict cookie; every request authenticates it and checks the page's
action with :func:`loopml.governance.identity.authorize`. Forms carry a CSRF
token bound to the caller (an HMAC under a per-process secret), so another
site cannot make the browser POST an action to a loopback UI.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from loopml.governance.identity import Identity, authenticate, authorize, local_identity
from loopml.workspace import Workspace

__all__ = ["COOKIE", "UiCtx", "UiState", "identify"]

COOKIE = "loopml_token"


@dataclass(frozen=True)
class UiState:
    """What the UI app was created with (``app.state.ui``)."""

    ws: Workspace
    auth: bool
    project: str
    secret: bytes

    @classmethod
    def create(cls, ws: Workspace, *, auth: bool, project: str) -> UiState:
        return cls(ws=ws, auth=auth, project=project, secret=secrets.token_bytes(32))


@dataclass(frozen=True)
class UiCtx:
    """A request's context: the workspace acting as the caller, the caller, the project."""

    ws: Workspace
    identity: Identity
    project: str
    csrf: str

    def can(self, action: str) -> bool:
        """Whether the caller's roles hold ``action`` (buttons are shown only then)."""
        return self.identity.can(action, self.project)

    def require(self, action: str, target: dict[str, Any] | None = None) -> None:
        """Raise ``PermissionDenied`` unless the caller may do ``action``."""
        authorize(self.identity, action, self.project, target=target)


def _csrf(state: UiState, identity: Identity) -> str:
    return hmac.new(state.secret, identity.name.encode(), hashlib.sha256).hexdigest()[:32]


def identify(request: Request) -> UiCtx:
    """The caller of ``request`` (raises ``NotAuthenticated`` without a valid token when auth is on)."""
    state: UiState = request.app.state.ui
    if not state.auth:
        identity = local_identity(state.ws.actor)
        ws = state.ws
    else:
        token = request.cookies.get(COOKIE)
        header = request.headers.get("authorization", "")
        if not token and header.lower().startswith("bearer "):
            token = header[7:].strip()
        identity = authenticate(state.ws, token or None)
        ws = state.ws.as_actor(identity.name)
    return UiCtx(ws=ws, identity=identity, project=state.project, csrf=_csrf(state, identity))


def check_csrf(ctx: UiCtx, submitted: str | None) -> bool:
    """True when a form's ``csrf`` field is the caller's token."""
    return bool(submitted) and hmac.compare_digest(ctx.csrf, submitted or "")
