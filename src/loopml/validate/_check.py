"""Checking a DataFrame against a contract: every failed rule, with counts and examples.

Serving calls this on every request, so the work per call is a handful of
numpy operations per column (no per-row Python except on object columns with
non-uniform values), and the contract's category sets are built once and
cached on the contract.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loopml.kernel.exceptions import ContractViolation, ValidationError
from loopml.validate._contract import ColumnRule, Contract

__all__ = ["RuleFailure", "ValidationReport", "validate_frame"]

MAX_EXAMPLES = 5
#: Below this many rows, set membership in Python beats building a hash index.
_SMALL = 64


@dataclass(frozen=True)
class RuleFailure:
    """One broken rule of one column: how many rows, and up to five of them."""

    column: str
    rule: str
    severity: str  # error | warning
    count: int
    message: str
    examples: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "rule": self.rule, "severity": self.severity, "count": self.count,
                "message": self.message, "examples": list(self.examples)}


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of a validation: ``ok`` unless some rule of severity *error* failed."""

    n_rows: int
    n_columns: int
    failures: tuple[RuleFailure, ...] = field(default=())

    @property
    def errors(self) -> list[RuleFailure]:
        return [f for f in self.failures if f.severity == "error"]

    @property
    def warnings(self) -> list[RuleFailure]:
        return [f for f in self.failures if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.failures)

    def summary(self) -> str:
        if not self.failures:
            return f"all rules pass on {self.n_rows} rows"
        return f"{len(self.errors)} rule(s) failed, {len(self.warnings)} warning(s) on {self.n_rows} rows: " + "; ".join(
            f.message for f in self.failures[:3]
        )

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "n_rows": self.n_rows, "n_columns": self.n_columns,
                "n_errors": len(self.errors), "n_warnings": len(self.warnings), "summary": self.summary(),
                "failures": [f.to_dict() for f in self.failures]}

    def raise_for_errors(self) -> ValidationReport:
        """Raise :class:`ContractViolation` (carrying this report) if any error failed."""
        if not self.ok:
            raise ContractViolation(f"data breaks its contract: {self.summary()}", report=self)
        return self


