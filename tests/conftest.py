"""Shared fixtures: temporary workspaces on SQLite and PostgreSQL, and real services.

A test that needs a service (PostgreSQL, Redis, MQTT ...) calls
:func:`require_service`: it skips with the reason when the service is absent,
and fails instead when ``LOOPML_REQUIRE_SERVICES=1`` (as in CI).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopml.kernel.config import reset_settings

PG_HOST = os.environ.get("LOOPML_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("LOOPML_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("LOOPML_TEST_PG_USER", "postgres")
PG_DB = os.environ.get("LOOPML_TEST_PG_DB", "test")

SERVICES = {
    "postgres": (PG_HOST, PG_PORT),
    "redis": ("127.0.0.1", 6379),
    "rabbitmq": ("127.0.0.1", 5672),
    "mqtt": ("127.0.0.1", 1883),
    "nats": ("127.0.0.1", 4222),
    "mariadb": ("127.0.0.1", 3306),
}


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str) -> None:
    """Skip (or fail under LOOPML_REQUIRE_SERVICES=1) unless ``name`` answers."""
    host, port = SERVICES[name]
    if _reachable(host, port):
        return
    reason = f"{name} is not reachable at {host}:{port}"
    if os.environ.get("LOOPML_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}, and LOOPML_REQUIRE_SERVICES=1 requires it")
    pytest.skip(reason)


def postgres_url() -> Iterator[str]:
    """A fresh schema in the test database; dropped afterwards."""
    require_service("postgres")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    dsn = f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={PG_DB}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield (
            f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{PG_DB}"
            f"?options=-csearch_path%3D{schema}"
        )
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


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
