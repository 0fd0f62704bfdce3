"""The serving-side contract checker: lean, vectorised, one batch at a time.

It follows the contract JSON of CONTRIBUTING.md (``loopml.validate`` owns the
full report-producing validator; this one only answers "may this row be
scored, and if not, which field broke which rule"). Two halves:

* request time (event loop): JSON values -> a :class:`Frame` of numpy arrays;
  structure and type errors (missing field, string in a numeric field, wrong
  width) are found here, since the conversion has to happen anyway;
* batch time (model thread): value rules (nullable, min/max, integer,
  unseen categories) checked with a handful of numpy calls for the whole
  batch; only a failing row pays for a readable message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loopml.kernel.exceptions import BadRequest, RegistryError

__all__ = ["ColumnSpec", "Contract", "Frame", "combine_frames"]

_NUMERIC = frozenset({"int", "float", "bool"})
_TYPES = frozenset({"int", "float", "bool", "string", "category", "datetime"})
_NULL_CODE = -1
_UNSEEN_CODE = -2


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One feature of the contract."""

    name: str
    type: str = "float"
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    categories: tuple[Any, ...] | None = None
    unseen: str = "reject"

    @property
    def numeric(self) -> bool:
        return self.type in _NUMERIC


class Frame:
    """The rows of one request (or one batch), in contract column order.

    ``matrix`` (n, k) float64 when every feature is numeric, else ``columns``
    (name -> 1-D array: float64 for numeric features, object otherwise).
    """

    __slots__ = ("columns", "matrix", "n")

    def __init__(self, n: int, matrix: np.ndarray | None = None, columns: dict[str, np.ndarray] | None = None):
        self.n = n
        self.matrix = matrix
        self.columns = columns


def _bad(message: str, field_name: str | None, rule: str, status: int = 400) -> BadRequest:
    return BadRequest(message, field=field_name, rule=rule, status=status)


def _type_name(value: Any) -> str:
    return {str: "string", bool: "boolean", dict: "object", list: "array"}.get(type(value), type(value).__name__)


