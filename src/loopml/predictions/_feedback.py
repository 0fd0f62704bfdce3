"""Ground truth: true labels by request id, appended beside the log, joined when read.

Labels arrive late and may be corrected: every submission is a new file under
``feedback/endpoint=<name>/date=<received>/``; nothing is overwritten, and a
join keeps the latest label per request id (by label time, then arrival).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from loopml.kernel.exceptions import ValidationError
from loopml.kernel.types import check_name, new_id
from loopml.predictions._files import parse_time, resolve_root, write_parquet_atomic
from loopml.predictions._query import _connect, _from, _snapshot, _to_pandas, duck_errors, quote, window
from loopml.predictions._schema import TS_TYPE

__all__ = ["FeedbackResult", "feedback_files", "join_feedback", "record_feedback"]


@dataclass(frozen=True)
class FeedbackResult:
    """What :func:`record_feedback` stored."""

    endpoint: str
    rows: int
    path: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Feedback files the CLI reads and the server accepts as an upload.
FEEDBACK_FORMATS = ("csv", "parquet")


def read_feedback_file(path: Path, fmt: str | None = None) -> pd.DataFrame:
    """A feedback file (CSV or Parquet: ``request_id``, ``label`` [, ``ts``, ``row``]); request ids stay text.

    Raises:
        ValidationError: the file is missing or not CSV/Parquet (``field='file'``).
    """
    if not path.is_file():
        raise ValidationError(f"--file {str(path)!r} does not exist", field="file", rule="exists")
    kind = fmt or {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}.get(path.suffix.lower())
    if kind not in FEEDBACK_FORMATS:
        raise ValidationError(f"--file {str(path)!r}: use a .csv or .parquet file", field="file", rule="format")
    try:
        return pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path, dtype={"request_id": str})
    except (ValueError, OSError) as exc:  # pandas/pyarrow parse errors are ValueError/ArrowInvalid subclasses
        raise ValidationError(f"the feedback file is not readable {kind}: {str(exc).splitlines()[0]}",
                              field="file", rule="format") from None


def _feedback_dir(root: Path, endpoint: str) -> Path:
    return root / "feedback" / f"endpoint={endpoint}"


def _as_rows(labels: Any) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    if isinstance(labels, pa.Table):
        labels = labels.to_pandas()
    if isinstance(labels, pd.DataFrame):
        for col in ("request_id", "label"):
            if col not in labels.columns:
                raise ValidationError(
                    f"feedback needs a {col!r} column; got columns: {', '.join(map(str, labels.columns))}",
                    field=col,
                    rule="required",
                )
        ts = labels["ts"].tolist() if "ts" in labels.columns else [None] * len(labels)
        rows = labels["row"].tolist() if "row" in labels.columns else [0] * len(labels)
        return labels["request_id"].tolist(), labels["label"].tolist(), ts, rows
    if isinstance(labels, Mapping):
        labels = [labels]
    if not isinstance(labels, Sequence) or isinstance(labels, (str, bytes)):
        raise ValidationError(
            "feedback must be a mapping, a list of mappings or a table with request_id and label",
            field="labels",
            rule="type",
        )
    ids, values, times, rows = [], [], [], []
    for i, item in enumerate(labels):
        if not isinstance(item, Mapping):
            raise ValidationError(f"feedback item {i} is not a mapping: {item!r}", field="labels", rule="type")
        for col in ("request_id", "label"):
            if col not in item:
                raise ValidationError(f"feedback item {i} has no {col!r}", field=col, rule="required")
        ids.append(item["request_id"])
        values.append(item["label"])
        times.append(item.get("ts"))
        rows.append(item.get("row", 0))
    return ids, values, times, rows


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA or value is pd.NaT


def record_feedback(ws_or_root: Any, endpoint: str, labels: Any, *, now: datetime | None = None) -> FeedbackResult:
    """Append true labels for ``endpoint``: ``[{"request_id", "label", "ts"?, "row"?}]`` or a table.

    ``row`` is the row within a multi-row request (default 0).

    Raises:
        ValidationError: no rows, or a row without request id or label (names the row).
    """
    check_name(endpoint, "endpoint")
    ids, values, times, rows = _as_rows(labels)
    if not ids:
        raise ValidationError("feedback has no rows", field="labels", rule="non_empty")
    for i, (rid, value) in enumerate(zip(ids, values, strict=True)):
        if _missing(rid) or str(rid) == "":
            raise ValidationError(f"feedback row {i}: request_id is empty", field="request_id", rule="required")
        if _missing(value):
            raise ValidationError(
                f"feedback row {i} (request_id {rid!r}): label is missing", field="label", rule="required"
            )
    received = now or datetime.now(UTC)
    stamps = []
    for i, t in enumerate(times):
        if _missing(t):
            stamps.append(received)
            continue
        try:
            stamps.append(parse_time(t.to_pydatetime() if hasattr(t, "to_pydatetime") else t, "ts"))
        except ValidationError:
            raise ValidationError(f"feedback row {i}: ts {t!r} is not a time", field="ts", rule="time") from None
    try:
        label_arr = pa.array([v.item() if hasattr(v, "item") else v for v in values])
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed kinds: keep them comparable as text
        label_arr = pa.array([str(v) for v in values], type=pa.string())
    table = pa.table(
        {
            "request_id": pa.array([str(r) for r in ids], type=pa.string()),
            "row": pa.array([0 if _missing(r) else int(r) for r in rows], type=pa.int32()),
            "label": label_arr,
            "ts": pa.array(stamps, type=TS_TYPE),
            "received_at": pa.array([received] * len(ids), type=TS_TYPE),
        }
    )
    root = resolve_root(ws_or_root)
    path = _feedback_dir(root, endpoint) / f"date={received:%Y-%m-%d}" / f"part-{new_id()}.parquet"
    write_parquet_atomic(table, path)
    return FeedbackResult(endpoint=endpoint, rows=table.num_rows, path=str(path))


def feedback_files(ws_or_root: Any, endpoint: str) -> list[Path]:
    """Every feedback file of ``endpoint`` (labels may arrive long after the prediction)."""
    folder = _feedback_dir(resolve_root(ws_or_root), endpoint)
    return sorted(folder.glob("date=*/*.parquet")) if folder.is_dir() else []


def join_feedback(ws_or_root: Any, endpoint: str, since: Any = None, until: Any = None) -> pd.DataFrame:
    """Predictions of the window LEFT JOIN their latest true label (``label``, ``label_ts``).

    Raises:
        NotFoundError: nothing was ever logged for ``endpoint``.
        ValidationError: a bad ``since``/``until``.
    """
    lo, hi = window(since, until)
    snap = _snapshot(ws_or_root, endpoint, lo, hi)  # Parquet and the journal's newest rows
    if not snap.files and snap.journal is None:
        return pd.DataFrame({c: pd.Series([], dtype="object") for c in ("request_id", "ts", "label", "label_ts")})
    ffiles = feedback_files(ws_or_root, endpoint)
    files_param = {"files": [str(f) for f in snap.files]} if snap.files else {}
    clauses, params = [], dict(files_param)
    if lo is not None:
        clauses.append("ts >= $since")
        params["since"] = lo
    if hi is not None:
        clauses.append("ts < $until")
        params["until"] = hi
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    con = _connect()
    try:
        with duck_errors(endpoint):
            source = _from(con, snap)
            cols = [r[0] for r in con.sql(f"DESCRIBE SELECT * FROM {source}", params=files_param).fetchall()]
            select = ", ".join(f"p.{quote(c)}" for c in cols if c not in ("date", "hour"))
            if ffiles:
                params["ffiles"] = [str(f) for f in ffiles]
                labels = (
                    "SELECT request_id, row, label, ts AS label_ts FROM "
                    "read_parquet($ffiles, hive_partitioning = false, union_by_name = true) "
                    "QUALIFY row_number() OVER (PARTITION BY request_id, row ORDER BY ts DESC, received_at DESC) = 1"
                )
            else:
                labels = "SELECT NULL::VARCHAR AS request_id, NULL::INTEGER AS row, NULL AS label, NULL::TIMESTAMPTZ AS label_ts WHERE false"
            sql = (
                f"WITH p AS (SELECT * FROM {source}{where}), f AS ({labels}) "
                f"SELECT {select}, f.label, f.label_ts FROM p LEFT JOIN f ON p.request_id = f.request_id AND coalesce(p.row, 0) = f.row "
                "ORDER BY p.ts, p.request_id, p.row"
            )
            return _to_pandas(con.sql(sql, params=params).to_arrow_table())
    finally:
        con.close()
