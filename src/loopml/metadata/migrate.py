"""Run Alembic migrations programmatically (no alembic.ini needed by users)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

__all__ = ["alembic_config", "upgrade"]

_MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Upgrade the schema, holding a lock so two processes do not migrate at once."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            # Serialize concurrent first starts across processes.
            conn.exec_driver_sql("SELECT pg_advisory_lock(727274)")
        try:
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

        engine = create_engine(f"sqlite:///{tmp}/autogen.db")
        upgrade(engine)
        cfg = alembic_config()
        cfg.set_main_option("sqlalchemy.url", f"sqlite:///{tmp}/autogen.db")
        options = {"head": head, "splice": True} if head else {}
        command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id, **options)


if __name__ == "__main__":
    import sys

    autogenerate(sys.argv[1] if len(sys.argv) > 1 else "schema change")