@dataclass
class Contract:
    """A compiled contract: column specs plus the arrays the batch checks need."""

    specs: list[ColumnSpec]
    as_frame: bool
    known: bool = True
    names: list[str] = field(init=False)
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.names = [s.name for s in self.specs]
        self.index = {n: i for i, n in enumerate(self.names)}
        self.all_numeric = all(s.numeric for s in self.specs)
        self.numeric_pos = [i for i, s in enumerate(self.specs) if s.numeric]
        self.numeric_names = [self.names[i] for i in self.numeric_pos]
        num = [self.specs[i] for i in self.numeric_pos]
        self.not_nullable = np.array([not s.nullable for s in num], dtype=bool)
        self.check_null = bool(self.not_nullable.any())
        self.lo = np.array([-np.inf if s.min is None else s.min for s in num], dtype=np.float64)
        self.hi = np.array([np.inf if s.max is None else s.max for s in num], dtype=np.float64)
        self.check_range = bool(np.isfinite(self.lo).any() or np.isfinite(self.hi).any())
        self.int_pos = np.array([j for j, s in enumerate(num) if s.type in ("int", "bool")], dtype=np.intp)
        self.other = [s for s in self.specs if not s.numeric]
        self.luts = {
            s.name: {**{c: i for i, c in enumerate(s.categories)}, None: _NULL_CODE}
            for s in self.other
            if s.type == "category" and s.categories is not None
        }

    # ------------------------------------------------------------------ build

    @classmethod
    def for_model(cls, signature: Mapping[str, Any] | None, estimator: Any) -> Contract:
        """The contract a served model checks requests against.

        Column order follows the estimator's ``feature_names_in_`` when it has
        one (scikit-learn checks the order), else the signature's order.
        """
        feature_names = getattr(estimator, "feature_names_in_", None)
        wants_frame = feature_names is not None
        if signature and signature.get("columns"):
            cols: dict[str, Any] = dict(signature["columns"])
            order = [str(n) for n in feature_names] if wants_frame else list(cols)
            missing = [n for n in order if n not in cols]
            if missing:
                raise RegistryError(
                    f"the model needs features {missing}, which its signature does not describe"
                )
            specs = [_spec(n, cols[n]) for n in order]
            return cls(specs, as_frame=wants_frame or not all(s.numeric for s in specs))
        if wants_frame:
            return cls([ColumnSpec(str(n)) for n in feature_names], as_frame=True)
        n_in = getattr(estimator, "n_features_in_", None)
        if n_in is not None:
            return cls([ColumnSpec(f"x{i}") for i in range(int(n_in))], as_frame=False)
        return cls([], as_frame=False, known=False)

    # ------------------------------------------------------------- request time

    def from_rows(self, rows: Any, field_name: str) -> Frame:
        """Positional rows (``[[v, ...], ...]``) in contract order."""
        if not isinstance(rows, list) or not rows:
            raise _bad(f"'{field_name}' must be a non-empty list of rows", field_name, "format")
        if self.all_numeric:
            return Frame(len(rows), matrix=self._matrix(rows, field_name))
        k = len(self.names)
        for i, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != k:
                got = len(row) if isinstance(row, list) else _type_name(row)
                raise _bad(
                    f"'{field_name}' row {i}: expected {k} values (features {self.names}), got {got}",
                    field_name, "shape",
                )
        return self.from_columns(dict(zip(self.names, zip(*rows), strict=True)), field_name, len(rows))

    def from_split(self, columns: Any, rows: Any, field_name: str) -> Frame:
        """``dataframe_split``: named columns plus positional rows."""
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise _bad(f"'{field_name}.columns' must be a list of column names", f"{field_name}.columns", "format")
        if columns == self.names or not self.known:
            return self.from_rows(rows, f"{field_name}.data")
        pos = {c: i for i, c in enumerate(columns)}
        self._check_present(pos, field_name)
        if not isinstance(rows, list) or not rows:
            raise _bad(f"'{field_name}.data' must be a non-empty list of rows", f"{field_name}.data", "format")
        if self.all_numeric:
            full = Contract([ColumnSpec(c) for c in columns], as_frame=False)._matrix(rows, f"{field_name}.data")
            return Frame(len(rows), matrix=np.ascontiguousarray(full[:, [pos[n] for n in self.names]]))
        width = len(columns)
        for i, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != width:
                raise _bad(f"'{field_name}.data' row {i}: expected {width} values, one per column",
                           f"{field_name}.data", "shape")
        transposed = list(zip(*rows))
        return self.from_columns({n: transposed[pos[n]] for n in self.names}, field_name, len(rows))

    def from_records(self, records: Any, field_name: str) -> Frame:
        """``dataframe_records`` / ``instances`` as objects: one dict per row."""
        if not isinstance(records, list) or not records:
            raise _bad(f"'{field_name}' must be a non-empty list of records", field_name, "format")
        cols: dict[str, list[Any]] = {}
        for name in self.names:
            try:
                cols[name] = [r[name] for r in records]
            except KeyError:
                row = next(i for i, r in enumerate(records) if name not in r)
                raise _bad(f"field '{name}' is missing in '{field_name}' row {row}; "
                           f"required features: {self.names}", name, "missing") from None
            except TypeError:
                row = next(i for i, r in enumerate(records) if not isinstance(r, dict))
                raise _bad(f"'{field_name}' row {row} must be an object of feature -> value",
                           field_name, "format") from None
        return self.from_columns(cols, field_name, len(records))

    def from_columns(self, cols: Mapping[str, Any], field_name: str, n: int | None = None) -> Frame:
        """Columnar input: feature name -> list of values (MLflow ``inputs`` dict, OIP per-feature tensors)."""
        self._check_present(cols, field_name)
        out: dict[str, np.ndarray] = {}
        for spec in self.specs:
            values = cols[spec.name]
            if isinstance(values, np.ndarray):
                arr = values if values.ndim == 1 else values.reshape(-1)
            elif spec.numeric:
                arr = _numeric_column(values, spec.name)
            else:
                arr = _object_column(values, spec)
            if n is None:
                n = len(arr)
            elif len(arr) != n:
                raise _bad(f"field '{spec.name}' has {len(arr)} values, expected {n} (one per row)",
                           spec.name, "shape")
            out[spec.name] = arr
        if not n:
            raise _bad(f"'{field_name}' holds no rows", field_name, "format")
        if self.all_numeric:
            return Frame(n, matrix=np.column_stack([out[nm].astype(np.float64, copy=False) for nm in self.names]))
        return Frame(n, columns=out)

    def from_matrix(self, matrix: np.ndarray, field_name: str) -> Frame:
        """A 2-D tensor (OIP) in contract order: numeric, or ``BYTES`` (object) for a mixed contract."""
        k = len(self.names)
        if matrix.ndim != 2 or (self.known and matrix.shape[1] != k):
            raise _bad(f"'{field_name}' has shape {list(matrix.shape)}, expected [n, {k}] "
                       f"(features {self.names})", field_name, "shape")
        if matrix.shape[0] == 0:
            raise _bad(f"'{field_name}' holds no rows", field_name, "format")
        if not self.all_numeric:
            # Per column, as for named columns: numbers checked and made float64, other values type-checked.
            cols = {nm: matrix[:, j].tolist() for j, nm in enumerate(self.names)}
            return self.from_columns(cols, field_name, matrix.shape[0])
        return Frame(matrix.shape[0], matrix=matrix.astype(np.float64, copy=False))

    def _check_present(self, present: Mapping[str, Any], field_name: str) -> None:
        for name in self.names:
            if name not in present:
                raise _bad(f"field '{name}' is missing in '{field_name}'; required features: {self.names}",
                           name, "missing")

    def _matrix(self, rows: list[Any], field_name: str) -> np.ndarray:
        k = len(self.names)
        try:
            x = np.array(rows)
        except ValueError:  # ragged rows
            raise self._row_error(rows, field_name) from None
        kind = x.dtype.kind
        if kind in "iub":
            x = x.astype(np.float64)
        elif kind == "O":  # nulls (-> NaN) or nested junk
            try:
                x = np.array(rows, dtype=np.float64)
            except (TypeError, ValueError):
                raise self._row_error(rows, field_name) from None
        elif kind != "f":
            raise self._row_error(rows, field_name)
        if x.ndim != 2 or (self.known and x.shape[1] != k):
            raise self._row_error(rows, field_name)
        return x

    def _row_error(self, rows: list[Any], field_name: str) -> BadRequest:
        """The slow path: find the first offending row/value for the message."""
        k = len(self.names)
        for i, row in enumerate(rows):
            if not isinstance(row, list):
                return _bad(f"'{field_name}' row {i} must be a list of {k} values, got {_type_name(row)}",
                            field_name, "shape")
            if self.known and len(row) != k:
                return _bad(f"'{field_name}' row {i}: expected {k} values (features {self.names}), "
                            f"got {len(row)}", field_name, "shape")
            for j, v in enumerate(row):
                if v is not None and not isinstance(v, (int, float)):
                    name = self.names[j] if self.known else f"{field_name}[{i}][{j}]"
                    spec_type = self.specs[j].type if self.known else "float"
                    return _bad(f"field '{name}' row {i}: expected a number ({spec_type}), "
                                f"got {_type_name(v)} {v!r}"[:300], name, "type")
        return _bad(f"'{field_name}' must be a list of rows of {k} numbers", field_name, "shape")

    # --------------------------------------------------------------- batch time

    def check(self, frame: Frame, offsets: Sequence[int]) -> tuple[dict[int, BadRequest], dict[str, np.ndarray]]:
        """Value rules over a whole batch. Returns failures by request index and category codes.

        ``offsets[i]`` is the first row of request ``i``; a failing row fails only its request.
        """
        errors: dict[int, BadRequest] = {}
        offs = np.asarray(offsets)

        def fail(row: int, err: BadRequest) -> None:
            job = int(np.searchsorted(offs, row, side="right")) - 1
            errors.setdefault(job, err)

        if self.numeric_pos and (self.check_null or self.check_range or len(self.int_pos)):
            m = self.numeric_block(frame)
            rowbad = np.zeros(frame.n, dtype=bool)
            if self.check_null:
                rowbad |= (np.isnan(m) & self.not_nullable).any(axis=1)
            if self.check_range:
                rowbad |= ((m < self.lo) | (m > self.hi)).any(axis=1)
            if len(self.int_pos):
                sub = m[:, self.int_pos]
                rowbad |= ((sub != np.round(sub)) & ~np.isnan(sub)).any(axis=1)
            if rowbad.any():
                for row in np.flatnonzero(rowbad):
                    job = int(np.searchsorted(offs, row, side="right")) - 1
                    if job not in errors:
                        errors[job] = self._describe_row(m[row], int(row - offs[job]))
        codes: dict[str, np.ndarray] = {}
        for spec in self.other:
            values = frame.columns[spec.name]  # type: ignore[index]
            lut = self.luts.get(spec.name)
            if lut is not None:
                try:
                    code = np.fromiter((lut.get(v, _UNSEEN_CODE) for v in values), dtype=np.int64, count=len(values))
                except TypeError:  # unhashable value (list/dict)
                    code = np.array([lut.get(v, _UNSEEN_CODE) if _hashable(v) else -3 for v in values])
                for row in np.flatnonzero(code == -3):
                    fail(int(row), _bad(f"field '{spec.name}': expected a category value, got "
                                        f"{_type_name(values[row])}", spec.name, "type"))
                unseen = code == _UNSEEN_CODE
                if unseen.any():
                    if spec.unseen == "reject":
                        for row in np.flatnonzero(unseen):
                            job = int(np.searchsorted(offs, row, side="right")) - 1
                            fail(int(row), _bad(
                                f"field '{spec.name}' row {int(row - offs[job])}: category {values[row]!r} is not "
                                f"one of {list(spec.categories or ())} (rule 'unseen': reject)"[:400],
                                spec.name, "unseen"))
                    code[unseen] = _NULL_CODE
                nulls = code == _NULL_CODE if not spec.nullable else None
                # an allowed unseen value is not a null; only real nulls break 'nullable'
                if nulls is not None:
                    real_null = nulls & ~unseen
                    for row in np.flatnonzero(real_null):
                        fail(int(row), _bad(f"field '{spec.name}' is null, and the contract does not allow nulls",
                                            spec.name, "nullable"))
                codes[spec.name] = code
            else:
                if not spec.nullable:
                    for row in (i for i, v in enumerate(values) if v is None):
                        fail(row, _bad(f"field '{spec.name}' is null, and the contract does not allow nulls",
                                       spec.name, "nullable"))
                if spec.type == "datetime":
                    for row in _unparsed_datetimes(values):
                        job = int(np.searchsorted(offs, row, side="right")) - 1
                        fail(row, _bad(f"field '{spec.name}' row {int(row - offs[job])}: {values[row]!r} is not a "
                                       "date-time (ISO 8601 expected)"[:300], spec.name, "type"))
        return errors, codes

    def numeric_block(self, frame: Frame) -> np.ndarray:
        if frame.matrix is not None:
            return frame.matrix
        cols = frame.columns or {}
        return np.column_stack([cols[n] for n in self.numeric_names])

    def _describe_row(self, values: np.ndarray, row: int) -> BadRequest:
        for j, name in enumerate(self.numeric_names):
            v = float(values[j])
            spec = self.specs[self.numeric_pos[j]]
            where = f"field '{name}' row {row}"
            if np.isnan(v):
                if not spec.nullable:
                    return _bad(f"{where} is null/NaN, and the contract does not allow nulls", name, "nullable")
                continue
            if v < self.lo[j]:
                return _bad(f"{where}: value {v!r} is below the minimum {float(self.lo[j])!r}", name, "min")
            if v > self.hi[j]:
                return _bad(f"{where}: value {v!r} is above the maximum {float(self.hi[j])!r}", name, "max")
            if spec.type in ("int", "bool") and v != round(v):
                return _bad(f"{where}: value {v!r} is not an integer ({spec.type})", name, "type")
        return _bad(f"row {row} breaks the contract", None, "contract")

    def model_input(self, frame: Frame, codes: Mapping[str, np.ndarray]) -> Any:
        """What the estimator gets: the matrix, or one DataFrame for the whole batch."""
        if not self.as_frame:
            return frame.matrix
        import pandas as pd

        if frame.matrix is not None:
            return pd.DataFrame(frame.matrix, columns=self.names, copy=False)
        data: dict[str, Any] = {}
        cols = frame.columns or {}
        for spec in self.specs:
            code = codes.get(spec.name)
            if code is not None:
                data[spec.name] = pd.Categorical.from_codes(code, categories=list(spec.categories or ()))
            elif spec.type == "datetime":
                data[spec.name] = pd.to_datetime(cols[spec.name], errors="coerce", utc=True, format="ISO8601")
            else:
                data[spec.name] = cols[spec.name]
        return pd.DataFrame(data, copy=False)


