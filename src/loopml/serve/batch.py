"""Batch scoring: a model over a Parquet or CSV file, one Arrow record batch at a time.

Invariants: memory is bounded by ``batch_rows`` (the input is streamed, never
read whole); rows that break the model's contract go to a reject file with a
``_reject_reason`` naming the field and the rule; outputs appear complete or
not at all (temp file, then rename); the batch is recorded in one metadata
transaction (audit ``prediction_batch.score`` + lineage
``model_version --used_by--> prediction_batch``) with sha256 digests of the
input and the outputs.
"""

from __future__ import annotations

import csv
import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from loopml.kernel.exceptions import DataError, NotFoundError, ServingError, ValidationError
from loopml.kernel.types import new_id

__all__ = ["BatchResult", "reject_reasons", "score_file"]

_PARQUET = (".parquet", ".pq")
_CSV = (".csv",)
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}

Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class BatchResult:
    """One scored file: counts, where things went, and the digests lineage points at."""

    batch_id: str
    model_name: str
    model_version: int
    input_path: str
    output_path: str
    reject_path: str | None
    rows_in: int
    rows_scored: int
    rows_rejected: int
    input_digest: str
    output_digest: str
    reject_digest: str | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------ contract


def _coerce(values: pd.Series, spec: Mapping[str, Any]) -> tuple[pd.Series, np.ndarray]:
    """The column in the contract's type, and a mask of non-null values that would not convert."""
    kind = spec.get("type", "float")
    null = values.isna().to_numpy()
    if kind in ("float", "int"):
        num = pd.to_numeric(values, errors="coerce")
        bad = ~null & num.isna().to_numpy()
        if kind == "int":
            frac = ~num.isna().to_numpy() & (num.to_numpy(dtype=float, na_value=np.nan) % 1 != 0)
            bad |= frac
        return num.astype("float64"), bad
    if kind == "bool":
        if pd.api.types.is_bool_dtype(values):
            return values, np.zeros(len(values), dtype=bool)
        text = values.astype("string").str.strip().str.lower()
        out = pd.Series(np.where(text.isin(_TRUE), True, np.where(text.isin(_FALSE), False, None)),
                        index=values.index, dtype="object")
        bad = ~null & out.isna().to_numpy()
        return out, bad
    if kind == "datetime":
        out = pd.to_datetime(values, errors="coerce", utc=True)
        return out, ~null & out.isna().to_numpy()
    # string / category: text as is
    return values.astype("object").where(~values.isna(), None), np.zeros(len(values), dtype=bool)


def reject_reasons(frame: pd.DataFrame, contract: Mapping[str, Any] | None) -> tuple[pd.DataFrame, np.ndarray]:
    """The contract's features, typed; and per row ``None`` or why it breaks the contract.

    Vectorised per rule; only failing rows pay for a message, which names the
    field, the rule and the value (``"temp_max: 45.0 above max 40.0 (rule max)"``).
    """
    columns: Mapping[str, Any] = (contract or {}).get("columns", {}) or {}
    n = len(frame)
    reasons = np.full(n, None, dtype=object)
    if not columns:
        return frame, reasons
    typed: dict[str, Any] = {}

    def add(mask: np.ndarray, message: Callable[[int], str]) -> None:
        for i in np.flatnonzero(mask):
            text = message(int(i))
            reasons[i] = text if reasons[i] is None else f"{reasons[i]}; {text}"

    for name, spec in columns.items():
        raw = frame[name]
        values, bad_type = _coerce(raw, spec)
        typed[name] = values
        kind = spec.get("type", "float")
        raw_list = raw.to_numpy(dtype=object)
        add(bad_type, lambda i, name=name, kind=kind: f"{name}: {raw_list[i]!r} is not {_article(kind)} (rule type)")
        null = values.isna().to_numpy() & ~bad_type
        if spec.get("nullable", True) is False:
            add(null, lambda i, name=name: f"{name}: missing value not allowed (rule nullable)")
        if kind in ("float", "int"):
            arr = values.to_numpy(dtype=float, na_value=np.nan)
            if spec.get("min") is not None:
                with np.errstate(invalid="ignore"):
                    add(arr < float(spec["min"]), lambda i, name=name, arr=arr, lo=spec["min"]: f"{name}: {_num(arr[i])} below min {lo} (rule min)")
            if spec.get("max") is not None:
                with np.errstate(invalid="ignore"):
                    add(arr > float(spec["max"]), lambda i, name=name, arr=arr, hi=spec["max"]: f"{name}: {_num(arr[i])} above max {hi} (rule max)")
        if kind == "category" and spec.get("categories") and spec.get("unseen", "reject") == "reject":
            allowed = {str(c) for c in spec["categories"]}
            text = values.astype("string")
            unseen = (~text.isin(allowed)).to_numpy(dtype=bool, na_value=False) & ~values.isna().to_numpy()
            add(unseen, lambda i, name=name: f"{name}: {raw_list[i]!r} not in categories {sorted(allowed)} (rule unseen)")
    return pd.DataFrame(typed, index=frame.index), reasons


