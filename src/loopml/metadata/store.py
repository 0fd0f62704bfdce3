"""The metadata store: one SQLAlchemy engine, migrated by Alembic, written in transactions.

Invariants:
- every write is one transaction (:meth:`MetadataStore.write`), and the audit
  event for a change is appended in that same transaction;
- on SQLite, write transactions start with ``BEGIN IMMEDIATE`` so concurrent
  writers queue on the busy timeout instead of failing mid-transaction;
- no SQLAlchemy exception leaves this package: :func:`translate_errors` maps
  them to the loopml tree.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, exc as sa_exc, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from loopml.kernel.exceptions import (
    AlreadyExistsError,
    ConcurrencyError,
    ConfigError,
    LoopmlError,
    StoreError,
    ValidationError,
)

__all__ = ["MetadataStore", "Tx", "dialect_insert", "translate_errors"]

_SQLITE_BUSY_TIMEOUT_S = 30.0


def dialect_insert(dialect: str) -> Any:
    """The ``insert`` construct with ``ON CONFLICT`` support for ``dialect`` (``postgresql`` or SQLite).

    Imported on first use: the PostgreSQL dialect (with asyncio and ssl behind it)
    costs a SQLite-only process, such as a cached CLI run, about 40 ms to import.
    """
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


@contextmanager
def translate_errors(what: str = "metadata store") -> Iterator[None]:
    """Map SQLAlchemy / DBAPI errors raised inside the block to loopml errors."""
    try:
        yield
    except LoopmlError:
        raise
    except sa_exc.IntegrityError as exc:
        text = _short(exc).lower()
        if "unique" in text or "duplicate" in text:
            raise AlreadyExistsError(f"{what}: conflicts with an existing record ({_short(exc)})") from exc
        # Foreign-key, NOT NULL and CHECK violations are bad input, not duplicates.
        raise ValidationError(f"{what}: the change breaks a database rule ({_short(exc)})", rule="integrity") from exc
    except sa_exc.OperationalError as exc:
        text = str(exc.orig) if exc.orig is not None else str(exc)
        if "locked" in text or "deadlock" in text or "could not serialize" in text:
            raise ConcurrencyError(f"{what}: concurrent write conflict ({_short(exc)})") from exc
        raise StoreError(f"{what}: database error ({_short(exc)})") from exc
    except sa_exc.SQLAlchemyError as exc:
        raise StoreError(f"{what}: {_short(exc)}") from exc


def _short(exc: sa_exc.SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    return (str(orig) if orig is not None else str(exc)).splitlines()[0][:300]


@dataclass
class Tx:
    """A write transaction: an ORM session plus the actor, for audit events."""

    session: Session
    actor: str
    store: MetadataStore
    _events: list[dict[str, Any]] = field(default_factory=list)

    def audit(
        self,
        action: str,
        object_type: str,
        object_id: str | int,
        *,
        before: Any = None,
        after: Any = None,
        reason: str | None = None,
    ) -> None:
        """Append a hash-chained audit event in this transaction."""
        from loopml.metadata.audit import append_event

        append_event(
            self.session,
            actor=self.actor,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            before=before,
            after=after,
            reason=reason,
        )

    def link(self, src: tuple[str, str | int], relation: str, dst: tuple[str, str | int]) -> None:
        """Add a lineage edge ``src --relation--> dst`` (idempotent)."""
        from loopml.metadata.lineage import add_edge

        add_edge(self.session, src, relation, dst)


class MetadataStore:
    """Engine + migrations + transactions for one metadata store URL."""

    def __init__(self, url: str, *, migrate: bool = True, echo: bool = False) -> None:
        self.url = url
        self.engine = _make_engine(url, echo=echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._local = threading.local()
        if migrate:
            self.migrate()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        """Bring the schema to the latest Alembic revision (idempotent)."""
        from loopml.metadata.migrate import upgrade

        upgrade(self.engine)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session; nothing is committed."""
        with translate_errors(), self._sessions() as session:
            yield session

    @contextmanager
    def write(self, actor: str) -> Iterator[Tx]:
        """One write transaction; commits on success, rolls back on any error."""
        with translate_errors():
            session = self._sessions()
            try:
                session.connection(execution_options={"loopml_write": True})
                tx = Tx(session=session, actor=actor, store=self)
                yield tx
                session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()

    def table_names(self) -> list[str]:
        return inspect(self.engine).get_table_names()

    def dispose(self) -> None:
        self.engine.dispose()


def _make_engine(url: str, *, echo: bool) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url, echo=echo)
    if url.startswith("postgresql://"):
        # psycopg 3 is the maintained driver; plain postgresql:// would ask for psycopg2.
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    try:
        return create_engine(url, echo=echo, pool_pre_ping=True, future=True)
    except ModuleNotFoundError as exc:
        from loopml.kernel.exceptions import MissingExtraError

        raise MissingExtraError(exc.name or "driver", "postgres", f"metadata store {url.split(':')[0]}") from exc
    except sa_exc.ArgumentError as exc:
        raise ConfigError(f"metadata store URL {url!r} is invalid: {exc}") from exc


def _sqlite_engine(url: str, *, echo: bool) -> Engine:
    path = url.split("sqlite:///", 1)[-1] if "sqlite:///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        echo=echo,
        connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so BEGIN IMMEDIATE is ours to emit.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(_SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front: no deadlock upgrading a read lock later.
        if conn.get_execution_options().get("loopml_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine
