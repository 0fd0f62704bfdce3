"""Test harness for loopml and for projects built on it.

``require_service`` skips a test when a service is absent, or fails it when
``LOOPML_REQUIRE_SERVICES=1`` (CI); ``postgres_schema`` gives a fresh
PostgreSQL schema (and its URL) for one test; ``temporary_workspace`` a
throw-away workspace; ``wait_for_predictions`` polls the prediction log for
rows another thread or process writes. pytest is imported only when a check
needs it.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "PG_DB", "PG_HOST", "PG_PORT", "PG_USER", "SERVICES", "pg_dsn", "postgres_schema",
    "ThreadServer", "require_service", "service_reachable", "temporary_workspace", "wait_for_predictions",
]

# Test infrastructure reads its own env (not loopml settings): where the test services are.
PG_HOST = os.environ.get("LOOPML_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("LOOPML_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("LOOPML_TEST_PG_USER", "postgres")
PG_DB = os.environ.get("LOOPML_TEST_PG_DB", "test")

SERVICES: dict[str, tuple[str, int]] = {
    "postgres": (PG_HOST, PG_PORT),
    "redis": ("127.0.0.1", 6379),
    "rabbitmq": ("127.0.0.1", 5672),
    "mqtt": ("127.0.0.1", 1883),
    "nats": ("127.0.0.1", 4222),
    "mariadb": ("127.0.0.1", 3306),
}


def service_reachable(name: str, timeout: float = 1.0) -> bool:
    host, port = SERVICES[name]
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str) -> None:
    """Skip the calling test unless ``name`` answers (fail instead under LOOPML_REQUIRE_SERVICES=1)."""
    import pytest

    if service_reachable(name):
        return
    host, port = SERVICES[name]
    reason = f"{name} is not reachable at {host}:{port}"
    if os.environ.get("LOOPML_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}, and LOOPML_REQUIRE_SERVICES=1 requires it")
    pytest.skip(reason)


def pg_dsn() -> str:
    """libpq connection string of the test database."""
    return f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={PG_DB}"


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema in the test database and a SQLAlchemy URL bound to it; dropped afterwards."""
    require_service("postgres")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield (f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{PG_DB}"
               f"?options=-csearch_path%3D{schema}")
    finally:
        with psycopg.connect(pg_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def temporary_workspace(**overrides: Any) -> Iterator[Any]:
    """A workspace in a temporary folder (SQLite unless ``db_url`` is given), removed afterwards."""
    from loopml.workspace import init_workspace

    with tempfile.TemporaryDirectory(prefix="loopml-") as tmp:
        ws = init_workspace(Path(tmp), **overrides)
        try:
            yield ws
        finally:
            ws.store.dispose()


def wait_for_predictions(ws_or_root: Any, endpoint: str, until: Callable[[int], bool], *,
                         timeout_s: float = 60.0) -> int:
    """Poll until ``until(rows logged for endpoint)`` holds (none yet counts 0); the last count.

    For rows written elsewhere, e.g. by a server's shadow worker process: they become countable as that
    process commits them, on its own cadence. Raises ``AssertionError`` after ``timeout_s``.
    """
    import time

    from loopml.kernel.exceptions import NotFoundError
    from loopml.predictions import count_predictions

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            logged = count_predictions(ws_or_root, endpoint)
        except NotFoundError:  # nothing logged under this name yet
            logged = 0
        if until(logged):
            return logged
        if time.monotonic() > deadline:
            raise AssertionError(f"{endpoint}: {logged} rows logged after {timeout_s:.0f} s, not what was awaited")
        time.sleep(0.05)


class ThreadServer:
    """A real uvicorn server for an ASGI app on a free loopback port, in a background thread.

    ``start()``/``stop()`` or ``with ThreadServer(app) as server: server.url``.
    ``lifespan="on"`` runs the app's startup/shutdown hooks (serving apps flush
    their prediction log there).
    """

    def __init__(self, app: Any, *, lifespan: str = "on", graceful_timeout_s: float = 5.0) -> None:
        import threading

        import uvicorn

        self.app = app
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan=lifespan,
                                timeout_graceful_shutdown=int(graceful_timeout_s))
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self, timeout_s: float = 20.0) -> ThreadServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()

    def __enter__(self) -> ThreadServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
