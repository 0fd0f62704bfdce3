"""The run filter and order-by mini language, parsed once and evaluated in Python.

Grammar (keywords case-insensitive)::

    expr    := term (OR term)*
    term    := factor (AND factor)*
    factor  := NOT factor | '(' expr ')' | compare
    compare := field op value | field [NOT] IN '(' value (',' value)* ')'
    field   := (metrics|params|tags|attributes) '.' key | attribute
    op      := = | == | != | <> | < | <= | > | >= | LIKE | ILIKE
    value   := number | 'string' | "string"

``key`` is a bare name (letters, digits, ``_ - . / :``) or a back-quoted one
(`` metrics.`val loss` ``). Why Python and not SQL: filters are evaluated over
rows already pivoted from a few Core selects (MLflow spends 70% of its search
time building ORM objects), and one evaluator behaves the same on SQLite and
PostgreSQL. A run missing the field never matches a comparison.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loopml.kernel.exceptions import ValidationError

__all__ = ["ATTRIBUTES", "Compare", "Filter", "OrderKey", "parse_filter", "parse_order_by"]

#: Run attributes usable bare (``status = 'failed'``) or as ``attributes.status``.
ATTRIBUTES = (
    "id", "name", "experiment", "kind", "status", "parent_id", "started_at", "ended_at",
    "duration", "cache_key", "git_commit", "git_dirty", "created_by", "error",
)
_ALIASES = {"run_id": "id", "run_name": "name", "start_time": "started_at", "end_time": "ended_at"}
_SECTIONS = {"metrics": "metrics", "metric": "metrics", "params": "params", "param": "params",
             "tags": "tags", "tag": "tags", "attributes": "attributes", "attribute": "attributes",
             "attr": "attributes"}
_OPS = ("=", "==", "!=", "<>", "<", "<=", ">", ">=", "like", "ilike", "in", "not in")

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)(?![A-Za-z_]))
      | (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
      | (?P<bq>`[^`]*`)
      | (?P<op><=|>=|!=|<>|==|=|<|>)
      | (?P<punct>[(),.])
      | (?P<word>[A-Za-z_][A-Za-z0-9_\-/:]*)
    )""",
    re.VERBOSE,
)

Row = Mapping[str, Any]
Getter = Callable[[Row], Any]


@dataclass(frozen=True)
class Compare:
    """One comparison: ``section.key op value`` (section is metrics/params/tags/attributes)."""

    section: str
    key: str
    op: str
    value: Any


@dataclass(frozen=True)
class Filter:
    """A parsed filter: evaluate with :meth:`matches` on a pivoted run row."""

    text: str
    tree: Any

    def fields(self) -> set[tuple[str, str]]:
        """Every ``(section, key)`` the filter reads, so the caller fetches only those."""
        out: set[tuple[str, str]] = set()
        _walk_fields(self.tree, out)
        return out

    def matches(self, row: Row) -> bool:
        return _eval(self.tree, row)


@dataclass(frozen=True)
class OrderKey:
    section: str
    key: str
    descending: bool


def _walk_fields(node: Any, out: set[tuple[str, str]]) -> None:
    if isinstance(node, Compare):
        out.add((node.section, node.key))
    else:
        for child in node[1:]:
            _walk_fields(child, out)


def field_value(row: Row, section: str, key: str) -> Any:
    """The value of ``section.key`` in a pivoted row (``None`` when absent)."""
    if section == "attributes":
        return row.get(key)
    return row[section].get(key)


def _eval(node: Any, row: Row) -> bool:
    if isinstance(node, Compare):
        return _compare(field_value(row, node.section, node.key), node)
    tag = node[0]
    if tag == "and":
        return all(_eval(c, row) for c in node[1:])
    if tag == "or":
        return any(_eval(c, row) for c in node[1:])
    return not _eval(node[1], row)  # "not"


