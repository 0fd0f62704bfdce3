"""A step's source hash: what changes when its code changes, and nothing else.

The source is read with :func:`inspect.getsource`, parsed, stripped of its
decorators and docstring, and unparsed again, so comments, blank lines,
formatting and the ``@step(...)`` line do not change the hash. Functions whose
source cannot be read (built in a REPL, lambdas on a shared line) fall back to
their byte code and constants.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

__all__ = ["normalised_source", "source_hash"]


def normalised_source(func: Callable[..., Any]) -> str | None:
    """The function's source without decorators, docstring, comments or formatting."""
    try:
        text = textwrap.dedent(inspect.getsource(func))
        tree = ast.parse(text)
    except (OSError, TypeError, SyntaxError):
        return None
    node = tree.body[0] if tree.body else None
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    node.decorator_list = []
    body = node.body
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        node.body = body[1:] or [ast.Pass()]
    return ast.unparse(node)


def _bytecode_fingerprint(func: Callable[..., Any]) -> str:
    code = getattr(func, "__code__", None)
    if code is None:
        return repr(func)
    parts: list[str] = []

    def walk(c: Any) -> None:
        parts.append(c.co_code.hex())
        parts.append(repr(c.co_names))
        for const in c.co_consts:
            if inspect.iscode(const):
                walk(const)
            else:
                parts.append(repr(const))

    walk(code)
    return "\n".join(parts)


def source_hash(func: Callable[..., Any]) -> str:
    """sha256 (hex) of the normalised source of ``func``."""
    text = normalised_source(func)
    basis = f"src:{text}" if text is not None else f"code:{_bytecode_fingerprint(func)}"
    return hashlib.sha256(basis.encode()).hexdigest()
