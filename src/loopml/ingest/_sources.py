"""Reading a source (CSV, Parquet, DataFrame, SQL query) into one Arrow table.

Every foreign error (pyarrow, SQLAlchemy, the OS) is translated here into a
loopml error that names the file, URL or column and the rule it broke.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from loopml.kernel.exceptions import DataError, MissingExtraError, ValidationError

__all__ = ["FORMATS", "SourceData", "is_sql_url", "read_source"]

#: ``format=`` values; ``None`` means "from the file extension".
FORMATS = ("csv", "parquet")
_EXTENSIONS = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet",
}
_COMPRESSED = (".gz", ".bz2", ".zst", ".lz4")
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class SourceData:
    """A source read into Arrow, with the JSON description stored on the version."""

    table: pa.Table
    info: dict[str, Any]
    node_id: str  # lineage node id of the source


def is_sql_url(source: Any) -> bool:
    """True for ``dialect[+driver]://...`` strings (a SQLAlchemy URL), not file paths."""
    return isinstance(source, str) and bool(_URL_RE.match(source)) and not source.startswith("file://")


def read_source(source: Any, *, query: str | None, format: str | None) -> SourceData:
    """Dispatch on the kind of source; see :func:`loopml.ingest.ingest`."""
    import pandas as pd

    if format is not None and format not in (*FORMATS, "sql", "dataframe"):
        raise ValidationError(
            f"format {format!r} is not supported; use one of: {', '.join(FORMATS)}", field="format", rule="choice"
        )
    if isinstance(source, pd.DataFrame):
        _no_query(query, "a DataFrame")
        return SourceData(_from_pandas(source), {"kind": "dataframe", "rows": len(source)}, "memory:dataframe")
    if isinstance(source, pa.Table):
        _no_query(query, "an Arrow table")
        return SourceData(source, {"kind": "arrow"}, "memory:arrow")
    if is_sql_url(source) or format == "sql":
        if not query:
            raise ValidationError(
                f"SQL source {_hide(str(source))}: pass query='SELECT ...' (--query)", field="query", rule="required"
            )
        return _read_sql(str(source), query)
    if isinstance(source, (str, Path)):
        _no_query(query, "a file")
        return _read_file(Path(source).expanduser(), format)
    raise ValidationError(
        f"cannot ingest a {type(source).__name__}: pass a CSV or Parquet path, a pandas DataFrame, "
        "or a SQLAlchemy URL with query=",
        field="source",
        rule="type",
    )


def _no_query(query: str | None, what: str) -> None:
    if query:
        raise ValidationError(f"query= only applies to SQL sources, not to {what}", field="query", rule="sql_only")


def _from_pandas(df: Any) -> pa.Table:
    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        detail = " ".join(str(a) for a in exc.args)
        m = re.search(r"for column (.+?) with type", detail)
        col = m.group(1) if m else None
        where = f"column '{col}'" if col else "a column"
        raise ValidationError(
            f"DataFrame {where} has values of mixed or unsupported types ({detail.split(chr(10))[0]}); "
            "cast the column to one type",
            field=col,
            rule="mixed_types",
        ) from exc


def _format_for(path: Path, format: str | None) -> str:
    if format is not None:
        return format
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    fmt = _EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise ValidationError(
            f"{path}: cannot tell the format from the extension {''.join(path.suffixes) or '(none)'}; "
            f"use .csv or .parquet, or pass format= one of: {', '.join(FORMATS)}",
            field="format",
            rule="extension",
        )
    return fmt


def _read_file(path: Path, format: str | None) -> SourceData:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    fmt = _format_for(path, format)
    table = _read_csv(path) if fmt == "csv" else _read_parquet(path)
    if fmt == "csv" and path.suffix.lower() not in _COMPRESSED:
        _check_last_quote_closed(path, table)
    resolved = path.resolve()
    info = {"kind": fmt, "path": str(resolved), "bytes": resolved.stat().st_size}
    return SourceData(table, info, resolved.as_uri())


#: Line-aligned slices read one after another, each parsed by all cores: the
#: threaded whole-file reader would buffer the entire file (2-3x the data).
_CSV_SLICE = 64 << 20
_CSV_BLOCK = 8 << 20
_CONVERSION_RE = re.compile(r"In CSV column #(\d+): .*conversion error to (\w+)")
#: What a column becomes when a later slice does not fit the type inferred so far.
_WIDER = {"int64": pa.float64(), "null": pa.float64(), "double": pa.string(), "bool": pa.string(), "timestamp": pa.string(), "date32": pa.string()}