def _coerce(actual: Any, literal: Any) -> tuple[Any, Any] | None:
    """Bring a stored value and a literal to one comparable type, or ``None`` if impossible."""
    if actual is None:
        return None
    if isinstance(actual, bool) or isinstance(literal, bool):
        if isinstance(literal, str):
            literal = literal.lower() in ("true", "1", "yes")
        return bool(actual), bool(literal)
    if isinstance(actual, datetime):
        if isinstance(literal, str):
            try:
                lit = datetime.fromisoformat(literal)
            except ValueError:
                return None
            if lit.tzinfo is None:
                lit = lit.replace(tzinfo=actual.tzinfo)
            return actual, lit
        return actual.timestamp(), float(literal)
    if isinstance(literal, (int, float)):
        if isinstance(actual, (int, float)):
            return actual, literal
        try:  # params and tags are strings: compare numerically when they parse
            return float(actual), literal
        except (TypeError, ValueError):
            return None
    return str(actual), literal


def _compare(actual: Any, c: Compare) -> bool:
    op, lit = c.op, c.value
    if op in ("in", "not in"):
        hit = any(_equal(actual, v) for v in lit)
        return hit if op == "in" else (actual is not None and not hit)
    if op in ("like", "ilike"):
        if actual is None:
            return False
        pattern = _like_regex(str(lit), op == "ilike")
        return pattern.fullmatch(str(actual)) is not None
    pair = _coerce(actual, lit)
    if pair is None:
        return False
    a, b = pair
    if isinstance(a, float) and math.isnan(a):
        return op in ("!=", "<>")
    try:
        if op in ("=", "=="):
            return a == b
        if op in ("!=", "<>"):
            return a != b
        if op == "<":
            return a < b
        if op == "<=":
            return a <= b
        if op == ">":
            return a > b
        return a >= b
    except TypeError:
        return False


def _equal(actual: Any, literal: Any) -> bool:
    pair = _coerce(actual, literal)
    return pair is not None and pair[0] == pair[1]


_LIKE_CACHE: dict[tuple[str, bool], re.Pattern[str]] = {}


def _like_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    key = (pattern, ignore_case)
    if key not in _LIKE_CACHE:
        body = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
        _LIKE_CACHE[key] = re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)
    return _LIKE_CACHE[key]


# --------------------------------------------------------------------------- parsing
class _Tokens:
    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what
        self.items: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                at = pos + (len(text[pos:]) - len(text[pos:].lstrip()))
                self.fail(f"unexpected character {text[at]!r}", at)
            kind = m.lastgroup or ""
            start = m.start(kind)
            self.items.append((kind, m.group(kind), start))
            pos = m.end()
        self.i = 0

    def fail(self, message: str, at: int | None = None) -> None:
        if at is None:
            at = self.items[self.i][2] if self.i < len(self.items) else len(self.text)
        raise ValidationError(
            f"{self.what} {self.text!r}: {message} at position {at}", field=self.what, rule="syntax"
        )

    def peek(self) -> tuple[str, str, int] | None:
        return self.items[self.i] if self.i < len(self.items) else None

    def peek_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] == "word" and tok[1].lower() in words

    def take(self) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            self.fail("unexpected end")
            raise AssertionError  # unreachable: fail raises
        self.i += 1
        return tok

    def expect_punct(self, ch: str) -> None:
        tok = self.peek()
        if tok is None or tok[0] != "punct" or tok[1] != ch:
            self.fail(f"expected {ch!r}" + (f", found {tok[1]!r}" if tok else ""))
        self.i += 1


def parse_filter(text: str | None) -> Filter | None:
    """Parse a filter string; ``None`` or blank means no filter.

    Raises:
        ValidationError: the filter is malformed; the message quotes it and says where.
    """
    if text is None or not text.strip():
        return None
    toks = _Tokens(text, "filter")
    tree = _parse_or(toks)
    if toks.peek() is not None:
        toks.fail(f"unexpected {toks.peek()[1]!r}; expected AND, OR or the end")  # type: ignore[index]
    return Filter(text=text, tree=tree)


def _parse_or(t: _Tokens) -> Any:
    parts = [_parse_and(t)]
    while t.peek_word("or"):
        t.take()
        parts.append(_parse_and(t))
    return parts[0] if len(parts) == 1 else ("or", *parts)


def _parse_and(t: _Tokens) -> Any:
    parts = [_parse_factor(t)]
    while t.peek_word("and"):
        t.take()
        parts.append(_parse_factor(t))
    return parts[0] if len(parts) == 1 else ("and", *parts)


