"""Small value types shared by every layer."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loopml.kernel.exceptions import ValidationError

__all__ = ["ModelRef", "jsonable", "new_id", "utcnow"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def utcnow() -> datetime:
    """Timezone-aware now in UTC: every stored time is UTC."""
    return datetime.now(UTC)


def new_id() -> str:
    """A sortable unique id (time-ordered hex), used for runs and requests."""
    import os
    import time

    return f"{time.time_ns():x}{os.urandom(6).hex()}"


def check_name(value: str, field: str = "name") -> str:
    """Names of datasets, models, endpoints: letters, digits, ``_ . -``; no path tricks."""
    if not isinstance(value, str) or not _NAME_RE.match(value) or ".." in value:
        raise ValidationError(
            f"{field} {value!r} is invalid: use 1-128 letters, digits, '_', '.', '-', "
            "starting with a letter or digit",
            field=field,
            rule="name",
        )
    return value


@dataclass(frozen=True)
class ModelRef:
    """``NAME@ALIAS`` or ``NAME/VERSION`` (``NAME`` alone means the latest version)."""

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        text = text.strip()
        if "@" in text:
            name, alias = text.split("@", 1)
            check_name(name, "model")
            check_name(alias, "alias")
            return cls(name=name, alias=alias)
        if "/" in text:
            name, version = text.split("/", 1)
            check_name(name, "model")
            if not version.isdigit() or int(version) < 1:
                raise ValidationError(
                    f"model reference {text!r}: version must be a positive integer "
                    "(use NAME/VERSION or NAME@ALIAS)",
                    field="model_ref",
                    rule="format",
                )
            return cls(name=name, version=int(version))
        check_name(text, "model")
        return cls(name=text)

    def __str__(self) -> str:
        if self.alias:
            return f"{self.name}@{self.alias}"
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return self.name


def jsonable(value: Any, field: str) -> Any:
    """``value`` as plain JSON: records via ``to_dict()``, numpy scalars unboxed, NaN/inf → null.

    PostgreSQL's JSONB rejects NaN, and metrics are often NaN (an undefined
    AUC): storing ``null`` keeps the row writable on every backend.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):  # numpy ints are not ints; int subclasses (enums) are made plain
        return int(value)
    if isinstance(value, float):  # np.float64 is a float subclass: store the plain float
        return float(value) if math.isfinite(value) else None
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return jsonable(value.to_dict(), field)
    if isinstance(value, dict):
        return {str(k): jsonable(v, f"{field}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v, field) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return jsonable(value.item(), field)
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy array
        return jsonable(value.tolist(), field)
    if hasattr(value, "isoformat") and callable(value.isoformat):
        return value.isoformat()
    raise ValidationError(
        f"{field} is not JSON-serializable: a {type(value).__name__} value {value!r:.60}",
        field=field, rule="json",
    )