def _read_csv(path: Path) -> pa.Table:
    """The CSV as one table, read slice by slice with types kept consistent across slices."""
    import pyarrow.csv as pcsv

    delimiter = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
    parse = pcsv.ParseOptions(delimiter=delimiter)
    forced: dict[str, pa.DataType] = {}
    compressed = path.suffix.lower() in _COMPRESSED
    for _attempt in range(16):
        try:
            if compressed or path.stat().st_size <= _CSV_SLICE:
                return pcsv.read_csv(
                    path, parse_options=parse, read_options=pcsv.ReadOptions(block_size=_CSV_BLOCK),
                    convert_options=pcsv.ConvertOptions(column_types=forced),
                )
            return _read_csv_slices(path, parse, forced)
        except pa.ArrowInvalid as exc:
            text = str(exc)
            m = _CONVERSION_RE.search(text)
            if m and m.group(2) in _WIDER and getattr(exc, "loopml_names", None):
                # A later slice holds e.g. '1.5' in a column the first slice typed int64: widen, read again.
                name = exc.loopml_names[int(m.group(1))]  # type: ignore[attr-defined]
                forced[name] = _WIDER[m.group(2)]
                continue
            _raise_csv_error(path, parse, exc)
        except OSError as exc:
            raise DataError(f"{path}: could not read: {exc}") from exc
    raise ValidationError(f"{path}: column types keep changing between parts of the file", field=str(path), rule="csv")


def _check_last_quote_closed(path: Path, table: pa.Table) -> None:
    """Reject a quoted field that never closes: pyarrow reads it to the end of the file.

    Opened in the last column, such a field swallows every later line into the
    last row's last value, so the file ends with ``"`` + that value (quotes
    doubled) and no closing quote. (Opened in another column, the last row comes
    out short and is reported as ragged.) Only the file's tail is read.
    """
    if table.num_rows == 0 or table.num_columns == 0 or not pa.types.is_string(table.schema.field(-1).type):
        return
    value = table.column(-1)[-1].as_py()
    if not value:
        return
    raw = ('"' + value.replace('"', '""')).encode()
    size = path.stat().st_size
    if size < len(raw):
        return
    tail = min(len(raw), 4096)
    try:
        with open(path, "rb") as f:
            f.seek(size - len(raw))
            head = f.read(1)
            f.seek(size - tail)
            end = f.read(tail)
    except OSError as exc:
        raise DataError(f"{path}: could not read: {exc}") from exc
    if head == b'"' and end == raw[-tail:]:
        column = table.column_names[-1]
        raise ValidationError(
            f"{path}: malformed CSV: the quoted value of column '{column}' in data row {table.num_rows} "
            "never closes, so it runs to the end of the file (rule: unterminated_quote)",
            field=column,
            rule="unterminated_quote",
        )


def _raise_csv_error(path: Path, parse: Any, exc: pa.ArrowInvalid) -> None:
    text = str(exc)
    if "Empty CSV file" in text:
        raise ValidationError(f"{path}: the CSV file is empty (no header, no rows)", field="rows", rule="not_empty") from exc
    if "Expected" in text and "columns" in text:
        line = _ragged_line(path, parse)
        at = f" at line {line}" if line else ""
        raise ValidationError(
            f"{path}: malformed CSV{at}: every row must have as many fields as the header "
            f"(rule: ragged_rows; {text.removeprefix('CSV parse error: ')})",
            field=str(path),
            rule="ragged_rows",
        ) from exc
    raise ValidationError(f"{path}: not a readable CSV file: {text}", field=str(path), rule="csv") from exc


def _read_csv_slices(path: Path, parse: Any, forced: dict[str, pa.DataType]) -> pa.Table:
    import pyarrow.csv as pcsv

    tables: list[pa.Table] = []
    names: list[str] | None = None
    types: dict[str, pa.DataType] = dict(forced)
    with open(path, "rb") as f:
        for piece in _line_slices(f):
            if names is None:
                read = pcsv.ReadOptions(block_size=_CSV_BLOCK)
            else:
                read = pcsv.ReadOptions(block_size=_CSV_BLOCK, column_names=names)
            try:
                t = pcsv.read_csv(
                    pa.BufferReader(pa.py_buffer(piece)), parse_options=parse, read_options=read,
                    convert_options=pcsv.ConvertOptions(column_types=types),
                )
            except pa.ArrowInvalid as exc:
                exc.loopml_names = names or []  # type: ignore[attr-defined]
                raise
            if names is None:
                names = t.column_names
                # Later slices use the first slice's types, except all-null columns (still unknown).
                types.update({n: t.schema.field(n).type for n in names if not pa.types.is_null(t.schema.field(n).type)})
            tables.append(t)
    return pa.concat_tables(tables, promote_options="permissive")


