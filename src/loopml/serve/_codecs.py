"""Request bodies -> :class:`Frame`; results -> response bodies.

Two wire formats share one pipeline:

* Open Inference Protocol v2 (KServe, MLServer, Triton): ``inputs`` is a list
  of tensors ``{name, shape, datatype, data}``: either one 2-D numeric tensor
  (``[n, k]``, columns in contract order) or one tensor per feature (KServe /
  MLServer pandas codec: shape ``[n]`` or ``[n, 1]``, ``BYTES`` for strings).
* MLflow ``/invocations`` (2.x/3.x): ``dataframe_split``, ``dataframe_records``,
  ``instances``, ``inputs``; answered as ``{"predictions": [...]}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from loopml.kernel.exceptions import BadRequest
from loopml.serve._validation import Contract, Frame

__all__ = ["INVOCATION_KEYS", "OIP_DATATYPES", "Parsed", "parse_invocations", "parse_oip"]

OIP_DATATYPES = frozenset(
    {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
     "FP16", "FP32", "FP64", "BYTES"}
)
OUTPUT_NAMES = ("predict", "predict_proba")
INVOCATION_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


@dataclass(slots=True)
class Parsed:
    """A parsed request: its rows, plus the protocol options that shape the answer."""

    frame: Frame
    oip_id: str | None = None
    outputs: tuple[str, ...] | None = None
    parameters: dict[str, Any] | None = None


def _bad(message: str, field: str | None, rule: str, status: int = 400) -> BadRequest:
    return BadRequest(message, field=field, rule=rule, status=status)


def _check_rows(n: int, max_rows: int) -> None:
    if n > max_rows:
        raise _bad(f"the request has {n} rows; the limit is {max_rows} rows per request",
                   "rows", "max_rows", status=413)


def _rows_of(value: Any) -> int:
    if isinstance(value, list):
        return len(value)
    if isinstance(value, dict) and value:
        first = next(iter(value.values()))
        return len(first) if isinstance(first, list) else 1
    return 0


# ---------------------------------------------------------------- MLflow


def parse_invocations(payload: Any, contract: Contract, max_rows: int) -> Parsed:
    """An MLflow scoring-server body."""
    if not isinstance(payload, dict):
        raise _bad(f"the body must be a JSON object with one of {list(INVOCATION_KEYS)}", None, "format")
    params = payload.get("params")
    if "dataframe_split" in payload:
        split = payload["dataframe_split"]
        if not isinstance(split, dict) or "data" not in split:
            raise _bad("'dataframe_split' must be an object with 'columns' and 'data'", "dataframe_split", "format")
        _check_rows(_rows_of(split["data"]), max_rows)
        if "columns" not in split:
            return Parsed(contract.from_rows(split["data"], "dataframe_split.data"), parameters=params)
        return Parsed(contract.from_split(split["columns"], split["data"], "dataframe_split"), parameters=params)
    if "dataframe_records" in payload:
        records = payload["dataframe_records"]
        _check_rows(_rows_of(records), max_rows)
        return Parsed(contract.from_records(records, "dataframe_records"), parameters=params)
    for key in ("instances", "inputs"):
        if key in payload:
            value = payload[key]
            _check_rows(_rows_of(value), max_rows)
            if isinstance(value, dict):
                return Parsed(contract.from_columns(value, key), parameters=params)
            if isinstance(value, list) and value and isinstance(value[0], dict):
                return Parsed(contract.from_records(value, key), parameters=params)
            return Parsed(contract.from_rows(value, key), parameters=params)
    if "columns" in payload and "data" in payload:  # MLflow 1.x pandas-split body
        _check_rows(_rows_of(payload["data"]), max_rows)
        return Parsed(contract.from_split(payload["columns"], payload["data"], "body"), parameters=params)
    raise _bad(f"the body must have one of {list(INVOCATION_KEYS)}; got keys {sorted(payload)[:10]}",
               None, "format")


# ---------------------------------------------------------------- OIP v2


def parse_oip(payload: Any, contract: Contract, max_rows: int) -> Parsed:
    """An OIP v2 inference request."""
    if not isinstance(payload, dict):
        raise _bad("the body must be a JSON object with 'inputs' (a list of tensors)", None, "format")
    tensors = payload.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise _bad("'inputs' must be a non-empty list of tensors {name, shape, datatype, data}", "inputs", "format")
    req_id = payload.get("id")
    if req_id is not None and not isinstance(req_id, str):
        raise _bad("'id' must be a string", "id", "format")
    outputs = _requested_outputs(payload.get("outputs"))
    params = payload.get("parameters")
    for i, t in enumerate(tensors):
        _check_tensor(t, i)
    first = tensors[0]
    k = len(contract.names)
    single = len(tensors) == 1 and (
        len(first["shape"]) == 2 and (first["shape"][1] != 1 or k == 1) or first["name"] not in contract.index
    )
    if single:
        shape = first["shape"]
        if len(shape) == 1 and k == 1:
            shape = [shape[0], 1]
        if len(shape) != 2:
            raise _bad(f"'inputs[0]' ({first['name']}) has shape {shape}; expected [n, {k}] "
                       f"or one tensor per feature {contract.names}", "inputs[0].shape", "shape")
        _check_rows(shape[0], max_rows)
        if first["datatype"] == "BYTES":
            if contract.all_numeric:
                raise _bad(f"'inputs[0]' ({first['name']}): datatype BYTES, but every feature is numeric; "
                           "send FP32/FP64", "inputs[0].datatype", "type")
            arr = np.array(first["data"], dtype=object)
        else:
            try:
                arr = np.array(first["data"], dtype=np.float64)
            except (TypeError, ValueError):
                raise _bad(f"'inputs[0]' ({first['name']}): datatype {first['datatype']}, but 'data' holds "
                           "values that are not numbers", "inputs[0].data", "type") from None
        if arr.size != shape[0] * shape[1]:
            raise _bad(f"'inputs[0]' ({first['name']}): shape {shape} needs {shape[0] * shape[1]} values, "
                       f"'data' has {arr.size}", "inputs[0].data", "shape")
        return Parsed(contract.from_matrix(arr.reshape(shape), "inputs[0]"), req_id, outputs, params)
    n = first["shape"][0]
    _check_rows(n, max_rows)
    cols: dict[str, Any] = {}
    for i, t in enumerate(tensors):
        if t["shape"][0] != n or (len(t["shape"]) == 2 and t["shape"][1] != 1) or len(t["shape"]) > 2:
            raise _bad(f"'inputs[{i}]' ({t['name']}) has shape {t['shape']}; every per-feature tensor "
                       f"must have shape [{n}] or [{n}, 1]", f"inputs[{i}].shape", "shape")
        data = t["data"]
        if len(data) != n and not (isinstance(data, list) and _flat_len(data) == n):
            raise _bad(f"'inputs[{i}]' ({t['name']}): shape {t['shape']} needs {n} values, 'data' has "
                       f"{_flat_len(data)}", f"inputs[{i}].data", "shape")
        cols[t["name"]] = data
    return Parsed(contract.from_columns(cols, "inputs", n), req_id, outputs, params)


def _flat_len(data: Any) -> int:
    return sum(len(v) if isinstance(v, list) else 1 for v in data) if isinstance(data, list) else 0


def _check_tensor(t: Any, i: int) -> None:
    where = f"inputs[{i}]"
    if not isinstance(t, dict):
        raise _bad(f"'{where}' must be a tensor object {{name, shape, datatype, data}}", where, "format")
    for key in ("name", "shape", "datatype", "data"):
        if key not in t:
            raise _bad(f"'{where}' lacks '{key}' (a tensor needs name, shape, datatype, data)",
                       f"{where}.{key}", "missing")
    shape = t["shape"]
    if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise _bad(f"'{where}.shape' must be a list of non-negative integers, got {shape!r}"[:200],
                   f"{where}.shape", "format")
    if t["datatype"] not in OIP_DATATYPES:
        raise _bad(f"'{where}.datatype' {t['datatype']!r} is not one of {sorted(OIP_DATATYPES)}"[:300],
                   f"{where}.datatype", "datatype")
    if not isinstance(t["data"], list):
        raise _bad(f"'{where}.data' must be a list", f"{where}.data", "format")


def _requested_outputs(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _bad("'outputs' must be a list of {name}", "outputs", "format")
    names = []
    for o in value:
        name = o.get("name") if isinstance(o, dict) else None
        if name not in OUTPUT_NAMES:
            raise _bad(f"requested output {name!r} is not one of {list(OUTPUT_NAMES)}", "outputs", "outputs")
        names.append(name)
    return tuple(names)
