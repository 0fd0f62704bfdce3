"""Who is calling and may they: the dependency every route declares with its action.

    @router.get("/runs")
    def list_runs(ctx: Ctx = Depends(allow("run.read"))): ...

With auth on, the bearer token is authenticated on each request and the
identity's roles in the server's project must hold the action. With auth off
(embedded single-user mode, loopback only) the caller is the workspace's OS
user, allowed everything. Either way the route receives a workspace acting as
that identity, so every audit entry names the real caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from loopml.governance._roles import ACTIONS
from loopml.governance.identity import (
    Identity,
    NotAuthenticated,
    authenticate,
    authorize,
    local_identity,
)
from loopml.workspace import Workspace

__all__ = ["Ctx", "ServerState", "allow", "authenticated"]

_bearer = HTTPBearer(auto_error=False, description="An API token: lml_<id>_<secret> (loopml tokens create)")

#: Turns the request and the identity into the action it needs (e.g. protected aliases).
ActionFor = Callable[[Request, Identity, Workspace], str]


@dataclass(frozen=True)
class ServerState:
    """What the app was created with; kept on ``app.state.loopml``."""

    ws: Workspace
    auth: bool
    project: str


@dataclass(frozen=True)
class Ctx:
    """A request's context: the workspace acting as the caller, the caller, the project."""

    ws: Workspace
    identity: Identity
    project: str


def _state(request: Request) -> ServerState:
    return request.app.state.loopml  # type: ignore[no-any-return]


def _identify(request: Request, credentials: HTTPAuthorizationCredentials | None) -> tuple[ServerState, Identity]:
    state = _state(request)
    if not state.auth:
        return state, local_identity(state.ws.actor)
    header = request.headers.get("authorization")
    if credentials is None and header:
        raise NotAuthenticated("the Authorization header must read 'Bearer lml_<id>_<secret>'")
    return state, authenticate(state.ws, credentials.credentials if credentials else None)


def _ctx(state: ServerState, identity: Identity) -> Ctx:
    ws = state.ws if identity.local else state.ws.as_actor(identity.name)
    return Ctx(ws=ws, identity=identity, project=state.project)


def authenticated() -> Callable[..., Ctx]:
    """Any valid identity, no particular permission (``/whoami``)."""

    def dependency(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Ctx:
        state, identity = _identify(request, credentials)
        return _ctx(state, identity)

    return dependency


def allow(action: str | ActionFor) -> Callable[..., Ctx]:
    """A dependency that authenticates the caller and checks ``action`` (or the action it computes)."""
    if isinstance(action, str) and action not in ACTIONS:
        raise ValueError(f"route declares unknown action {action!r}")

    def dependency(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Ctx:
        state, identity = _identify(request, credentials)
        needed = action if isinstance(action, str) else action(request, identity, state.ws)
        target: dict[str, Any] = dict(request.path_params)
        authorize(identity, needed, state.project, target=target)
        return _ctx(state, identity)

    dependency.action = action  # type: ignore[attr-defined]  # read by the route-table test
    return dependency
