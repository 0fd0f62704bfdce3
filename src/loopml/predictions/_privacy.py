"""Data protection for the prediction log: retention per endpoint and erasure of one subject's rows.

    set_retention(ws, "churn-api", days=30)
    apply_retention(ws)                                  # drops partitions older than 30 days
    erase_subject(ws, "f_customer_id", "C-1042")         # the right to erasure, every endpoint

Invariants:

- Retention deletes whole partitions: prediction hour folders that ended
  before ``now - days``, feedback day folders received before it. Audited as
  ``privacy.retention`` (the policy) and ``privacy.retention_apply`` (files and
  rows deleted per endpoint).
- Erasure rewrites every committed Parquet file holding a matching row
  without those rows: the new file is written beside it, fsynced, then
  renamed over it (``os.replace``), so a reader sees the old file or the new
  one, never half of either; a file left empty is deleted. Feedback rows of
  the erased request ids go too. Audited as ``privacy.erase`` with counts and
  the sha256 of the value: never the value, never the erased rows.
- Rows still in the write-ahead journal (the last seconds of a live server)
  are not reached: flush or close the log first. Run it while no compaction
  of the same endpoint runs (a compaction that read a file before the rewrite
  would write the rows back).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import select

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.kernel.types import check_name, utcnow
from loopml.metadata._orm import RetentionPolicy
from loopml.predictions._files import endpoint_dir, resolve_root
from loopml.predictions._query import list_endpoints

if TYPE_CHECKING:
    from loopml.workspace import Workspace

__all__ = [
    "ErasureResult",
    "RetentionPolicyRecord",
    "RetentionResult",
    "apply_retention",
    "erase_subject",
    "list_retention",
    "set_retention",
    "subject_hash",
]

MAX_DAYS = 36_500


@dataclass(frozen=True)
class RetentionPolicyRecord:
    """Rows of ``endpoint`` are kept ``days`` days."""

    endpoint: str
    days: int
    updated_at: datetime
    updated_by: str
    last_applied_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "days": self.days, "updated_at": self.updated_at.isoformat(),
                "updated_by": self.updated_by,
                "last_applied_at": self.last_applied_at.isoformat() if self.last_applied_at else None}


@dataclass(frozen=True)
class RetentionResult:
    """What one application of an endpoint's policy deleted."""

    endpoint: str
    days: int
    cutoff: str
    prediction_files: int
    prediction_rows: int
    feedback_files: int
    feedback_rows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ErasureResult:
    """What :func:`erase_subject` removed (counts only) and the hash it audited."""

    column: str
    value_sha256: str
    endpoints: tuple[str, ...]
    prediction_rows: int
    feedback_rows: int
    files_rewritten: int
    files_deleted: int
    per_endpoint: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "value_sha256": self.value_sha256, "endpoints": list(self.endpoints),
                "prediction_rows": self.prediction_rows, "feedback_rows": self.feedback_rows,
                "files_rewritten": self.files_rewritten, "files_deleted": self.files_deleted,
                "per_endpoint": {k: dict(v) for k, v in self.per_endpoint.items()}}