def combine_frames(frames: Sequence[Frame]) -> Frame:
    """One frame for the batch (no copy for a batch of one)."""
    if len(frames) == 1:
        return frames[0]
    n = sum(f.n for f in frames)
    if all(f.matrix is not None for f in frames):
        return Frame(n, matrix=np.concatenate([f.matrix for f in frames]))  # type: ignore[misc]
    names = list(frames[0].columns or {})
    return Frame(n, columns={nm: np.concatenate([f.columns[nm] for f in frames]) for nm in names})  # type: ignore[index]


def _unparsed_datetimes(values: np.ndarray) -> np.ndarray:
    """Rows whose value is given but is not a date-time (``model_input`` would turn it into NaT)."""
    import pandas as pd

    parsed = pd.to_datetime(pd.Series(values, dtype=object), errors="coerce", utc=True, format="ISO8601")
    given = np.array([v is not None for v in values], dtype=bool)
    return np.flatnonzero(parsed.isna().to_numpy() & given)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _spec(name: str, raw: Mapping[str, Any]) -> ColumnSpec:
    col_type = str(raw.get("type", "float"))
    if col_type not in _TYPES:
        raise RegistryError(f"signature column '{name}': type {col_type!r} is not one of {sorted(_TYPES)}")
    cats = raw.get("categories")
    return ColumnSpec(
        name=name,
        type=col_type,
        nullable=bool(raw.get("nullable", True)),
        min=None if raw.get("min") is None else float(raw["min"]),
        max=None if raw.get("max") is None else float(raw["max"]),
        categories=tuple(cats) if cats is not None else None,
        unseen=str(raw.get("unseen", "reject")),
    )


