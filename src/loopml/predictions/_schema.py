"""What the log stores: prediction records turned into one Arrow table per batch.

The request path hands over records untouched (``submit`` only appends); this
module runs on the writer thread and does the work there: features are
flattened into ``f_<name>`` columns, outputs into ``prediction`` and
``proba_<class>``, and anything that does not fit a flat typed column goes to
``inputs_json`` / ``outputs_json`` so no request is ever dropped for its shape.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pyarrow as pa

__all__ = [
    "CORE_COLUMNS",
    "PredictionSink",
    "TS_TYPE",
    "merge_columnar",
    "records_to_table",
    "safe_endpoint",
]

TS_TYPE = pa.timestamp("us", tz="UTC")

#: Columns every log file has, in this order, before features and outputs.
CORE_COLUMNS: dict[str, pa.DataType] = {
    "request_id": pa.string(),
    "row": pa.int32(),
    "ts": TS_TYPE,
    "endpoint": pa.string(),
    "model_name": pa.string(),
    "model_version": pa.int64(),
    "latency_ms": pa.float64(),
    "status": pa.int64(),
    "error": pa.string(),
}

_FIELDS = tuple(CORE_COLUMNS)
_SAFE_RE = re.compile(r"[^A-Za-z0-9_.-]")
_MISSING = object()


@runtime_checkable
class PredictionSink(Protocol):
    """Where serving hands its records (structural twin of ``loopml.serve.PredictionSink``)."""

    def submit(self, records: Any) -> None:
        """Queue records; must not block or serialize on the caller's thread."""

    def close(self) -> None:
        """Flush everything queued and stop."""


try:  # orjson is faster; the stdlib is enough when the serve extra is absent
    import orjson

    def _dumps(value: Any) -> str:
        return orjson.dumps(value, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY).decode()
except ImportError:  # pragma: no cover - exercised only without the serve extra

    def _dumps(value: Any) -> str:
        return json.dumps(value, default=_json_default, separators=(",", ":"))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value)


def safe_endpoint(name: Any) -> str:
    """An endpoint name usable as a folder name (serving checks names; this is a backstop)."""
    text = str(name) if name not in (None, "") else "default"
    return _SAFE_RE.sub("_", text)[:128]


def _safe_col(name: Any) -> str:
    return _SAFE_RE.sub("_", str(name))


# --------------------------------------------------------------------- getters


def _getter(sample: Any) -> Any:
    if isinstance(sample, Mapping):
        return lambda rec, key: rec.get(key)
    return lambda rec, key: getattr(rec, key, None)


def _column(records: Sequence[Any], key: str, get: Any) -> list[Any]:
    return [get(r, key) for r in records]


# ------------------------------------------------------------------ converters


def _ts_array(values: Any, n: int) -> pa.Array:
    """Aware datetimes, naive ones (taken as UTC), epoch seconds, or one shared value."""
    if not isinstance(values, (list, tuple, np.ndarray, pa.Array)):
        values = [values] * n
    if isinstance(values, pa.Array):
        return values.cast(TS_TYPE)
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        return pa.array(values.astype("datetime64[us]"), type=pa.timestamp("us")).cast(TS_TYPE)
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":  # epoch seconds, in one pass
        secs = values.astype(np.float64)
        bad = ~np.isfinite(secs)
        if bad.any():  # a row without a usable time is logged at writer time
            secs = np.where(bad, datetime.now(UTC).timestamp(), secs)
        return pa.array(np.round(secs * 1_000_000).astype(np.int64), type=pa.int64()).cast(TS_TYPE)
    out: list[int | None] = []
    now = None
    for v in values:
        if isinstance(v, datetime):
            out.append(_dt_us(v))
        elif isinstance(v, (int, float, np.integer, np.floating)) and not (isinstance(v, float) and math.isnan(v)):
            out.append(int(float(v) * 1_000_000))
        elif isinstance(v, str):
            try:
                out.append(_dt_us(datetime.fromisoformat(v)))
            except ValueError:
                out.append(None)
        else:
            out.append(None)
        if out[-1] is None:  # a record without a usable time is logged at writer time
            now = now or _dt_us(datetime.now(UTC))
            out[-1] = now
    return pa.array(out, type=pa.int64()).cast(TS_TYPE)


