"""Fixtures for the control-plane tests: a real uvicorn server on a free loopback port, a user and a
token per role, and small seeds (runs, a model, an endpoint, a trigger, an alert)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from loopml.governance.identity import ROLES, create_token, create_user
from loopml.testing import ThreadServer as _ThreadServer

API = "/api/v1"


class ThreadServer(_ThreadServer):
    """The control plane has no lifespan hooks: run it without them."""

    def __init__(self, app: Any) -> None:
        super().__init__(app, lifespan="off")


@dataclass
class Live:
    """A running control plane: its URL, workspace, and a token per role."""

    url: str
    ws: Any
    tokens: dict[str, str] = field(default_factory=dict)
    _clients: list[httpx.Client] = field(default_factory=list)

    def client(self, role: str | None = "admin", *, token: str | None = None) -> httpx.Client:
        """An httpx client on ``/api/v1`` acting as the user holding ``role`` (``None``: no token)."""
        secret = token if token is not None else (self.tokens[role] if role else None)
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        client = httpx.Client(base_url=self.url + API, headers=headers, timeout=30)
        self._clients.append(client)
        return client


@pytest.fixture
def start_server() -> Iterator[Callable[..., ThreadServer]]:
    """``start_server(app)`` runs it for the test's duration."""
    started: list[ThreadServer] = []

    def start(app: Any) -> ThreadServer:
        server = ThreadServer(app).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


def add_role_users(ws: Any, project: str = "default") -> dict[str, str]:
    """One user per role (named after it) with a token; returns role → token secret."""
    tokens = {}
    for role in ROLES:
        create_user(ws, role, roles={project: role})
        tokens[role] = create_token(ws, role).secret
    return tokens


def _live(ws: Any, start_server: Callable[..., ThreadServer]) -> Iterator[Live]:
    from loopml.server import create_app

    tokens = add_role_users(ws)
    server = start_server(create_app(ws, auth=True))
    state = Live(url=server.url, ws=ws, tokens=tokens)
    yield state
    for client in state._clients:
        client.close()


@pytest.fixture
def live(workspace: Any, start_server: Callable[..., ThreadServer]) -> Iterator[Live]:
    """The control plane with auth on, over the ``workspace`` fixture (SQLite and PostgreSQL)."""
    yield from _live(workspace, start_server)


@pytest.fixture
def live_sqlite(sqlite_workspace: Any, start_server: Callable[..., ThreadServer]) -> Iterator[Live]:
    """The same on SQLite only, for HTTP behaviour that does not depend on the store."""
    yield from _live(sqlite_workspace, start_server)


# ---- seeds -----------------------------------------------------------------


def seed_runs(ws: Any, n: int = 3) -> list[str]:
    """``n`` finished runs in experiment ``exp`` with ``acc`` = 0.1, 0.2, ... and a param."""
    from loopml.tracking import start_run

    ids = []
    for i in range(n):
        with start_run(ws, f"run{i}", experiment="exp") as run:
            run.log_params({"model": "lr" if i % 2 else "hgb"})
            for step in range(3):
                run.log_metric("acc", round(0.1 * (i + 1) + 0.01 * step, 4), step=step)
            ids.append(run.id)
    return ids


def seed_model(ws: Any, versions: int = 2) -> list[int]:
    """Model ``churn`` with ``versions`` versions that passed their gates."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from loopml.register import register_model

    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    model = LogisticRegression().fit(x, (x.a > 0).astype(int))
    return [register_model(ws, "churn", model, gates_passed=True).version for _ in range(versions)]


def seed_trigger(ws: Any, name: str = "nightly") -> None:
    from loopml.trigger import add_trigger

    add_trigger(ws, name, "manual", recipe={"name": "churn"})


def seed_alert(ws: Any) -> int:
    from loopml.monitor.alerts import raise_alert

    return raise_alert(ws, rule="drift", message="feature a drifted", endpoint="churn-api").id


CSV = b"a,b,label\n1.0,x,0\n2.5,y,1\n3.0,x,0\n4.5,y,1\n"