def _parse_factor(t: _Tokens) -> Any:
    tok = t.peek()
    if tok is None:
        t.fail("unexpected end; expected a comparison such as metrics.acc > 0.5")
    if t.peek_word("not"):
        t.take()
        return ("not", _parse_factor(t))
    if tok is not None and tok[0] == "punct" and tok[1] == "(":
        t.take()
        inner = _parse_or(t)
        t.expect_punct(")")
        return inner
    section, key = _parse_field(t)
    op = _parse_op(t)
    if op in ("in", "not in"):
        t.expect_punct("(")
        values = [_parse_value(t)]
        while (nxt := t.peek()) is not None and nxt[0] == "punct" and nxt[1] == ",":
            t.take()
            values.append(_parse_value(t))
        t.expect_punct(")")
        return Compare(section, key, op, tuple(values))
    value = _parse_value(t)
    if op in ("like", "ilike") and not isinstance(value, str):
        t.fail(f"{op.upper()} needs a quoted pattern, got {value!r}")
    return Compare(section, key, op, value)


def _parse_field(t: _Tokens) -> tuple[str, str]:
    kind, text, at = t.take()
    if kind != "word":
        t.fail(f"expected a field such as metrics.acc, params.model or status, found {text!r}", at)
    low = text.lower()
    nxt = t.peek()
    if low in _SECTIONS and nxt is not None and nxt[0] == "punct" and nxt[1] == ".":
        t.take()
        section = _SECTIONS[low]
        kind, key, kat = t.take()
        if kind == "bq":
            key = key[1:-1]
        elif kind != "word":
            t.fail(f"expected a key after '{text}.', found {key!r}", kat)
        # bare keys may contain dots: metrics.val.acc is the key "val.acc"
        while (nxt := t.peek()) is not None and nxt[0] == "punct" and nxt[1] == "." and kind == "word":
            t.take()
            more = t.take()
            if more[0] != "word":
                t.fail(f"expected a key part after '.', found {more[1]!r}", more[2])
            key += "." + more[1]
        if not key:
            t.fail(f"empty key after '{text}.'", kat)
        if section == "attributes":
            key = _attribute(t, key, kat)
        return section, key
    return "attributes", _attribute(t, text, at)


def _attribute(t: _Tokens, name: str, at: int) -> str:
    name = _ALIASES.get(name.lower(), name.lower())
    if name not in ATTRIBUTES:
        t.fail(
            f"unknown field {name!r}; use metrics.<key>, params.<key>, tags.<key> or one of "
            + ", ".join(ATTRIBUTES),
            at,
        )
    return name


def _parse_op(t: _Tokens) -> str:
    tok = t.peek()
    if tok is None:
        t.fail("expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN)")
    kind, text, at = t.take()  # type: ignore[misc]
    if kind == "op":
        return "=" if text == "==" else "!=" if text == "<>" else text
    low = text.lower() if kind == "word" else ""
    if low == "not" and t.peek_word("in"):
        t.take()
        return "not in"
    if low in ("like", "ilike", "in"):
        return low
    t.fail(f"expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN), found {text!r}", at)
    raise AssertionError  # unreachable


def _parse_value(t: _Tokens) -> Any:
    tok = t.peek()
    if tok is None:
        t.fail("expected a value (a number or a quoted string)")
    kind, text, at = t.take()  # type: ignore[misc]
    if kind == "num":
        return float(text) if any(c in text for c in ".eE") else int(text)
    if kind == "str":
        body = text[1:-1]
        quote = text[0]
        return body.replace(quote * 2, quote).replace("\\" + quote, quote).replace("\\\\", "\\")
    if kind == "word" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    t.fail(f"expected a value (a number or a quoted string), found {text!r}", at)
    raise AssertionError  # unreachable


def parse_order_by(items: Sequence[str] | None) -> list[OrderKey]:
    """Parse ``["metrics.acc DESC", "name"]``; ASC is the default direction.

    Raises:
        ValidationError: an item names an unknown field or direction.
    """
    out: list[OrderKey] = []
    for item in items or []:
        toks = _Tokens(item, "order_by")
        section, key = _parse_field(toks)
        descending = False
        if toks.peek_word("asc", "desc"):
            descending = toks.take()[1].lower() == "desc"
        if toks.peek() is not None:
            toks.fail(f"unexpected {toks.peek()[1]!r}; expected ASC or DESC")  # type: ignore[index]
        out.append(OrderKey(section, key, descending))
    return out