def _dt_us(v: datetime) -> int:
    if v.tzinfo is None:
        v = v.replace(tzinfo=UTC)
    delta = v - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _broadcast(value: Any, n: int) -> Any:
    if isinstance(value, (list, tuple, np.ndarray, pa.Array)):
        return value
    return [value] * n


def _typed(values: Any, typ: pa.DataType, n: int) -> pa.Array:
    values = _broadcast(values, n)
    try:
        return pa.array(values, type=typ, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        if pa.types.is_string(typ):
            return pa.array([None if v is None else str(v) for v in values], type=typ)
        if pa.types.is_integer(typ):
            return pa.array([_to_int(v) for v in values], type=typ)
        return pa.array([_to_float(v) for v in values], type=typ)


def _to_int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError, OverflowError):
        return None


def _to_float(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _flat_array(values: Any) -> pa.Array | None:
    """A flat typed array, or None when the values need the JSON fallback."""
    try:
        arr = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError, OverflowError):
        return None
    typ = arr.type
    if pa.types.is_nested(typ) or pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
        return None
    if pa.types.is_null(typ):
        return arr.cast(pa.string())
    if pa.types.is_timestamp(typ) and typ.tz is None:
        return arr.cast(pa.timestamp("us")).cast(TS_TYPE)
    if pa.types.is_dictionary(typ):
        return arr.cast(typ.value_type)
    return arr


# ----------------------------------------------------------------- the columns

_SEQ = (list, tuple, np.ndarray, pa.Array, pa.ChunkedArray)
_PRED_KEYS = ("predict", "prediction", "predictions", "label")
_PROBA_KEYS = ("predict_proba", "proba", "probabilities", "probability")
_OUT_KEYS = {*_PRED_KEYS, *_PROBA_KEYS, "classes"}


def _is_seq(value: Any) -> bool:
    return isinstance(value, _SEQ) and not (isinstance(value, np.ndarray) and value.ndim == 0)


def _n_rows(inputs: Any, outputs: Any) -> int:
    """Rows in one request: from its inputs, else its outputs, else one (a failed request)."""
    if isinstance(inputs, Mapping):
        for values in inputs.values():
            return len(values) if _is_seq(values) else 1
        return 1
    if hasattr(inputs, "num_rows"):
        return int(inputs.num_rows)
    if hasattr(inputs, "shape") and hasattr(inputs, "columns"):
        return int(inputs.shape[0])
    if isinstance(inputs, (list, tuple)):
        return len(inputs) or 1
    if isinstance(outputs, Mapping):
        for key in _PRED_KEYS:
            pred = outputs.get(key)
            if pred is not None:
                return len(pred) if _is_seq(pred) else 1
    return 1


def _input_block(inputs: Any, n: int) -> tuple[dict[str, Any], list[str | None] | None]:
    """One request's inputs as name -> n values, plus per-row JSON for what is not a mapping."""
    if inputs is None:
        return {}, None
    if isinstance(inputs, pa.Table):
        return {name: inputs.column(name) for name in inputs.column_names}, None
    if hasattr(inputs, "columns") and hasattr(inputs, "dtypes"):  # a pandas DataFrame
        return {str(c): inputs[c].to_numpy() for c in inputs.columns}, None
    if isinstance(inputs, Mapping):
        first = next(iter(inputs.values()), None)
        if _is_seq(first):
            return dict(inputs), None
        return {k: [v] for k, v in inputs.items()}, None  # one row as a mapping of scalars
    if isinstance(inputs, (list, tuple)):
        if all(isinstance(row, Mapping) for row in inputs):
            keys: dict[str, None] = {}
            for row in inputs:
                keys.update(dict.fromkeys(row))
            return {k: [row.get(k) for row in inputs] for k in keys}, None
        return {}, [None if row is None else _dumps(row) for row in inputs]
    return {}, [_dumps(inputs)] + [None] * (n - 1)