def _numeric_column(values: Any, name: str) -> np.ndarray:
    if not isinstance(values, (list, tuple)):
        raise _bad(f"field '{name}' must be a list of values, got {_type_name(values)}", name, "format")
    try:
        arr = np.array(values)
    except ValueError:
        arr = np.array(values, dtype=object)
    kind = arr.dtype.kind
    if kind == "f" and arr.ndim == 1:
        return arr
    if kind in "iub" and arr.ndim == 1:
        return arr.astype(np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1 and kind in "fiub":  # [[v], [v]] (OIP shape [n, 1])
        return arr[:, 0].astype(np.float64)
    flat = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in values]
    for i, v in enumerate(flat):
        if v is not None and (not isinstance(v, (int, float))):
            raise _bad(f"field '{name}' row {i}: expected a number, got {_type_name(v)} {v!r}"[:300], name, "type")
    return np.array(flat, dtype=np.float64)


def _object_column(values: Any, spec: ColumnSpec) -> np.ndarray:
    name = spec.name
    if not isinstance(values, (list, tuple)):
        raise _bad(f"field '{name}' must be a list of values, got {_type_name(values)}", name, "format")
    arr = np.empty(len(values), dtype=object)
    arr[:] = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in values]
    if spec.type in ("string", "datetime"):
        # A string feature takes text only, a date-time ISO 8601 text. Anything else (a number, an
        # object, a list) would reach the model and make it fail: that is the client's error.
        for i, v in enumerate(arr):
            if v is not None and not isinstance(v, str):
                want = "a string" if spec.type == "string" else "an ISO 8601 date-time string"
                raise _bad(f"field '{name}' row {i}: expected {want} ({spec.type}), got {_type_name(v)} {v!r}"[:300],
                           name, "type")
    return arr
