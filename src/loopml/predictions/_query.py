"""Reading the log with DuckDB: windows by time, pruned by partition folder.

The hour folders a window cannot touch are never opened: the file list is
pruned in Python from ``date=``/``hour=`` names, then DuckDB reads the rest
(``hive_partitioning``, ``union_by_name`` since feature columns may grow).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loopml.kernel.exceptions import DataError, NotFoundError, ValidationError
from loopml.kernel.types import check_name
from loopml.predictions._files import endpoint_dir, list_files, parse_time, resolve_root
from loopml.predictions._live import Snapshot, journal_segment_ids, snapshot
from loopml.predictions._schema import CORE_COLUMNS

__all__ = [
    "CompactResult",
    "compact",
    "count_predictions",
    "list_endpoints",
    "open_view",
    "prediction_files",
    "query_predictions",
    "window",
]

_HIVE = ("date", "hour")


def list_endpoints(ws_or_root: Any) -> list[str]:
    """Endpoints that have a folder in the log."""
    root = resolve_root(ws_or_root)
    if not root.is_dir():
        return []
    return sorted(p.name[len("endpoint=") :] for p in root.glob("endpoint=*") if p.is_dir())


def _check_endpoint(root: Path, endpoint: str, *, in_journal: bool = False) -> None:
    check_name(endpoint, "endpoint")
    if not in_journal and not endpoint_dir(root, endpoint).is_dir():
        known = list_endpoints(root)
        listing = ", ".join(repr(e) for e in known) if known else "none yet"
        raise NotFoundError(f"endpoint {endpoint!r} has no logged predictions in {root}; known endpoints: {listing}")


def window(since: Any, until: Any) -> tuple[datetime | None, datetime | None]:
    """Parse ``since``/``until`` and check that the window is not empty."""
    lo = parse_time(since, "since")
    hi = parse_time(until, "until")
    if lo is not None and hi is not None and hi <= lo:
        raise ValidationError(
            f"until ({hi.isoformat()}) must be after since ({lo.isoformat()})", field="until", rule="after_since"
        )
    return lo, hi


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _live_files(files: list[Path]) -> list[Path]:
    """Drop inputs of a finished compaction whose deletion a crash interrupted."""
    dead: set[Path] = set()
    for folder in {f.parent for f in files}:
        for intent in folder.glob("_compact-*.json"):
            try:
                spec = json.loads(intent.read_text())
            except (OSError, ValueError):
                continue
            if (folder / spec["output"]).exists():
                dead.update(folder / name for name in spec["inputs"])
    return [f for f in files if f not in dead] if dead else files


def prediction_files(ws_or_root: Any, endpoint: str, since: datetime | None, until: datetime | None) -> list[Path]:
    """The Parquet files that may hold rows of ``endpoint`` in ``[since, until)``."""
    root = resolve_root(ws_or_root)
    _check_endpoint(root, endpoint)
    return _live_files(list_files(root, endpoint, since, until))


def _snapshot(ws_or_root: Any, endpoint: str, since: datetime | None, until: datetime | None) -> Snapshot:
    """Parquet files and not-yet-committed journal rows of the window (see ``_live``): rows about
    one flush interval old are included, each row once."""
    root = resolve_root(ws_or_root)
    check_name(endpoint, "endpoint")
    snap = snapshot(root, endpoint, since, until,
                    lambda: _live_files(list_files(root, endpoint, since, until)))
    _check_endpoint(root, endpoint, in_journal=snap.seen)
    return snap


_JOURNAL_VIEW = "_loopml_journal"


def _from(con: Any, snap: Snapshot, files_sql: str = "$files") -> str:
    """The SQL source over a snapshot: Parquet (less its hive folders) and the journal, by name."""
    parts: list[str] = []
    if snap.files:
        parts.append(f"SELECT * EXCLUDE ({', '.join(_HIVE)}) FROM read_parquet({files_sql}, "
                     "hive_partitioning = true, union_by_name = true)")
    if snap.journal is not None:
        con.register(_JOURNAL_VIEW, snap.journal)
        parts.append(f"SELECT * FROM {_JOURNAL_VIEW}")
    return "(" + " UNION ALL BY NAME ".join(parts) + ")"


def _connect() -> Any:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


@contextmanager
def duck_errors(endpoint: str) -> Iterator[None]:
    """No DuckDB exception leaves this package: a damaged log file is a ``DataError``."""
    import duckdb

    try:
        yield
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0][:300]
        raise DataError(f"the prediction log of endpoint {endpoint!r} could not be read: {first}") from exc


def _where(since: datetime | None, until: datetime | None, model_version: int | None) -> tuple[str, dict[str, Any]]:
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if since is not None:
        clauses.append("ts >= $since")
        params["since"] = since
    if until is not None:
        clauses.append("ts < $until")
        params["until"] = until
    if model_version is not None:
        if isinstance(model_version, bool) or not isinstance(model_version, int):
            try:
                model_version = int(str(model_version))
            except ValueError:
                raise ValidationError(
                    f"model_version {model_version!r} is not an integer", field="model_version", rule="int"
                ) from None
        clauses.append("model_version = $model_version")
        params["model_version"] = model_version
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    # DuckDB says Etc/UTC; loopml stores and shows plain UTC.
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz:
            table = table.set_column(i, field.name, table.column(i).cast(pa.timestamp(field.type.unit, tz="UTC")))
    return table.to_pandas()


def _empty_frame(columns: Sequence[str] | None) -> pd.DataFrame:
    names = list(columns) if columns else [c for c in CORE_COLUMNS if c != "endpoint"] + ["endpoint"]
    return pd.DataFrame({c: pd.Series([], dtype="object") for c in names})


def query_predictions(
    ws_or_root: Any,
    endpoint: str,
    *,
    since: Any = None,
    until: Any = None,
    model_version: int | None = None,
    columns: Sequence[str] | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Logged predictions of ``endpoint`` in ``[since, until)``, oldest first.

    ``since``/``until`` take datetimes, ISO text or durations ago (``'1h'``).

    Raises:
        NotFoundError: nothing was ever logged for ``endpoint`` (lists the known ones).
        ValidationError: a bad ``since``/``until``/``limit``/column, naming it.
    """
    lo, hi = window(since, until)
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValidationError(f"limit must be an integer >= 0, got {limit!r}", field="limit", rule="non_negative")
    snap = _snapshot(ws_or_root, endpoint, lo, hi)
    if not snap.files and snap.journal is None:
        return _empty_frame(columns)
    where, params = _where(lo, hi, model_version)
    con = _connect()
    try:
        with duck_errors(endpoint):
            source = _from(con, snap)
            files_param = {"files": [str(f) for f in snap.files]} if snap.files else {}
            params.update(files_param)
            available = [r[0] for r in con.sql(f"DESCRIBE SELECT * FROM {source}", params=files_param).fetchall()]
            if columns:
                unknown = [c for c in columns if c not in available]
                if unknown:
                    raise ValidationError(
                        f"column {unknown[0]!r} is not in the log of {endpoint!r}; columns: "
                        f"{', '.join(c for c in available if c not in _HIVE)}",
                        field="columns",
                        rule="known_column",
                    )
                select = ", ".join(quote(c) for c in columns)
            else:
                select = ", ".join(quote(c) for c in available if c not in _HIVE)
            sql = f"SELECT {select} FROM {source}{where} ORDER BY ts"
            if limit is not None:
                sql += f" LIMIT {int(limit)}"
            return _to_pandas(con.sql(sql, params=params).to_arrow_table())
    finally:
        con.close()


