"""Ingest services: source -> canonical Parquet in the CAS -> one dataset version row.

Order matters for "nothing half-written": the Parquet bytes go into the
content-addressed store first (an orphan object is harmless and deduped), and
only then is the version row written, in one transaction with its audit event
and lineage edge. A row therefore never exists without its artifact.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlalchemy import func, select

from loopml.ingest._canonical import PARQUET_MEDIA_TYPE, content_digest, normalise_table, table_schema, write_parquet
from loopml.ingest._contract_seed import contract_from_profile
from loopml.ingest._profile import profile_table
from loopml.ingest._records import DatasetRecord, DatasetVersionRecord, parse_ref
from loopml.ingest._sources import read_source
from loopml.kernel.exceptions import AlreadyExistsError, ConcurrencyError, DataError, NotFoundError, ValidationError
from loopml.kernel.types import check_name, utcnow
from loopml.metadata._orm import Dataset, DatasetVersion

if TYPE_CHECKING:
    import pandas as pd

    from loopml.workspace import Workspace

__all__ = ["get_dataset_version", "ingest", "list_datasets", "list_versions", "load_frame", "load_table"]

Progress = Callable[[str], None]
_WRITE_ATTEMPTS = 4


def _noop(_stage: str) -> None:
    return None


def _record(ds: Dataset, row: DatasetVersion, *, new: bool = True) -> DatasetVersionRecord:
    return DatasetVersionRecord(
        name=ds.name, version=row.version, digest=row.digest, artifact_digest=row.artifact_digest,
        n_rows=row.n_rows, n_columns=row.n_columns, schema=list(row.schema), profile=dict(row.profile),
        source=dict(row.source), created_at=row.created_at, created_by=row.created_by, new=new,
    )


def _find_by_digest(ws: Workspace, name: str, digest: str) -> DatasetVersionRecord | None:
    with ws.store.read() as session:
        hit = session.execute(
            select(Dataset, DatasetVersion)
            .join(DatasetVersion, DatasetVersion.dataset_id == Dataset.id)
            .where(Dataset.name == name, DatasetVersion.digest == digest)
        ).first()
        return _record(hit[0], hit[1], new=False) if hit else None


def ingest(
    ws: Workspace,
    source: Any,
    name: str,
    *,
    description: str | None = None,
    query: str | None = None,
    format: str | None = None,
    target: str | None = None,
    progress: Progress | None = None,
    source_name: str | None = None,
) -> DatasetVersionRecord:
    """Store ``source`` as a new version of dataset ``name`` (or return the identical one).

    Args:
        source: a CSV or Parquet path, a pandas DataFrame, a pyarrow Table, or a
            SQLAlchemy URL (with ``query=``).
        description: set on the dataset when it is created.
        query: the SQL query for a SQL source.
        format: ``"csv"`` or ``"parquet"`` when the extension does not say.
        target: the target column; recorded in the contract inferred at the
            first version (must be a column of the data).
        progress: called with a stage name (reading, hashing, profiling,
            writing, recording) for progress bars.
        source_name: what the record, the lineage graph and messages call a
            file source, in place of its path (``upload:NAME`` for a file the
            server received in a temporary folder).

    Raises:
        DataError: the source cannot be read (missing file, failing query).
        ValidationError: the data breaks a rule (ragged CSV, no rows, mixed
            types, unknown target); the message names the file or column.
    """
    step = progress or _noop
    check_name(name, "dataset")
    step("reading")
    src = read_source(source, query=query, format=format)
    source_info, node_id = src.info, src.node_id
    if source_name is not None:
        source_info, node_id = {**source_info, "path": source_name}, source_name
    what = str(source_info.get("path") or source_info.get("url") or f"the {source_info['kind']}")
    table = normalise_table(src.table, what)
    del src  # the normalised table replaces the raw one; free it before profiling
    if target is not None and target not in table.column_names:
        raise ValidationError(
            f"target column '{target}' is not in {what}; columns: {', '.join(table.column_names[:20])}",
            field="target",
            rule="missing_target",
        )
    step("hashing")
    digest = content_digest(table)
    existing = _find_by_digest(ws, name, digest)
    if existing is not None:
        return existing
    step("profiling")
    profile = profile_table(table)
    schema = table_schema(table)
    step("writing")
    info = _store_parquet(ws, table, digest, profile)
    n_rows, n_cols = table.num_rows, table.num_columns
    del table
    step("recording")
    for attempt in range(_WRITE_ATTEMPTS):
        try:
            return _write_version(
                ws, name, digest=digest, artifact_digest=info, n_rows=n_rows, n_cols=n_cols, schema=schema,
                profile=profile, source=source_info, node_id=node_id, description=description,
                target=target,
            )
        except (AlreadyExistsError, ConcurrencyError):
            # Another writer stored the same content or took the version number: look again.
            again = _find_by_digest(ws, name, digest)
            if again is not None:
                return again
            if attempt == _WRITE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _store_parquet(ws: Workspace, table: pa.Table, digest: str, profile: dict[str, Any]) -> str:
    scratch = ws.dir / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="ingest-", suffix=".parquet", dir=scratch)
    os.close(fd)
    try:
        write_parquet(table, Path(tmp), digest, profile)
        meta = {"kind": "dataset", "content_digest": digest, "rows": table.num_rows, "columns": table.num_columns}
        return ws.artifacts.put_file(tmp, media_type=PARQUET_MEDIA_TYPE, meta=meta).digest
    finally:
        Path(tmp).unlink(missing_ok=True)


def _write_version(
    ws: Workspace, name: str, *, digest: str, artifact_digest: str, n_rows: int, n_cols: int,
    schema: list[dict[str, Any]], profile: dict[str, Any], source: dict[str, Any], node_id: str,
    description: str | None, target: str | None,
) -> DatasetVersionRecord:
    now = utcnow()
    with ws.store.write(ws.actor) as tx:
        s = tx.session
        ds = s.execute(select(Dataset).where(Dataset.name == name).with_for_update()).scalar_one_or_none()
        if ds is None:
            ds = Dataset(name=name, project="default", description=description, contract=None,
                         created_at=now, created_by=ws.actor)
            s.add(ds)
            s.flush()
        inferred = None
        if ds.contract is None:
            inferred = contract_from_profile(profile, target=target)
            ds.contract = inferred
        latest = s.execute(select(func.max(DatasetVersion.version)).where(DatasetVersion.dataset_id == ds.id)).scalar()
        row = DatasetVersion(
            dataset_id=ds.id, version=(latest or 0) + 1, digest=digest, artifact_digest=artifact_digest,
            n_rows=n_rows, n_columns=n_cols, schema=schema, profile=profile, source=source,
            created_at=now, created_by=ws.actor,
        )
        s.add(row)
        s.flush()
        ref = f"{name}@{row.version}"
        tx.audit("dataset.ingest", "dataset_version", ref, after={
            "name": name, "version": row.version, "digest": digest, "artifact_digest": artifact_digest,
            "n_rows": n_rows, "n_columns": n_cols, "source": source,
        })
        if inferred is not None:
            tx.audit("dataset.contract", "dataset", name, before=None, after=inferred,
                     reason=f"inferred from {ref} at ingestion")
        tx.link(("source", node_id), "ingested_as", ("dataset_version", ref))
        return _record(ds, row)


def get_dataset_version(ws: Workspace, ref: str) -> DatasetVersionRecord:
    """The version ``NAME@V`` (or the latest for ``NAME``).

    Raises:
        NotFoundError: no such dataset or version (the message lists what exists).
    """
    name, version = parse_ref(ref)
    with ws.store.read() as session:
        ds = session.execute(select(Dataset).where(Dataset.name == name)).scalar_one_or_none()
        if ds is None:
            raise NotFoundError(f"dataset '{name}' not found; ingest it with: loopml data ingest PATH --name {name}")
        q = select(DatasetVersion).where(DatasetVersion.dataset_id == ds.id)
        q = q.where(DatasetVersion.version == version) if version else q.order_by(DatasetVersion.version.desc()).limit(1)
        row = session.execute(q).scalar_one_or_none()
        if row is None:
            known = session.execute(
                select(DatasetVersion.version).where(DatasetVersion.dataset_id == ds.id).order_by(DatasetVersion.version)
            ).scalars().all()
            listed = ", ".join(str(v) for v in known) or "none"
            raise NotFoundError(f"dataset '{name}' has no version {version}; versions: {listed}")
        return _record(ds, row, new=False)


def list_datasets(ws: Workspace) -> list[DatasetRecord]:
    """Every dataset, by name, with its version count and latest version."""
    with ws.store.read() as session:
        counts = (
            select(DatasetVersion.dataset_id, func.count().label("n"), func.max(DatasetVersion.version).label("latest"))
            .group_by(DatasetVersion.dataset_id)
            .subquery()
        )
        rows = session.execute(
            select(Dataset, counts.c.n, counts.c.latest)
            .outerjoin(counts, counts.c.dataset_id == Dataset.id)
            .order_by(Dataset.name)
        ).all()
        return [
            DatasetRecord(
                name=ds.name, description=ds.description, project=ds.project, n_versions=int(n or 0),
                latest_version=latest, has_contract=ds.contract is not None, created_at=ds.created_at,
                created_by=ds.created_by,
            )
            for ds, n, latest in rows
        ]


def list_versions(ws: Workspace, name: str) -> list[DatasetVersionRecord]:
    """Every version of ``name``, oldest first."""
    check_name(name, "dataset")
    with ws.store.read() as session:
        ds = session.execute(select(Dataset).where(Dataset.name == name)).scalar_one_or_none()
        if ds is None:
            raise NotFoundError(f"dataset '{name}' not found")
        rows = session.execute(
            select(DatasetVersion).where(DatasetVersion.dataset_id == ds.id).order_by(DatasetVersion.version)
        ).scalars().all()
        return [_record(ds, r, new=False) for r in rows]


def _resolve(ws: Workspace, ref_or_record: str | DatasetVersionRecord) -> DatasetVersionRecord:
    if isinstance(ref_or_record, DatasetVersionRecord):
        return ref_or_record
    return get_dataset_version(ws, ref_or_record)


def load_table(
    ws: Workspace, ref_or_record: str | DatasetVersionRecord, columns: list[str] | None = None
) -> pa.Table:
    """The version's rows as an Arrow table, read from the CAS with its hash verified."""
    import pyarrow.parquet as pq

    rec = _resolve(ws, ref_or_record)
    if columns is not None:
        unknown = [c for c in columns if c not in rec.columns]
        if unknown:
            raise ValidationError(
                f"dataset {rec.ref} has no column '{unknown[0]}'; columns: {', '.join(rec.columns[:30])}",
                field=unknown[0],
                rule="unknown_column",
            )
    with ws.artifacts.open(rec.artifact_digest) as f:
        try:
            return pq.read_table(_Payload(f), columns=columns).replace_schema_metadata(None)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"dataset {rec.ref}: its Parquet artifact {rec.artifact_digest[:12]} is unreadable: {exc}") from exc


class _Payload(io.RawIOBase):
    """The CAS payload as a seekable file of its own: Parquet seeks from offset 0."""

    def __init__(self, f: Any) -> None:
        self._f = f
        self._start = f.tell()
        f.seek(0, io.SEEK_END)
        self._size = f.tell() - self._start
        f.seek(self._start)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._f.tell() - self._start

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._f.seek(self._start + pos)
        elif whence == io.SEEK_CUR:
            self._f.seek(pos, io.SEEK_CUR)
        else:
            self._f.seek(self._start + self._size + pos)
        return self.tell()

    def read(self, size: int = -1) -> bytes:
        return self._f.read(size)

    def readinto(self, b: Any) -> int:
        data = self._f.read(len(b))
        b[: len(data)] = data
        return len(data)


def load_frame(
    ws: Workspace, ref_or_record: str | DatasetVersionRecord, columns: list[str] | None = None
) -> pd.DataFrame:
    """The version's rows as a pandas DataFrame (``columns`` to read only some)."""
    return load_table(ws, ref_or_record, columns).to_pandas()
