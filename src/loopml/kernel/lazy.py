"""Lazy package facades: a public name resolves to its private module on first use.

A package's ``__init__`` declares where each name lives and binds the two
module hooks, so ``import loopml.x`` loads nothing heavy until a name is used::

    __getattr__, __dir__ = lazy_exports(__name__, {"run_pipeline": "loopml.runner._engine"})
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, homes: Mapping[str, str], *, also: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: each name is imported from its home once, then cached.

    ``also``: names the package defines itself, listed by ``dir()`` beside the lazy ones.
    """
    names = sorted([*homes, *also])

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        setattr(sys.modules[package], name, value)  # resolve once
        return value

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__