def count_predictions(
    ws_or_root: Any, endpoint: str, *, since: Any = None, until: Any = None, model_version: int | None = None
) -> int:
    """How many predictions ``endpoint`` logged in the window."""
    lo, hi = window(since, until)
    snap = _snapshot(ws_or_root, endpoint, lo, hi)
    if not snap.files and snap.journal is None:
        return 0
    where, params = _where(lo, hi, model_version)
    if snap.files:
        params["files"] = [str(f) for f in snap.files]
    con = _connect()
    try:
        with duck_errors(endpoint):
            return int(con.sql(f"SELECT count(*) FROM {_from(con, snap)}{where}", params=params).fetchall()[0][0])
    finally:
        con.close()


def open_view(ws_or_root: Any, endpoint: str, *, since: Any = None, until: Any = None, name: str = "predictions") -> Any:
    """A DuckDB connection with a view ``name`` over the window, for aggregations in SQL.

    The monitor uses this to aggregate a day of log without building a DataFrame.
    The caller closes the connection.
    """
    lo, hi = window(since, until)
    snap = _snapshot(ws_or_root, endpoint, lo, hi)
    con = _connect()
    if not snap.files and snap.journal is None:
        cols = ", ".join(f"NULL::{_duck_type(t)} AS {quote(c)}" for c, t in CORE_COLUMNS.items())
        con.execute(f"CREATE VIEW {quote(name)} AS SELECT {cols} WHERE false")
        return con
    listing = "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in snap.files) + "]"
    where = []
    if lo is not None:
        where.append(f"ts >= TIMESTAMPTZ '{lo.isoformat()}'")
    if hi is not None:
        where.append(f"ts < TIMESTAMPTZ '{hi.isoformat()}'")
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    try:
        with duck_errors(endpoint):
            con.execute(f"CREATE VIEW {quote(name)} AS SELECT * FROM {_from(con, snap, listing)}{clause}")
    except DataError:
        con.close()
        raise
    return con


