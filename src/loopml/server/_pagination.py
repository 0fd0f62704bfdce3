"""Paginated lists: ``limit``/``offset`` in, ``items`` + ``next_offset`` out.

Every list route answers ``Page[T]``: ``next_offset`` is the offset of the
next page, or ``null`` on the last one, so a client loops until it is null.
``limit`` is capped at :data:`MAX_LIMIT`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "Page", "PageParams", "page_of", "page_params", "page_probe"]

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    limit: int
    offset: int
    next_offset: int | None
    #: Count of all matching items, when known without another query.
    total: int | None = None


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int


def page_params(
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Items per page (at most {MAX_LIMIT})."),
    offset: int = Query(0, ge=0, le=1_000_000, description="Items to skip."),
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


def _dump(item: Any, to_dict: Callable[[Any], dict[str, Any]] | None) -> Any:
    if to_dict is not None:
        return to_dict(item)
    return item.to_dict() if hasattr(item, "to_dict") else item


def page_of(items: Sequence[Any], page: PageParams, *,
            to_dict: Callable[[Any], dict[str, Any]] | None = None) -> dict[str, Any]:
    """A page cut from a complete list (services that return everything)."""
    chunk = items[page.offset : page.offset + page.limit]
    following = page.offset + page.limit
    return {"items": [_dump(i, to_dict) for i in chunk], "limit": page.limit, "offset": page.offset,
            "next_offset": following if following < len(items) else None, "total": len(items)}


def page_probe(items: Sequence[Any], page: PageParams, *, skipped: int = 0,
               to_dict: Callable[[Any], dict[str, Any]] | None = None) -> dict[str, Any]:
    """A page from a service asked for ``limit + 1`` items: the extra one says a next page exists.

    ``skipped`` is how many leading items the service already skipped (its own offset).
    """
    start = page.offset - skipped
    chunk = items[start : start + page.limit]
    more = len(items) > start + page.limit
    return {"items": [_dump(i, to_dict) for i in chunk], "limit": page.limit, "offset": page.offset,
            "next_offset": page.offset + page.limit if more else None, "total": None}