def _output_block(outputs: Any, n: int) -> tuple[Any, dict[Any, Any] | None, list[str | None] | None]:
    """One request's outputs: predictions (n), class -> probabilities (n), per-row JSON of the rest."""
    if outputs is None:
        return None, None, None
    if not isinstance(outputs, Mapping):
        if _is_seq(outputs):
            return outputs, None, None
        return [outputs.item() if isinstance(outputs, np.generic) else outputs], None, None
    pred = next((outputs[k] for k in _PRED_KEYS if k in outputs), None)
    if pred is not None and not _is_seq(pred):
        pred = [pred.item() if isinstance(pred, np.generic) else pred]
    proba_raw = next((outputs[k] for k in _PROBA_KEYS if k in outputs), None)
    proba: dict[Any, Any] | None = None
    if isinstance(proba_raw, Mapping):
        proba = {c: (v if _is_seq(v) else [v]) for c, v in proba_raw.items()}
    elif proba_raw is not None:
        matrix = np.asarray(proba_raw, dtype=float)
        if matrix.ndim == 1:
            matrix = matrix.reshape(1, -1) if n == 1 else matrix.reshape(-1, 1)
        classes = outputs.get("classes")
        classes = list(classes) if classes is not None else list(range(matrix.shape[1]))
        columns = np.ascontiguousarray(matrix.T)  # contiguous per class: no strided copy per column
        proba = {c: columns[j] for j, c in enumerate(classes)}
    rest = {k: v for k, v in outputs.items() if k not in _OUT_KEYS}
    extra = [_dumps(rest)] + [None] * (n - 1) if rest else None
    return pred, proba, extra


def _concat(parts: list[tuple[int, Any]], sizes: list[int], total: int) -> Any:
    """Per-request pieces of one column (``(request index, values)``) as one column."""
    if len(parts) == len(sizes) and all(isinstance(v, np.ndarray) and v.dtype.kind in "biuf" for _, v in parts):
        return np.concatenate([v for _, v in parts]) if len(parts) > 1 else parts[0][1]
    out: list[Any] = [None] * total
    offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    for i, values in parts:
        a = offsets[i]
        seq = values.to_pylist() if hasattr(values, "to_pylist") else list(values)
        out[a : a + len(seq)] = seq[: sizes[i]]
    return out


def _json_rows(parts: list[tuple[int, list[str | None]]], sizes: list[int], total: int) -> list[str | None] | None:
    if not parts:
        return None
    return _concat([(i, v) for i, v in parts], sizes, total)