def _article(kind: str) -> str:
    return {"int": "an integer", "float": "a number", "bool": "a boolean", "datetime": "a date/time"}.get(kind, kind)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


# --------------------------------------------------------------------- files


def _format(path: Path, field: str) -> str:
    suffix = path.suffix.lower()
    if suffix in _PARQUET:
        return "parquet"
    if suffix in _CSV:
        return "csv"
    raise ValidationError(
        f"{field} {str(path)!r}: unsupported format {suffix or '(none)'!r}; use .parquet or .csv",
        field=field, rule="format",
    )


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _csv_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return next(csv.reader(fh), [])


def _read_batches(path: Path, fmt: str, batch_rows: int) -> tuple[Iterator[pa.RecordBatch], int | None]:
    """Record batches of at most ``batch_rows``; the total row count when the format knows it."""
    if fmt == "parquet":
        try:
            pf = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"input {str(path)!r} is not a readable Parquet file: {exc}") from exc
        return pf.iter_batches(batch_size=batch_rows), pf.metadata.num_rows
    header = _csv_header(path)
    if not header:
        raise DataError(f"input {str(path)!r} is empty: no CSV header")
    size = os.path.getsize(path)
    # Strings everywhere: the contract types what it knows, so a value that does not
    # parse rejects one row instead of failing the file a million rows in.
    convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in header}, strings_can_be_null=True)
    avg_line = max(16, min(size, 65536) // max(1, _count_lines(path, 65536)))
    read = pacsv.ReadOptions(block_size=int(min(64 << 20, max(1 << 16, avg_line * batch_rows))))
    try:
        reader = pacsv.open_csv(path, read_options=read, convert_options=convert)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"input {str(path)!r} is not a readable CSV file: {exc}") from exc

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for batch in reader:
                for start in range(0, batch.num_rows, batch_rows):
                    yield batch.slice(start, batch_rows)
        except pa.ArrowInvalid as exc:
            raise DataError(f"input {str(path)!r}: CSV could not be read: {exc}") from exc

    return batches(), None


def _count_lines(path: Path, nbytes: int) -> int:
    with open(path, "rb") as fh:
        return fh.read(nbytes).count(b"\n")


