"""The Alembic migrations build exactly the schema the ORM models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from loopml.metadata._orm import Base
from loopml.metadata.migrate import alembic_config


def test_migrations_produce_the_models_schema(workspace) -> None:  # type: ignore[no-untyped-def]
    with workspace.store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "target_metadata": Base.metadata})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"models and migrations disagree; write a migration: {diff}"


def test_every_revision_is_applied(workspace) -> None:  # type: ignore[no-untyped-def]
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    with workspace.store.engine.connect() as conn:
        assert set(MigrationContext.configure(conn).get_current_heads()) == heads


def test_migrating_twice_is_a_no_op(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    before = sorted(sqlite_workspace.store.table_names())
    sqlite_workspace.store.migrate()
    assert sorted(sqlite_workspace.store.table_names()) == before


def test_revision_ids_are_unique_and_all_descend_from_the_initial_schema() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    revisions = list(script.walk_revisions())
    ids = [r.revision for r in revisions]
    assert len(ids) == len(set(ids))
    assert [r.revision for r in revisions if r.down_revision is None] == ["0001"]