def _columns(records: Sequence[Any], get: Any) -> tuple[list[int], dict[str, pa.Array], Any, dict[str, pa.Array], Any]:
    """Rows per request, features, inputs JSON, outputs, outputs JSON for a list of requests."""
    sizes: list[int] = []
    feat_parts: dict[str, list[tuple[int, Any]]] = {}
    in_json: list[tuple[int, Any]] = []
    pred_parts: list[tuple[int, Any]] = []
    proba_parts: dict[Any, list[tuple[int, Any]]] = {}
    out_json: list[tuple[int, Any]] = []
    matrices = _matrix_fast_path(records, get)
    for i, rec in enumerate(records):
        inputs = get(rec, "inputs")
        outputs = get(rec, "outputs")
        n = _n_rows(inputs, outputs)
        sizes.append(n)
        if matrices is None:
            cols, js = _input_block(inputs, n)
            for name, values in cols.items():
                feat_parts.setdefault(name, []).append((i, values))
            if js is not None:
                in_json.append((i, js))
        pred, proba, extra = _output_block(outputs, n)
        if pred is not None:
            pred_parts.append((i, pred))
        if proba:
            for cls, values in proba.items():
                proba_parts.setdefault(cls, []).append((i, values))
        if extra is not None:
            out_json.append((i, extra))
    total = sum(sizes)
    feats: dict[str, pa.Array] = {}
    odd: dict[str, Any] = {}
    if matrices is not None:
        names, matrix = matrices
        # One transposed copy makes every column contiguous: Arrow then wraps each without a
        # per-element strided copy (30 columns of a row-major matrix cost ~5x more otherwise).
        columns = np.ascontiguousarray(matrix.T)
        for j, name in enumerate(names):
            feats[f"f_{_safe_col(name)}"] = pa.array(columns[j])
    for name, parts in feat_parts.items():
        values = _concat(parts, sizes, total)
        arr = _flat_array(values)
        if arr is None or len(arr) != total:
            odd[name] = values
        else:
            feats[f"f_{_safe_col(name)}"] = arr
    inputs_json = _json_rows(in_json, sizes, total)
    if odd:  # columns that would not flatten go to the JSON column, per row
        inputs_json = list(inputs_json) if inputs_json is not None else [None] * total
        lists = {k: (v.tolist() if isinstance(v, np.ndarray) else list(v)) for k, v in odd.items()}
        for r in range(total):
            blob = {k: lists[k][r] for k in lists if r < len(lists[k]) and lists[k][r] is not None}
            if blob:
                inputs_json[r] = _dumps(blob) if inputs_json[r] is None else inputs_json[r]
    outs: dict[str, pa.Array] = {}
    if pred_parts:
        values = _concat(pred_parts, sizes, total)
        arr = _flat_array(values)
        outs["prediction"] = arr if arr is not None and len(arr) == total else pa.array(
            [None if v is None else _dumps(v) for v in values], type=pa.string())
    for cls, parts in proba_parts.items():
        outs[f"proba_{_safe_col(cls)}"] = _typed(_concat(parts, sizes, total), pa.float64(), total)
    return sizes, feats, inputs_json, outs, _json_rows(out_json, sizes, total)


def _matrix_fast_path(records: Sequence[Any], get: Any) -> tuple[Sequence[str], np.ndarray] | None:
    """Serving's all-numeric requests: stack their matrices once instead of column by column."""
    first = get(records[0], "inputs")
    names = getattr(first, "_names", None)
    if names is None or not hasattr(first, "matrix"):
        return None
    blocks = []
    for rec in records:
        inputs = get(rec, "inputs")
        if getattr(inputs, "_names", None) is not names and list(getattr(inputs, "_names", ())) != list(names):
            return None
        blocks.append(inputs.matrix)
    return names, (np.vstack(blocks) if len(blocks) > 1 else blocks[0])


def _assemble(core: dict[str, pa.Array], feats: dict[str, pa.Array], inputs_json: Any,
              outs: dict[str, pa.Array], outputs_json: Any, n: int) -> pa.Table:
    names: list[str] = list(core)
    arrays: list[pa.Array] = list(core.values())
    for name, arr in feats.items():
        names.append(name)
        arrays.append(arr)
    names.append("inputs_json")
    arrays.append(pa.array(inputs_json if inputs_json is not None else [None] * n, type=pa.string()))
    if "prediction" not in outs:
        outs = {"prediction": pa.nulls(n, pa.string()), **outs}
    for name, arr in outs.items():
        names.append(name)
        arrays.append(arr)
    names.append("outputs_json")
    arrays.append(pa.array(outputs_json if outputs_json is not None else [None] * n, type=pa.string()))
    return pa.Table.from_arrays(arrays, names=names)


def _core(values: dict[str, list[Any]], sizes: list[int], total: int) -> dict[str, pa.Array]:
    """Per-request fields repeated over each request's rows, plus ``row`` (index in the request)."""
    ones = all(s == 1 for s in sizes)
    rep = None if ones else np.asarray(sizes)

    def col(name: str, typ: pa.DataType, conv: Any = None) -> pa.Array:
        vals = values[name] if conv is None else [conv(v) for v in values[name]]
        arr = _typed(vals, typ, len(sizes)) if name != "ts" else _ts_array(vals, len(sizes))
        return arr if rep is None else arr.take(pa.array(np.repeat(np.arange(len(sizes)), rep)))

    core = {
        "request_id": col("request_id", pa.string()),
        "row": pa.array(np.zeros(total, dtype=np.int32) if ones else
                        np.concatenate([np.arange(s, dtype=np.int32) for s in sizes])),
        "ts": col("ts", TS_TYPE),
        "endpoint": col("endpoint", pa.string(), safe_endpoint),
        "model_name": col("model_name", pa.string()),
        "model_version": col("model_version", pa.int64()),
        "latency_ms": col("latency_ms", pa.float64()),
        "status": col("status", pa.int64()),
        "error": col("error", pa.string()),
    }
    return core


