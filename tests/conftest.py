"""Shared fixtures: temporary workspaces on SQLite and PostgreSQL, and real services.

A test that needs a service (PostgreSQL, Redis, MQTT ...) calls
:func:`require_service`: it skips with the reason when the service is absent,
and fails instead when ``LOOPML_REQUIRE_SERVICES=1`` (as in CI).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from loopml.kernel.config import reset_settings
from loopml.testing import postgres_schema, require_service  # noqa: F401 - re-exported for tests


def postgres_url() -> Iterator[str]:
    """A fresh schema in the test database; dropped afterwards."""
    with postgres_schema() as url:
        yield url


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's LOOPML_* env or cached settings."""
    for key in list(os.environ):
        if key.startswith("LOOPML_") and key not in ("LOOPML_REQUIRE_SERVICES",) and not key.startswith("LOOPML_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("LOOPML_ACTOR", "tester")
    reset_settings()
    yield
    reset_settings()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each store test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'loopml.db'}"
    else:
        yield from postgres_url()


@pytest.fixture
def workspace(tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    """A fresh workspace on each metadata backend (local artifacts)."""
    from loopml.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws", actor="tester", db_url=db_url)
    yield ws
    ws.store.dispose()


@pytest.fixture
def sqlite_workspace(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh embedded workspace (SQLite), for tests that are not about the store."""
    from loopml.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws", actor="tester")
    yield ws
    ws.store.dispose()


class Receiver:
    """Collects what a real HTTP server was sent; answers ``status`` (settable)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if receiver.status < 300:
                    receiver.bodies.append(body)
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()