def subject_hash(value: Any) -> str:
    """sha256 of the key value as text: what the audit log keeps instead of the value."""
    return hashlib.sha256(str(value).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------
# retention


def _record(row: RetentionPolicy) -> RetentionPolicyRecord:
    return RetentionPolicyRecord(row.endpoint, int(row.days), row.updated_at, row.updated_by, row.last_applied_at)


def set_retention(ws: Workspace, endpoint: str, days: int) -> RetentionPolicyRecord:
    """Keep ``endpoint``'s predictions and feedback ``days`` days (1..36500); audited ``privacy.retention``."""
    check_name(endpoint, "endpoint")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValidationError(f"retention days must be an integer in 1..{MAX_DAYS}, got {days!r}",
                              field="days", rule="range")
    now = utcnow()
    with ws.store.write(ws.actor) as tx:
        row = tx.session.execute(
            select(RetentionPolicy).where(RetentionPolicy.endpoint == endpoint)).scalar_one_or_none()
        before = None
        if row is None:
            row = RetentionPolicy(endpoint=endpoint, days=days, updated_at=now, updated_by=ws.actor)
            tx.session.add(row)
        else:
            before = {"days": row.days}
            row.days, row.updated_at, row.updated_by = days, now, ws.actor
        tx.session.flush()
        tx.audit("privacy.retention", "endpoint", endpoint, before=before, after={"days": days})
        return _record(row)


def list_retention(ws: Workspace) -> list[RetentionPolicyRecord]:
    """Every retention policy, by endpoint."""
    with ws.store.read() as session:
        return [_record(r) for r in session.execute(select(RetentionPolicy).order_by(RetentionPolicy.endpoint)).scalars()]


def _rows(path: Path) -> int:
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (OSError, pa.ArrowException):
        return 0


def _folder_start(name: str, prefix: str) -> int | None:
    try:
        return int(name[len(prefix):])
    except ValueError:
        return None


def _expire(root: Path, endpoint: str, cutoff: datetime) -> tuple[int, int, int, int]:
    pfiles = prows = ffiles = frows = 0
    for ddir in sorted(endpoint_dir(root, endpoint).glob("date=*")):
        try:
            day = date.fromisoformat(ddir.name[5:])
        except ValueError:
            continue
        day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        for hdir in sorted(ddir.glob("hour=*")):
            hour = _folder_start(hdir.name, "hour=")
            if hour is None or day_start + timedelta(hours=hour + 1) > cutoff:
                continue
            files = list(hdir.glob("*.parquet"))
            pfiles += len(files)
            prows += sum(_rows(f) for f in files)
            shutil.rmtree(hdir, ignore_errors=True)
        if not any(ddir.iterdir()):
            ddir.rmdir()
    fdir = root / "feedback" / f"endpoint={endpoint}"
    for ddir in sorted(fdir.glob("date=*")) if fdir.is_dir() else []:
        try:
            day = date.fromisoformat(ddir.name[5:])
        except ValueError:
            continue
        if datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1) > cutoff:
            continue
        files = list(ddir.glob("*.parquet"))
        ffiles += len(files)
        frows += sum(_rows(f) for f in files)
        shutil.rmtree(ddir, ignore_errors=True)
    return pfiles, prows, ffiles, frows


def apply_retention(ws: Workspace, endpoint: str | None = None, *, now: datetime | None = None) -> list[RetentionResult]:
    """Delete what every policy (or ``endpoint``'s) no longer keeps; one audit event per endpoint.

    Raises:
        NotFoundError: ``endpoint`` has no retention policy.
    """
    policies = list_retention(ws)
    if endpoint is not None:
        policies = [p for p in policies if p.endpoint == endpoint]
        if not policies:
            raise NotFoundError(f"endpoint {endpoint!r} has no retention policy; set one with "
                                "'loopml privacy retention set ENDPOINT --days N'")
    root = resolve_root(ws)
    moment = now or datetime.now(UTC)
    results = []
    for policy in policies:
        cutoff = moment - timedelta(days=policy.days)
        counts = _expire(root, policy.endpoint, cutoff) if root.is_dir() else (0, 0, 0, 0)
        result = RetentionResult(policy.endpoint, policy.days, cutoff.isoformat(), *counts)
        with ws.store.write(ws.actor) as tx:
            row = tx.session.execute(
                select(RetentionPolicy).where(RetentionPolicy.endpoint == policy.endpoint)).scalar_one()
            row.last_applied_at = utcnow()
            tx.audit("privacy.retention_apply", "endpoint", policy.endpoint, after=result.to_dict())
        results.append(result)
    return results


# ---------------------------------------------------------------------------
# erasure