def _from_records(records: Sequence[Any]) -> pa.Table:
    get = _getter(records[0])
    sizes, feats, inputs_json, outs, outputs_json = _columns(records, get)
    total = sum(sizes)
    values = {f: [get(r, f) for r in records] for f in _FIELDS}
    return _assemble(_core(values, sizes, total), feats, inputs_json, outs, outputs_json, total)


def _core_column(value: Any, typ: pa.DataType, n: int) -> pa.Array:
    """One core column of a columnar batch: a shared scalar is repeated, a sequence converted once."""
    if _is_seq(value):
        return _typed(value, typ, n)
    if value is None:
        return pa.nulls(n, typ)
    return _typed([value], typ, 1).take(pa.array(np.zeros(n, dtype=np.int32)))


def _from_columnar(batch: Mapping[str, Any]) -> pa.Table:
    """A columnar batch: every field a per-row sequence or one shared scalar; one conversion per column."""
    n = len(batch["request_id"])
    core: dict[str, pa.Array] = {}
    for name, typ in CORE_COLUMNS.items():
        value = batch.get(name)
        if name == "row":
            core[name] = _typed(value, pa.int32(), n) if value is not None else pa.array(np.zeros(n, dtype=np.int32))
        elif name == "ts":
            core[name] = _ts_array(value, n)
        elif name == "endpoint":
            value = [safe_endpoint(v) for v in value] if _is_seq(value) else safe_endpoint(value)
            core[name] = _core_column(value, typ, n)
        else:
            core[name] = _core_column(value, typ, n)
    rec = {"inputs": batch.get("inputs"), "outputs": batch.get("outputs")}
    _, feats, inputs_json, outs, outputs_json = _columns([rec], lambda r, k: r.get(k))
    return _assemble(core, feats, inputs_json, outs, outputs_json, n)


class _Stacked(Mapping[str, np.ndarray]):
    """Merged matrix inputs of several batches (same feature names): a column view, no copy per column."""

    __slots__ = ("_names", "matrix")

    def __init__(self, names: Sequence[str], matrix: np.ndarray) -> None:
        self._names = names
        self.matrix = matrix

    def __getitem__(self, key: str) -> np.ndarray:
        return self.matrix[:, list(self._names).index(key)]

    def __iter__(self) -> Any:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class _Mismatch(Exception):
    """Two columnar batches that cannot share one table (different features or outputs)."""


def _signature(batch: Mapping[str, Any]) -> tuple[Any, ...]:
    """Batches with equal signatures merge into one (same keys, features, output keys and classes)."""
    inputs = batch.get("inputs")
    names = getattr(inputs, "_names", None)
    feats = tuple(names) if names is not None and hasattr(inputs, "matrix") else ("?", id(inputs))
    outputs = batch.get("outputs")
    outs: tuple[Any, ...] = ()
    if isinstance(outputs, Mapping):
        classes = outputs.get("classes")
        outs = (tuple(sorted(map(str, outputs))), tuple(classes) if classes is not None else None)
    return tuple(sorted(batch)), feats, outs


def _cat_field(values: list[Any], sizes: list[int]) -> Any:
    """One field of several batches as one: a shared scalar stays shared, else per-row values concatenated."""
    first = values[0]
    if not any(_is_seq(v) for v in values):
        if all(v == first for v in values):
            return first
    if all(isinstance(v, np.ndarray) for v in values):
        return np.concatenate(values)
    out: list[Any] = []
    for v, n in zip(values, sizes, strict=True):
        out.extend(v if _is_seq(v) else [v] * n)
    return out


