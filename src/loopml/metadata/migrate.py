"""Run Alembic migrations programmatically (no alembic.ini needed by users)."""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Engine

__all__ = ["alembic_config", "head_revisions", "is_current", "upgrade"]

_MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


_REV_RE = re.compile(r"^(revision|down_revision)\s*=\s*(.+)$", re.MULTILINE)


@lru_cache(maxsize=1)
def head_revisions() -> frozenset[str]:
    """The head revisions, read from the migration files without importing Alembic."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_MIGRATIONS / "versions").glob("*.py"):
        found = dict(_REV_RE.findall(path.read_text()))
        if "revision" not in found:
            continue
        revisions.add(ast.literal_eval(found["revision"]))
        down = ast.literal_eval(found.get("down_revision", "None"))
        parents.update(down if isinstance(down, (tuple, list)) else ([down] if down else []))
    return frozenset(revisions - parents)


def is_current(engine: Engine) -> bool:
    """True when the database is at every head: the common case, checked with one SELECT."""
    from sqlalchemy import exc, text

    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except exc.SQLAlchemyError:
        return False  # no table yet: a new database
    return frozenset(rows) == head_revisions()


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Upgrade the schema, holding a lock so two processes do not migrate at once."""
    if revision == "heads" and is_current(engine):
        return
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            # Serialize concurrent first starts across processes.
            conn.exec_driver_sql("SELECT pg_advisory_lock(727274)")
        try:
            from alembic import command

            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()
        finally:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("SELECT pg_advisory_unlock(727274)")
                conn.commit()


def autogenerate(message: str, rev_id: str | None = None, head: str | None = None) -> None:
    """Write a new migration from the difference between the models and the latest revision.

    Development tool: ``python -m loopml.metadata.migrate "add alerts"``.
    """
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        from sqlalchemy import create_engine

        from alembic import command

        engine = create_engine(f"sqlite:///{tmp}/autogen.db")
        upgrade(engine)
        cfg = alembic_config()
        cfg.set_main_option("sqlalchemy.url", f"sqlite:///{tmp}/autogen.db")
        options = {"head": head, "splice": True} if head else {}
        command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id, **options)


if __name__ == "__main__":
    import sys

    autogenerate(sys.argv[1] if len(sys.argv) > 1 else "schema change")
