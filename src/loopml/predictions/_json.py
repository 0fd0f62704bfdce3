"""Prediction rows as JSON: one encoding, so ``predictions query --json`` prints the same bytes locally and over HTTP."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["json_records"]


def _cell(value: Any) -> Any:
    """One frame cell as JSON: NaN/NaT -> null, times -> ISO text, numpy scalars -> Python."""
    if value is None:
        return None
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (datetime, date)):
        return None if str(value) == "NaT" else value.isoformat()
    if type(value).__name__ in ("NaTType", "NAType"):
        return None
    return value


def json_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's rows as JSON-safe dicts."""
    columns = [str(c) for c in df.columns]
    return [dict(zip(columns, (_cell(v) for v in row), strict=True)) for row in df.itertuples(index=False, name=None)]