def merge_columnar(batches: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Several columnar batches of one signature (see ``_signature``) as one.

    Why: the writer converts one batch per column with one Arrow call, so a
    second of traffic becomes a few dozen calls instead of a few per request.

    Raises:
        _Mismatch: the batches do not fit one table after all.
    """
    if len(batches) == 1:
        return dict(batches[0])
    sizes = [len(b["request_id"]) for b in batches]
    merged: dict[str, Any] = {}
    for key in batches[0]:
        values = [b[key] for b in batches]
        if key == "inputs":
            names = values[0]._names
            # stacked column-major: the conversion then reads each feature as one contiguous run
            mats = [v.matrix for v in values]
            columns = np.empty((mats[0].shape[1], sum(m.shape[0] for m in mats)), dtype=np.result_type(*mats))
            np.concatenate([m.T for m in mats], axis=1, out=columns)
            merged[key] = _Stacked(names, columns.T)
        elif key == "outputs":
            out: dict[str, Any] = {}
            for name in values[0]:
                parts = [v[name] for v in values]
                if name == "classes":
                    out[name] = parts[0]
                elif all(isinstance(p, np.ndarray) and p.ndim >= 1 for p in parts):
                    if len({p.shape[1:] for p in parts}) != 1:
                        raise _Mismatch(name)
                    out[name] = np.concatenate(parts)
                else:
                    raise _Mismatch(name)
            merged[key] = out
        else:
            merged[key] = _cat_field(values, sizes)
    return merged


def _is_columnar(item: Any) -> bool:
    return isinstance(item, Mapping) and isinstance(item.get("request_id"), (list, tuple, np.ndarray, pa.Array))


def records_to_table(item: Any) -> pa.Table | None:
    """One submitted item (a record, a list of records, or a columnar dict) as a table.

    Records are ``PredictionRecord``-like objects or mappings with the same
    keys. A columnar dict carries ``request_id`` as a sequence, per-row
    sequences or shared scalars for the other fields, ``inputs`` as a mapping
    of column -> values (or a DataFrame / Arrow table), and ``outputs`` as
    ``{"prediction": values, "proba": {class: values}}``.
    """
    if item is None:
        return None
    if _is_columnar(item):
        return _from_columnar(item) if len(item["request_id"]) else None
    if isinstance(item, (list, tuple)):
        return _from_records(item) if item else None
    return _from_records([item])


def fallback_table(item: Any) -> pa.Table | None:
    """The last resort for a batch that would not convert: one JSON blob per record."""
    if _is_columnar(item):
        n = len(item["request_id"])
        rows = [{k: (v[i] if isinstance(v, (list, tuple, np.ndarray)) and len(v) == n else v)
                 for k, v in item.items()} for i in range(n)]
    elif isinstance(item, (list, tuple)):
        rows = list(item)
    else:
        rows = [item]
    if not rows:
        return None
    get = _getter(rows[0]) if rows else None
    n = len(rows)
    core = {
        "request_id": pa.array([_str_or_none(get(r, "request_id")) for r in rows], type=pa.string()),
        "row": pa.array(np.zeros(n, dtype=np.int32)),
        "ts": _ts_array([get(r, "ts") for r in rows], n),
        "endpoint": pa.array([safe_endpoint(get(r, "endpoint")) for r in rows], type=pa.string()),
        "model_name": pa.array([_str_or_none(get(r, "model_name")) for r in rows], type=pa.string()),
        "model_version": pa.array([_to_int(get(r, "model_version")) for r in rows], type=pa.int64()),
        "latency_ms": pa.array([_to_float(get(r, "latency_ms")) for r in rows], type=pa.float64()),
        "status": pa.array([_to_int(get(r, "status")) for r in rows], type=pa.int64()),
        "error": pa.array([_str_or_none(get(r, "error")) for r in rows], type=pa.string()),
    }
    return _assemble(core, {}, [_dumps(get(r, "inputs")) for r in rows], {},
                     [_dumps(get(r, "outputs")) for r in rows], n)


def _str_or_none(v: Any) -> str | None:
    return None if v is None else str(v)