class _Out:
    """A Parquet or CSV file written batch by batch to a temp name, renamed when complete."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path
        self.fmt = fmt
        self.tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
        self.writer: Any = None
        self.schema: pa.Schema | None = None
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if self.writer is None:
            self.schema = table.schema
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.fmt == "parquet":
                self.writer = pq.ParquetWriter(self.tmp, self.schema, compression="zstd")
            else:
                self.writer = pacsv.CSVWriter(str(self.tmp), self.schema)
        else:
            try:
                table = table.select(self.schema.names).cast(self.schema)
            except (KeyError, pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                raise DataError(f"output {str(self.path)!r}: a batch does not match the first batch's columns: {exc}") from exc
        self.writer.write_table(table)
        self.rows += table.num_rows

    def commit(self) -> bool:
        if self.writer is None:
            return False
        self.writer.close()
        os.replace(self.tmp, self.path)
        return True

    def abort(self) -> None:
        if self.writer is not None:
            try:
                self.writer.close()
            except Exception:  # already failing; the temp file goes either way
                pass
        self.tmp.unlink(missing_ok=True)


# ------------------------------------------------------------------ scoring


def _load(ws: Any, model_ref: Any) -> Any:
    if not isinstance(model_ref, str):
        return model_ref  # an already loaded model
    import loopml.register as registry  # at call time: serve sits above register

    return registry.load_model(ws, model_ref)


def _predict(loaded: Any, features: pd.DataFrame, first_row: int) -> dict[str, Any]:
    est = loaded.estimator
    try:
        pred = np.asarray(est.predict(features))
    except Exception as exc:
        raise ServingError(
            f"model {loaded.name}/{loaded.version} failed on the batch starting at row {first_row}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    out: dict[str, Any] = {"prediction": pred}
    if (loaded.task or "classification") != "regression" and hasattr(est, "predict_proba"):
        try:
            proba = np.asarray(est.predict_proba(features))
        except Exception:  # not every classifier can: predictions alone are still a result
            return out
        classes = list(getattr(est, "classes_", range(proba.shape[1])))
        for j, cls in enumerate(classes):
            out[f"proba_{cls}"] = proba[:, j]
    return out


def score_file(
    ws: Any,
    model_ref: Any,
    input_path: str | Path,
    output_path: str | Path,
    *,
    reject_path: str | Path | None = None,
    batch_rows: int = 65536,
    progress: Progress | None = None,
    input_name: str | None = None,
    keep_outputs: bool = False,
) -> BatchResult:
    """Score ``input_path`` with ``model_ref`` into ``output_path``, streaming.

    The output holds the input's columns (contract features typed), then
    ``prediction`` and, for classifiers, ``proba_<class>``. Rejected rows keep
    their input values plus ``_row`` (0-based row number) and ``_reject_reason``.
    ``reject_path`` defaults to ``<output>.rejects<ext>``, written only when a row fails.

    ``keep_outputs`` (the server, scoring an upload in a temporary folder) also
    stores the output and reject files in the artifact store, and records them
    as ``artifact:<sha256>``; ``input_name`` is what the record calls the input
    (default: its path).

    Raises:
        NotFoundError: the input file does not exist.
        ValidationError: bad paths, formats, ``batch_rows``, or an input missing a contract column.
        ServingError: the model raised on a batch.
    """
    t0 = time.perf_counter()
    src = Path(input_path)
    dst = Path(output_path)
    if not src.is_file():
        raise NotFoundError(f"input file {str(src)!r} does not exist")
    if not isinstance(batch_rows, int) or isinstance(batch_rows, bool) or batch_rows < 1:
        raise ValidationError(f"batch_rows must be an integer >= 1, got {batch_rows!r}", field="batch_rows", rule="positive")
    in_fmt = _format(src, "input")
    out_fmt = _format(dst, "output")
    rej = Path(reject_path) if reject_path else dst.with_name(f"{dst.stem}.rejects{dst.suffix}")
    rej_fmt = _format(rej, "reject")
    if len({src.resolve(), dst.resolve(), rej.resolve()}) < 3:
        raise ValidationError("input, output and reject paths must be three different files", field="output", rule="distinct")

    loaded = _load(ws, model_ref)
    contract = loaded.signature or {}
    features = list((contract.get("columns") or {}).keys())
    batches, total = _read_batches(src, in_fmt, batch_rows)
    out = _Out(dst, out_fmt)
    rejects = _Out(rej, rej_fmt)
    rows_in = 0
    try:
        for batch in batches:
            if rows_in == 0 and features:
                missing = [c for c in features if c not in batch.schema.names]
                if missing:
                    raise ValidationError(
                        f"input {str(src)!r} lacks column {missing[0]!r} that model {loaded.name}/{loaded.version} "
                        f"needs; input columns: {', '.join(batch.schema.names)}",
                        field=missing[0], rule="required",
                    )
            frame = batch.to_pandas()
            typed, reasons = reject_reasons(frame, contract)
            bad = np.array([r is not None for r in reasons], dtype=bool)
            good = ~bad
            if good.any():
                X = typed[good] if features else frame[good]
                scored = _predict(loaded, X.reset_index(drop=True), rows_in)
                result = frame[good].reset_index(drop=True)
                for name in features:
                    result[name] = typed[name][good].reset_index(drop=True)
                for name, values in scored.items():
                    result[name] = values
                out.write(pa.Table.from_pandas(result, preserve_index=False))
            if bad.any():
                rej_frame = frame[bad].reset_index(drop=True)
                rej_frame["_row"] = np.flatnonzero(bad) + rows_in
                rej_frame["_reject_reason"] = [str(r) for r in reasons[bad]]
                rejects.write(pa.Table.from_pandas(rej_frame, preserve_index=False))
            rows_in += batch.num_rows
            if progress is not None:
                progress(rows_in, total)
        if out.writer is None:  # nothing scorable: still leave an (empty) output behind
            cols = {name: pa.array([], type=pa.string()) for name in (features or [])}
            cols["prediction"] = pa.array([], type=pa.string())
            out.write(pa.table(cols))
        out.commit()
        has_rejects = rejects.commit()
    except BaseException:
        out.abort()
        rejects.abort()
        raise

    batch_id = new_id()
    output_digest, reject_digest = sha256_file(dst), sha256_file(rej) if has_rejects else None
    output_name, reject_name = str(dst.resolve()), str(rej.resolve()) if has_rejects else None
    if keep_outputs:
        output_name = _keep(ws, dst, out_fmt, batch_id)
        reject_name = _keep(ws, rej, rej_fmt, batch_id) if has_rejects else None
    result = BatchResult(
        batch_id=batch_id,
        model_name=loaded.name,
        model_version=int(loaded.version),
        input_path=input_name or str(src.resolve()),
        output_path=output_name,
        reject_path=reject_name,
        rows_in=rows_in,
        rows_scored=out.rows,
        rows_rejected=rejects.rows,
        input_digest=sha256_file(src),
        output_digest=output_digest,
        reject_digest=reject_digest,
        seconds=round(time.perf_counter() - t0, 3),
    )
    _record(ws, loaded, result)
    return result


_MEDIA_TYPES = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv"}


def _keep(ws: Any, path: Path, fmt: str, batch_id: str) -> str:
    """Store a batch's file in the artifact store; the name its record gives it."""
    info = ws.artifacts.put_file(path, media_type=_MEDIA_TYPES[fmt], meta={"prediction_batch": batch_id})
    return f"artifact:{info.digest}"