def _jsonable(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (np.generic,)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else str(v)
    if isinstance(v, (pd.Timestamp, np.datetime64)):
        return str(pd.Timestamp(v))
    if isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


class _Out:
    """Collects failures; builds examples only for rules that failed."""

    def __init__(self, index: pd.Index) -> None:
        self.index = index
        self.items: list[RuleFailure] = []

    def add(self, column: str, rule: str, message: str, bad_pos: np.ndarray | None, values: Any,
            *, severity: str = "error", count: int | None = None) -> None:
        examples: tuple[dict[str, Any], ...] = ()
        if bad_pos is not None:
            count = int(bad_pos.size)
            take = bad_pos[:MAX_EXAMPLES]
            examples = tuple({"row": _jsonable(self.index[i]), "value": _jsonable(values[i])} for i in take)
        n = int(count or 0)
        self.items.append(RuleFailure(column, rule, severity, n, message.format(n=n), examples))


def _missing_mask(arr: np.ndarray) -> np.ndarray | None:
    kind = arr.dtype.kind
    if kind == "f":
        m = np.isnan(arr)
    elif kind == "M" or kind == "m":
        m = np.isnat(arr)
    elif kind == "O":
        m = pd.isna(arr)
    else:
        return None
    return m if m.any() else None


def _column_values(s: pd.Series) -> np.ndarray:
    dtype = s.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and not isinstance(dtype, pd.CategoricalDtype):
        if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            return s.to_numpy(dtype="float64", na_value=np.nan)
        return s.to_numpy(dtype=object, na_value=None)
    return s.to_numpy()


def _numeric(name: str, rule: ColumnRule, arr: np.ndarray, valid: np.ndarray, out: _Out) -> np.ndarray | None:
    """Float values of the valid rows (``None`` when the type is wrong everywhere); flags type errors."""
    kind = arr.dtype.kind
    want = rule.type
    if kind in "iu":
        return arr[valid] if valid is not None else arr
    if kind == "f":
        num = arr[valid] if valid is not None else arr
        if want == "int":
            bad = np.flatnonzero(num != np.floor(num))
            if bad.size:
                pos = np.flatnonzero(valid)[bad] if valid is not None else bad
                out.add(name, "type", f"column '{name}': {{n}} value(s) are not integers (type int)", pos, arr)
        return num
    if kind == "O":
        vals = arr[valid] if valid is not None else arr
        num = pd.to_numeric(pd.Series(vals, dtype=object), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        isbool = np.fromiter((isinstance(v, (bool, np.bool_)) for v in vals), bool, vals.size)
        badmask = np.isnan(num) | isbool
        if want == "int":
            badmask |= num != np.floor(num)
        bad = np.flatnonzero(badmask)
        if bad.size:
            pos = np.flatnonzero(valid)[bad] if valid is not None else bad
            out.add(name, "type", f"column '{name}': {{n}} value(s) are not {'integers' if want == 'int' else 'numbers'} (type {want})", pos, arr)
            num = np.where(badmask, np.nan, num)
        return num
    n = int(valid.sum()) if valid is not None else arr.size
    out.add(name, "type", f"column '{name}' has dtype {arr.dtype}, expected type {want}", None, arr, count=n)
    return None


def _range(name: str, rule: ColumnRule, num: np.ndarray, valid: np.ndarray | None, arr: np.ndarray, out: _Out) -> None:
    for key, op, word in (("min", np.less, "below"), ("max", np.greater, "above")):
        bound = getattr(rule, key)
        if bound is None:
            continue
        with np.errstate(invalid="ignore"):
            hit = np.flatnonzero(op(num, bound))
        if hit.size:
            pos = np.flatnonzero(valid)[hit] if valid is not None else hit
            out.add(name, key, f"column '{name}': {{n}} value(s) {word} the {key} {bound!r}", pos, arr)


def _categories(name: str, rule: ColumnRule, vals: np.ndarray, valid: np.ndarray | None, arr: np.ndarray,
                cache: dict[str, Any], out: _Out) -> None:
    if rule.categories is None or rule.unseen == "allow":
        return
    if vals.size <= _SMALL:
        allowed = cache.get(name)
        if allowed is None:
            allowed = cache[name] = frozenset(rule.categories)
        try:
            badmask = np.fromiter((v not in allowed for v in vals), bool, vals.size)
        except TypeError:  # an unhashable value: compare by index instead
            badmask = pd.Index(rule.categories).get_indexer(pd.Index(vals)) < 0
    else:
        index = cache.get(f"{name}\x00index")
        if index is None:
            index = cache[f"{name}\x00index"] = pd.Index(rule.categories)
        badmask = index.get_indexer(vals) < 0
    bad = np.flatnonzero(badmask)
    if bad.size:
        pos = np.flatnonzero(valid)[bad] if valid is not None else bad
        shown = ", ".join(map(repr, list(rule.categories)[:10]))
        out.add(name, "unseen_category", f"column '{name}': {{n}} value(s) not among the categories ({shown})",
                pos, arr, severity="error" if rule.unseen == "reject" else "warning")


def _check_column(name: str, rule: ColumnRule, s: pd.Series, cache: dict[str, Any], out: _Out) -> None:
    arr = _column_values(s)
    missing = _missing_mask(arr)
    valid = None if missing is None else ~missing
    if missing is not None and not rule.nullable:
        out.add(name, "not_null", f"column '{name}': {{n}} missing value(s) (nullable: false)", np.flatnonzero(missing), arr)
    t = rule.type
    if t in ("int", "float"):
        if arr.dtype.kind == "b":
            out.add(name, "type", f"column '{name}' has dtype bool, expected type {t}", None, arr, count=arr.size)
            return
        num = _numeric(name, rule, arr, valid, out)
        if num is not None:
            _range(name, rule, num, valid, arr, out)
            if rule.categories is not None:
                _categories(name, rule, num, valid, arr, cache, out)
    elif t == "bool":
        vals = arr[valid] if valid is not None else arr
        if arr.dtype.kind != "b":
            if arr.dtype.kind in "iuf":
                badmask = (vals != 0) & (vals != 1)
            else:
                badmask = np.fromiter((not isinstance(v, (bool, np.bool_)) for v in vals), bool, vals.size)
            bad = np.flatnonzero(badmask)
            if bad.size:
                pos = np.flatnonzero(valid)[bad] if valid is not None else bad
                out.add(name, "type", f"column '{name}': {{n}} value(s) are not booleans (type bool)", pos, arr)
    elif t in ("string", "category"):
        vals = arr[valid] if valid is not None else arr
        if t == "string":
            if arr.dtype.kind != "O" or pd.api.types.infer_dtype(vals, skipna=False) != "string":
                badmask = np.fromiter((not isinstance(v, str) for v in vals), bool, vals.size)
                bad = np.flatnonzero(badmask)
                if bad.size:
                    pos = np.flatnonzero(valid)[bad] if valid is not None else bad
                    out.add(name, "type", f"column '{name}': {{n}} value(s) are not strings (type string)", pos, arr)
        _categories(name, rule, vals, valid, arr, cache, out)
    elif t == "datetime":
        vals = arr[valid] if valid is not None else arr
        if arr.dtype.kind == "M":
            ts = vals.astype("datetime64[ns]")
        else:
            parsed = pd.to_datetime(pd.Series(vals, dtype=object), errors="coerce", utc=True, format="mixed")
            ts = parsed.dt.tz_localize(None).to_numpy()
            bad = np.flatnonzero(np.isnat(ts))
            if bad.size:
                pos = np.flatnonzero(valid)[bad] if valid is not None else bad
                out.add(name, "type", f"column '{name}': {{n}} value(s) are not date-times (type datetime)", pos, arr)
        bounds = cache.get(f"{name}\x00bounds")
        if bounds is None:
            bounds = cache[f"{name}\x00bounds"] = {
                k: _naive_utc(getattr(rule, k)) for k in ("min", "max") if getattr(rule, k) is not None
            }
        for key, op, word in (("min", np.less, "before"), ("max", np.greater, "after")):
            if key in bounds:
                hit = np.flatnonzero(op(ts, bounds[key]) & ~np.isnat(ts))
                if hit.size:
                    pos = np.flatnonzero(valid)[hit] if valid is not None else hit
                    out.add(name, key, f"column '{name}': {{n}} value(s) {word} the {key} {getattr(rule, key)!r}", pos, arr)
    if rule.unique and len(s) > 1:
        dup = s.duplicated(keep="first").to_numpy()
        if missing is not None:
            dup &= ~missing
        bad = np.flatnonzero(dup)
        if bad.size:
            out.add(name, "unique", f"column '{name}': {{n}} duplicate value(s) (unique: true)", bad, arr)


def _naive_utc(value: Any) -> np.datetime64:
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return np.datetime64(ts.to_datetime64(), "ns")


def validate_frame(df: pd.DataFrame, contract: Contract | dict[str, Any]) -> ValidationReport:
    """Check ``df`` against ``contract``: every failed rule, with counts and up to 5 example rows.

    Errors: missing column, missing target, wrong type, nulls in a non-nullable
    column, out of range, unseen category (``unseen: reject``), duplicates in a
    unique column. Warnings: extra columns, unseen categories (``unseen: warn``).

    Raises:
        ValidationError: ``df`` is not a DataFrame or ``contract`` is invalid.
    """
    if not isinstance(contract, Contract):
        contract = Contract.from_dict(contract)
    if not isinstance(df, pd.DataFrame):
        raise ValidationError(f"expected a pandas DataFrame, got {type(df).__name__}", field="data", rule="type")
    cache = contract._compiled
    if cache is None:
        cache = {}
        object.__setattr__(contract, "_compiled", cache)  # per-contract memo of category sets
    out = _Out(df.index)
    n = len(df)
    present = set(df.columns)
    for name, rule in contract.columns.items():
        if name not in present:
            rname = "missing_target" if name == contract.target else "missing_column"
            out.add(name, rname, f"column '{name}' is missing ({{n}} rows affected)", None, None, count=n)
            continue
        _check_column(name, rule, df[name], cache, out)
    if contract.target and contract.target not in contract.columns and contract.target not in present:
        out.add(contract.target, "missing_target", f"target column '{contract.target}' is missing", None, None, count=n)
    extra = [c for c in df.columns if c not in contract.columns and c != contract.target]
    for c in extra:
        out.add(str(c), "extra_column", f"column '{c}' is not in the contract", None, None, severity="warning", count=0)
    return ValidationReport(n_rows=n, n_columns=len(df.columns), failures=tuple(out.items))