def _line_slices(f: Any) -> Any:
    """~64 MB pieces of the file that end on a line break outside any quoted field.

    A line break is inside a quoted field exactly when an odd number of quote
    characters precede it in the file (doubled quotes keep the parity), and
    each piece starts outside quotes, so counting quotes finds safe split
    points without parsing. Pieces are zero-copy views of one read; the tail
    after the cut is read again with the next piece.
    """
    size = _CSV_SLICE
    while True:
        start = f.tell()
        block = f.read(size)
        if not block:
            return
        if len(block) < size:
            yield memoryview(block)
            return
        cut = len(block)
        while True:
            cut = block.rfind(b"\n", 0, cut)
            if cut < 0 or block.count(b'"', 0, cut) % 2 == 0:
                break
        if cut < 0:
            size *= 2  # one line longer than a slice: take a bigger bite
            f.seek(start)
            continue
        f.seek(start + cut + 1)
        yield memoryview(block)[: cut + 1]


def _ragged_line(path: Path, parse: Any) -> int | None:
    """The 1-based line of the first ragged row (a slow single-threaded re-read, only on error)."""
    import pyarrow.csv as pcsv

    found: list[int] = []

    def handler(row: Any) -> str:
        if row.number is not None:
            found.append(int(row.number))
        return "error"

    opts = pcsv.ParseOptions(delimiter=parse.delimiter, invalid_row_handler=handler)
    try:
        pcsv.read_csv(path, parse_options=opts, read_options=pcsv.ReadOptions(use_threads=False))
    except pa.ArrowException:
        pass
    return found[0] if found else None


def _read_parquet(path: Path) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise ValidationError(f"{path}: not a readable Parquet file: {exc}", field=str(path), rule="parquet") from exc


def _hide(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: show only what follows the credentials
        return url.split("@")[-1]


def _read_sql(url: str, query: str) -> SourceData:
    from sqlalchemy import create_engine, exc as sa_exc, text

    shown = _hide(url)
    engine_url = "postgresql+psycopg://" + url[len("postgresql://") :] if url.startswith("postgresql://") else url
    try:
        engine = create_engine(engine_url)
    except ModuleNotFoundError as exc:
        raise MissingExtraError(exc.name or "driver", "postgres", f"SQL source {shown}") from exc
    except sa_exc.ArgumentError as exc:
        raise ValidationError(f"SQL source {shown}: not a valid SQLAlchemy URL: {exc}", field="source", rule="url") from exc
    except sa_exc.NoSuchModuleError as exc:
        raise ValidationError(f"SQL source {shown}: unknown database dialect: {exc}", field="source", rule="url") from exc
    batches: list[pa.Table] = []
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(text(query))
            if not result.returns_rows:
                raise ValidationError(f"SQL source {shown}: the query returns no rows (not a SELECT?)", field="query", rule="select")
            names = list(result.keys())
            for part in result.partitions(100_000):
                columns = list(zip(*part, strict=True)) if part else [[] for _ in names]
                batches.append(pa.table({n: pa.array(list(c)) for n, c in zip(names, columns, strict=True)}))
            if not batches:
                batches.append(pa.table({n: pa.array([], pa.null()) for n in names}))
    except (ValidationError, MissingExtraError):
        raise
    except sa_exc.SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)
        first = (str(orig) if orig is not None else str(exc)).strip().splitlines()[0][:300]
        raise DataError(f"SQL source {shown}: the query failed: {first}") from exc
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValidationError(f"SQL source {shown}: a column has mixed value types: {exc}", field="query", rule="mixed_types") from exc
    finally:
        engine.dispose()
    try:
        table = pa.concat_tables(batches, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValidationError(f"SQL source {shown}: a column changes type between rows: {exc}", field="query", rule="mixed_types") from exc
    qhash = hashlib.sha256(query.encode()).hexdigest()[:16]
    info = {"kind": "sql", "url": shown, "query": query}
    return SourceData(table, info, f"sql:{shown}#{qhash}")