def _duck_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    if pa.types.is_integer(t):
        return "BIGINT"
    if pa.types.is_floating(t):
        return "DOUBLE"
    return "VARCHAR"


# ------------------------------------------------------------------ compaction


@dataclass(frozen=True)
class CompactResult:
    """What :func:`compact` merged."""

    endpoint: str
    date: str
    files_before: int
    files_after: int
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compact(ws_or_root: Any, endpoint: str, day: str | date, *, min_files: int = 2) -> CompactResult:
    """Merge each hour's small files of ``endpoint`` on ``day`` into one file.

    Crash-safe: an intent file names the inputs and the output before the
    output appears; readers ignore inputs of a finished compaction, and the
    next run deletes them.
    """
    root = resolve_root(ws_or_root)
    _check_endpoint(root, endpoint)
    try:
        the_day = day if isinstance(day, date) else date.fromisoformat(str(day))
    except ValueError:
        raise ValidationError(f"date {day!r} is not an ISO date (YYYY-MM-DD)", field="date", rule="date") from None
    ddir = endpoint_dir(root, endpoint) / f"date={the_day.isoformat()}"
    # Files of a segment still in the journal stay as they are: a query tells them apart by name.
    pending = tuple(f"part-{sid}-" for sid in journal_segment_ids(root))
    before = after = rows = 0
    for hdir in sorted(ddir.glob("hour=*")):
        _finish_intents(hdir)
        files = [f for f in sorted(hdir.glob("*.parquet")) if not (pending and f.name.startswith(pending))]
        before += len(files)
        if len(files) < min_files:
            after += len(files)
            rows += sum(pq.ParquetFile(f).metadata.num_rows for f in files)
            continue
        rows += _merge(hdir, files)
        after += 1
    return CompactResult(endpoint, the_day.isoformat(), before, after, rows)


def _finish_intents(folder: Path) -> None:
    for intent in folder.glob("_compact-*.json"):
        spec = json.loads(intent.read_text())
        if (folder / spec["output"]).exists():
            for name in spec["inputs"]:
                (folder / name).unlink(missing_ok=True)
        intent.unlink()


def _merge(folder: Path, files: list[Path]) -> int:
    schemas = [pq.read_schema(f) for f in files]
    schema = pa.unify_schemas(schemas, promote_options="permissive")
    out_name = f"part-c{uuid.uuid4().hex}.parquet"
    tmp = folder / f".{out_name}.tmp"
    rows = 0
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for f in files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=131_072):
                arrays = [
                    batch.column(field.name).cast(field.type) if field.name in batch.schema.names
                    else pa.nulls(batch.num_rows, field.type)
                    for field in schema
                ]
                writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
                rows += batch.num_rows
    intent = folder / f"_compact-{uuid.uuid4().hex}.json"
    intent.write_text(json.dumps({"output": out_name, "inputs": [f.name for f in files]}))
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, folder / out_name)
    for f in files:
        f.unlink(missing_ok=True)
    intent.unlink()
    return rows

