"""The metadata store's transactions and its error boundary."""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select

from loopml.kernel.exceptions import AlreadyExistsError, ConcurrencyError, LoopmlError, StoreError
from loopml.kernel.types import utcnow
from loopml.metadata._orm import AuditEvent, Dataset, ModelVersion
from loopml.metadata.store import translate_errors


def _dataset(name: str) -> Dataset:
    return Dataset(name=name, project="default", created_at=utcnow(), created_by="tester")


def _count(ws, model) -> int:  # type: ignore[no-untyped-def]
    with ws.store.read() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def test_a_write_commits_the_change_and_its_audit_event_together(workspace) -> None:  # type: ignore[no-untyped-def]
    with workspace.store.write("tester") as tx:
        tx.session.add(_dataset("weather"))
        tx.audit("dataset.create", "dataset", "weather")
    assert _count(workspace, Dataset) == 1
    assert _count(workspace, AuditEvent) == 1


def test_an_error_rolls_back_the_change_and_its_audit_event(workspace) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError, match="boom"):
        with workspace.store.write("tester") as tx:
            tx.session.add(_dataset("weather"))
            tx.audit("dataset.create", "dataset", "weather")
            tx.session.flush()
            raise RuntimeError("boom")
    assert _count(workspace, Dataset) == 0
    assert _count(workspace, AuditEvent) == 0


def test_a_unique_violation_becomes_already_exists(workspace) -> None:  # type: ignore[no-untyped-def]
    with workspace.store.write("tester") as tx:
        tx.session.add(_dataset("weather"))
    with pytest.raises(AlreadyExistsError, match="conflicts with an existing record") as info:
        with workspace.store.write("tester") as tx:
            tx.session.add(_dataset("weather"))
    assert not isinstance(info.value, sa_exc.SQLAlchemyError)
    assert isinstance(info.value.__cause__, sa_exc.IntegrityError)
    assert _count(workspace, Dataset) == 1


def test_no_sqlalchemy_error_escapes_a_write(workspace) -> None:  # type: ignore[no-untyped-def]
    # A row missing NOT NULL columns, and a query on a table that does not exist.
    with pytest.raises(LoopmlError) as info:
        with workspace.store.write("tester") as tx:
            tx.session.add(ModelVersion(model_id=999, version=1))
    assert not isinstance(info.value, sa_exc.SQLAlchemyError)
    with pytest.raises(StoreError):
        with workspace.store.write("tester") as tx:
            tx.session.execute(select(func.count()).select_from(Dataset).where(Dataset.name == "x")).scalar()
            tx.session.connection().exec_driver_sql("SELECT * FROM no_such_table")


def test_reads_translate_errors_too(workspace) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StoreError, match="no_such_table"):
        with workspace.store.read() as s:
            s.connection().exec_driver_sql("SELECT * FROM no_such_table")


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (sa_exc.IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed")), AlreadyExistsError),
        (sa_exc.OperationalError("INSERT", {}, Exception("database is locked")), ConcurrencyError),
        (sa_exc.OperationalError("INSERT", {}, Exception("deadlock detected")), ConcurrencyError),
        (sa_exc.OperationalError("SELECT", {}, Exception("could not connect")), StoreError),
        (sa_exc.ProgrammingError("SELECT", {}, Exception("syntax error")), StoreError),
        (sa_exc.DataError("INSERT", {}, Exception("value too long")), StoreError),
        (sa_exc.InterfaceError("SELECT", {}, Exception("closed")), StoreError),
        (sa_exc.NoResultFound("none"), StoreError),
        (sa_exc.ArgumentError("bad"), StoreError),
    ],
)
def test_every_sqlalchemy_error_maps_into_the_loopml_tree(raised: Exception, expected: type[Exception]) -> None:
    with pytest.raises(expected) as info:
        with translate_errors("test store"):
            raise raised
    assert isinstance(info.value, LoopmlError)
    assert "test store" in str(info.value)


def test_loopml_errors_pass_through_untouched() -> None:
    original = AlreadyExistsError("mine")
    with pytest.raises(AlreadyExistsError) as info:
        with translate_errors():
            raise original
    assert info.value is original


def test_a_broken_foreign_key_is_bad_input_not_a_duplicate(workspace) -> None:
    from loopml.kernel.exceptions import ValidationError
    from loopml.kernel.types import utcnow
    from loopml.metadata._orm import ModelVersion

    with pytest.raises(ValidationError, match="breaks a database rule"):
        with workspace.store.write("tester") as tx:
            tx.session.add(ModelVersion(model_id=999, version=1, artifact_digest="0" * 64,
                                        created_at=utcnow(), created_by="tester"))
            tx.session.flush()


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    with sqlite_workspace.store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
