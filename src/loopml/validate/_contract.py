"""The data contract: what valid data looks like, as a value (dict / YAML / JSON).

The same object is checked at ingestion, at training and on every serving
request, so parsing is strict (unknown keys and bad values are refused with
the key and the allowed values) and the value is immutable once built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from loopml.kernel.exceptions import ValidationError

__all__ = ["CONTRACT_TYPES", "UNSEEN_POLICIES", "ColumnRule", "Contract", "infer_contract"]

CONTRACT_TYPES = ("int", "float", "bool", "string", "category", "datetime")
UNSEEN_POLICIES = ("reject", "warn", "allow")
_COLUMN_KEYS = ("type", "nullable", "min", "max", "categories", "unseen", "unique")
_TOP_KEYS = ("version", "columns", "target")


def _bad(message: str, key: str, rule: str) -> ValidationError:
    return ValidationError(f"invalid contract: {message}", field=key, rule=rule)


@dataclass(frozen=True)
class ColumnRule:
    """The rules of one column; ``None`` means "not checked"."""

    type: str
    nullable: bool = True
    min: float | int | str | None = None
    max: float | int | str | None = None
    categories: tuple[Any, ...] | None = None
    unseen: str = "reject"
    unique: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "nullable": self.nullable}
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        if self.categories is not None:
            out["categories"] = list(self.categories)
            out["unseen"] = self.unseen
        if self.unique:
            out["unique"] = True
        return out

    @classmethod
    def from_dict(cls, name: str, data: Any) -> ColumnRule:
        where = f"columns.{name}"
        if not isinstance(data, Mapping):
            raise _bad(f"'{where}' must be a mapping with keys {', '.join(_COLUMN_KEYS)}, got {data!r}", where, "type")
        unknown = [k for k in data if k not in _COLUMN_KEYS]
        if unknown:
            raise _bad(f"unknown key '{where}.{unknown[0]}'; allowed keys: {', '.join(_COLUMN_KEYS)}", f"{where}.{unknown[0]}", "unknown_key")
        ctype = data.get("type")
        if ctype not in CONTRACT_TYPES:
            raise _bad(f"'{where}.type' is {ctype!r}; allowed values: {', '.join(CONTRACT_TYPES)}", f"{where}.type", "choice")
        for key in ("nullable", "unique"):
            if key in data and not isinstance(data[key], bool):
                raise _bad(f"'{where}.{key}' must be true or false, got {data[key]!r}", f"{where}.{key}", "type")
        bounds = {}
        for key in ("min", "max"):
            value = data.get(key)
            if value is None:
                continue
            if ctype in ("int", "float"):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise _bad(f"'{where}.{key}' must be a number for a {ctype} column, got {value!r}", f"{where}.{key}", "type")
            elif ctype == "datetime":
                import pandas as pd

                try:
                    pd.Timestamp(value)
                except (ValueError, TypeError) as exc:
                    raise _bad(f"'{where}.{key}' must be an ISO date-time, got {value!r}", f"{where}.{key}", "type") from exc
                value = str(value)
            else:
                raise _bad(f"'{where}.{key}' applies to int, float and datetime columns, not {ctype}", f"{where}.{key}", "not_applicable")
            bounds[key] = value
        if "min" in bounds and "max" in bounds and _as_cmp(bounds["min"]) > _as_cmp(bounds["max"]):
            raise _bad(f"'{where}.min' ({bounds['min']!r}) is greater than '{where}.max' ({bounds['max']!r})", f"{where}.min", "range")
        cats = data.get("categories")
        if cats is not None:
            if ctype not in ("category", "string", "int"):
                raise _bad(f"'{where}.categories' applies to category columns, not {ctype}", f"{where}.categories", "not_applicable")
            if not isinstance(cats, (list, tuple)) or not cats:
                raise _bad(f"'{where}.categories' must be a non-empty list, got {cats!r}", f"{where}.categories", "type")
            cats = tuple(cats)
        unseen = data.get("unseen", "reject")
        if unseen not in UNSEEN_POLICIES:
            raise _bad(f"'{where}.unseen' is {unseen!r}; allowed values: {', '.join(UNSEEN_POLICIES)}", f"{where}.unseen", "choice")
        return cls(type=ctype, nullable=data.get("nullable", True), min=bounds.get("min"), max=bounds.get("max"),
                   categories=cats, unseen=unseen, unique=data.get("unique", False))


def _as_cmp(value: Any) -> Any:
    if isinstance(value, str):
        import pandas as pd

        return pd.Timestamp(value)
    return value


@dataclass(frozen=True)
class Contract:
    """Columns with their rules, plus the optional target column (CONTRIBUTING.md shape)."""

    columns: dict[str, ColumnRule]
    target: str | None = None
    version: int = 1
    _compiled: Any = field(default=None, repr=False, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "columns": {n: r.to_dict() for n, r in self.columns.items()}, "target": self.target}

    @classmethod
    def from_dict(cls, data: Any) -> Contract:
        """Parse and check a contract dict.

        Raises:
            ValidationError: an unknown key, a bad type/policy/bound; the
                message names the key and the allowed values.
        """
        if not isinstance(data, Mapping):
            raise _bad(f"expected a mapping with keys {', '.join(_TOP_KEYS)}, got {type(data).__name__}", "contract", "type")
        unknown = [k for k in data if k not in _TOP_KEYS]
        if unknown:
            raise _bad(f"unknown key '{unknown[0]}'; allowed keys: {', '.join(_TOP_KEYS)}", str(unknown[0]), "unknown_key")
        version = data.get("version", 1)
        if version != 1:
            raise _bad(f"'version' is {version!r}; allowed values: 1", "version", "choice")
        cols = data.get("columns")
        if not isinstance(cols, Mapping) or not cols:
            raise _bad("'columns' must be a non-empty mapping of column name -> rules", "columns", "required")
        target = data.get("target")
        if target is not None and not isinstance(target, str):
            raise _bad(f"'target' must be a column name or null, got {target!r}", "target", "type")
        return cls(columns={str(n): ColumnRule.from_dict(str(n), r) for n, r in cols.items()}, target=target, version=1)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_yaml(cls, text: str) -> Contract:
        """Parse YAML text (see :meth:`from_dict` for the rules)."""
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise _bad(f"not valid YAML{where}: {getattr(exc, 'problem', exc)}", "contract", "yaml") from exc
        return cls.from_dict(data)

    def features(self) -> Contract:
        """The contract without its target: what a serving request must satisfy."""
        cols = {n: r for n, r in self.columns.items() if n != self.target}
        return replace(self, columns=cols, target=None, _compiled=None)

    @property
    def feature_names(self) -> list[str]:
        return [n for n in self.columns if n != self.target]


def infer_contract(data: Any, *, target: str | None = None) -> Contract:
    """The contract implied by a DataFrame or a dataset profile (observed ranges and levels).

    Raises:
        ValidationError: ``target`` is not a column, or ``data`` is neither a
            DataFrame nor a profile.
    """
    import pandas as pd

    from loopml.ingest import contract_from_profile, profile_frame

    if isinstance(data, pd.DataFrame):
        if target is not None and target not in data.columns:
            raise ValidationError(
                f"target column '{target}' is not in the data; columns: {', '.join(map(str, data.columns[:20]))}",
                field="target",
                rule="missing_target",
            )
        data = profile_frame(data)
    return Contract.from_dict(contract_from_profile(data, target=target))