def _replace_atomic(table: pa.Table, path: Path) -> None:
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _match(column: pa.ChunkedArray | pa.Array, value: Any) -> pa.ChunkedArray | pa.Array:
    """Rows equal to ``value``, compared in the column's type when the value converts, else as text."""
    try:
        scalar = pa.scalar(value).cast(column.type)
        return pc.fill_null(pc.equal(column, scalar), False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return pc.fill_null(pc.equal(pc.cast(column, pa.string()), pa.scalar(str(value))), False)


def _coerce(value: Any, type_: pa.DataType) -> Any:
    # CLI and HTTP values arrive as text: "42" must match an int64 column.
    if isinstance(value, str) and (pa.types.is_integer(type_) or pa.types.is_floating(type_)):
        try:
            return int(value) if pa.types.is_integer(type_) else float(value)
        except ValueError:
            return value
    return value


def _erase_file(path: Path, column: str, value: Any, ids: set[str] | None) -> tuple[int, list[str], bool]:
    """Remove matching rows from one file; returns (rows removed, their request ids, deleted?)."""
    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    if ids is None:
        if column not in names:
            return 0, [], False
        col = pf.read(columns=[column]).column(column)
        mask = _match(col, _coerce(value, col.type))
    else:
        if "request_id" not in names:
            return 0, [], False
        col = pf.read(columns=["request_id"]).column("request_id")
        mask = pc.is_in(pc.cast(col, pa.string()), value_set=pa.array(sorted(ids), type=pa.string()))
        mask = pc.fill_null(mask, False)
    hits = int(pc.sum(mask).as_py() or 0)
    if hits == 0:
        return 0, [], False
    table = pf.read()
    erased_ids = ([str(r) for r in table.filter(mask).column("request_id").to_pylist()]
                  if "request_id" in names else [])
    kept = table.filter(pc.invert(mask))
    if kept.num_rows == 0:
        path.unlink(missing_ok=True)
        return hits, erased_ids, True
    _replace_atomic(kept, path)
    return hits, erased_ids, False


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*.parquet") if not p.name.startswith("."))


def erase_subject(ws: Workspace, column: str, value: Any, *, endpoint: str | None = None) -> ErasureResult:
    """Erase every logged row whose ``column`` equals ``value`` (every endpoint, or one), and its feedback.

    ``column`` is a column of the log: a feature (``f_customer_id``) or
    ``request_id``. The audit event ``privacy.erase`` holds the column, the
    sha256 of the value and the counts.

    Raises:
        ValidationError: an empty column or value.
        NotFoundError: ``endpoint`` has nothing logged.
    """
    if not isinstance(column, str) or not column.strip() or len(column) > 256:
        raise ValidationError("the subject key column must be a non-empty column name of the log, "
                              "e.g. f_customer_id or request_id", field="column", rule="required")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValidationError("the subject key value must not be empty", field="value", rule="required")
    root = resolve_root(ws)
    known = list_endpoints(root)
    if endpoint is not None:
        check_name(endpoint, "endpoint")
        if endpoint not in known:
            raise NotFoundError(f"endpoint {endpoint!r} has no logged predictions; known endpoints: "
                                f"{', '.join(known) or 'none yet'}")
    targets = [endpoint] if endpoint is not None else [e for e in known if e != "feedback"]
    per: dict[str, dict[str, int]] = {}
    rewritten = deleted = 0
    for ep in targets:
        ids: set[str] = set()
        prows = frows = 0
        for path in _files(endpoint_dir(root, ep)):
            n, erased, gone = _erase_file(path, column, value, None)
            if n:
                prows += n
                ids.update(erased)
                deleted += gone
                rewritten += not gone
        if column == "request_id":
            ids.add(str(value))
        if ids:
            for path in _files(root / "feedback" / f"endpoint={ep}"):
                n, _, gone = _erase_file(path, "request_id", None, ids)
                if n:
                    frows += n
                    deleted += gone
                    rewritten += not gone
        per[ep] = {"prediction_rows": prows, "feedback_rows": frows}
    result = ErasureResult(
        column=column, value_sha256=subject_hash(value), endpoints=tuple(targets),
        prediction_rows=sum(v["prediction_rows"] for v in per.values()),
        feedback_rows=sum(v["feedback_rows"] for v in per.values()),
        files_rewritten=rewritten, files_deleted=deleted, per_endpoint=per,
    )
    with ws.store.write(ws.actor) as tx:
        tx.audit("privacy.erase", "subject", f"{column}:sha256:{result.value_sha256[:16]}",
                 after=result.to_dict())
    return result