def read_batch_file(ws: Any, batch_id: str, digest: str) -> tuple[bytes, str]:
    """The bytes and media type of a file a batch kept (``keep_outputs``): its output or its rejects, never
    another artifact.

    Raises:
        NotFoundError: the batch did not keep a file with that digest.
    """
    from loopml.metadata.audit import audit_log

    found = audit_log(ws, action="prediction_batch.score", object=f"prediction_batch:{batch_id}", limit=1)
    after = found[0].after if found else {}
    kept = {after.get("output_path"), after.get("reject_path")}
    if f"artifact:{digest}" not in kept:
        raise NotFoundError(f"prediction batch {batch_id} kept no file {digest[:12]}")
    data, info = ws.artifacts.read(digest)  # verified against its digest on read
    return data, info.media_type


def _record(ws: Any, loaded: Any, result: BatchResult) -> None:
    """One transaction: the audit event (details in ``after``) and the lineage edge."""
    record = getattr(loaded, "record", None)
    # The registry names version nodes NAME/VERSION (ModelVersionRecord.node).
    node = getattr(record, "node", None) or ("model_version", f"{loaded.name}/{loaded.version}")
    after = {**result.to_dict(), "model_version": node[1],
             "artifact_digest": getattr(record, "artifact_digest", None)}
    with ws.store.write(ws.actor) as tx:
        tx.audit("prediction_batch.score", "prediction_batch", result.batch_id, after=after)
        tx.link(node, "used_by", ("prediction_batch", result.batch_id))
