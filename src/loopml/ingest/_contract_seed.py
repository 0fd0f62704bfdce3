"""The contract a profile implies: what ingest stores at a dataset's first version.

It lives here, not in ``loopml.validate``, because ingest sits below validate
in the layers and must write the inferred contract in its own transaction;
``loopml.validate.infer_contract`` wraps this function into a ``Contract``.
The output is the shared JSON shape of CONTRIBUTING.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from loopml.kernel.exceptions import ValidationError

__all__ = ["CATEGORY_MAX_LEVELS", "contract_from_profile"]

#: A string column with at most this many distinct values (and repeats) is a category.
CATEGORY_MAX_LEVELS = 50
_ID_NAME = re.compile(r"(^id$|_id$|^id_|uuid|guid|(^|_)key$)", re.IGNORECASE)


def _column_rule(name: str, col: Mapping[str, Any]) -> dict[str, Any]:
    kind = col["type"]
    n, n_unique = int(col.get("n", 0)), int(col.get("n_unique", 0))
    rule: dict[str, Any] = {"type": kind, "nullable": int(col.get("n_missing", 0)) > 0}
    all_distinct = n >= 2 and n_unique == n and not rule["nullable"]
    if kind in ("int", "float"):
        if col.get("min") is not None:
            rule["min"] = col["min"]
            rule["max"] = col["max"]
        # All-distinct integers are a key only when they look like one (name or order):
        # a small sample of a numeric feature is often all-distinct by chance.
        if kind == "int" and all_distinct and (_ID_NAME.search(name) or col.get("is_monotonic_increasing")):
            rule["unique"] = True
    elif kind == "string":
        top = col.get("top") or {}
        levels = top.get("values") or []
        complete = int(top.get("other_count", 1)) == 0
        if complete and 0 < n_unique <= CATEGORY_MAX_LEVELS and n_unique < n:
            rule = {
                "type": "category",
                "nullable": rule["nullable"],
                "categories": sorted(levels, key=str),
                "unseen": "reject",
            }
        elif all_distinct and _ID_NAME.search(name):
            rule["unique"] = True
    return rule


def contract_from_profile(profile: Mapping[str, Any], *, target: str | None = None) -> dict[str, Any]:
    """The contract dict (CONTRIBUTING.md shape) that ``profile`` implies.

    Ranges are the observed min and max, categories the observed levels
    (``unseen: reject``); a column is ``nullable`` when it had missing values.

    Raises:
        ValidationError: ``profile`` is not a dataset profile, or ``target``
            is not one of its columns.
    """
    columns = profile.get("columns") if isinstance(profile, Mapping) else None
    if not isinstance(columns, Mapping):
        raise ValidationError(
            "not a dataset profile: expected a mapping with 'columns' (made by loopml.ingest)",
            field="profile",
            rule="profile_format",
        )
    if target is not None and target not in columns:
        raise ValidationError(
            f"target column '{target}' is not in the data; columns: {', '.join(list(columns)[:20])}",
            field="target",
            rule="missing_target",
        )
    return {
        "version": 1,
        "columns": {str(name): _column_rule(str(name), col) for name, col in columns.items()},
        "target": target,
    }
