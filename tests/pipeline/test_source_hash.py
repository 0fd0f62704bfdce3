"""The source hash ignores comments, docstrings, formatting and decorators, not code."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path
from types import ModuleType

from loopml.pipeline import normalised_source, source_hash, step


def load(tmp_path: Path, name: str, code: str) -> ModuleType:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(code))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BASE = """
from loopml.pipeline import step

@step
def double(x):
    return x * 2
"""

COSMETIC = '''
from loopml.pipeline import step, INPUTS

@step(cache=INPUTS)   # a different decorator line
def double(x):
    """Now with a docstring."""
    # and a comment
    return (
        x   *   2
    )
'''

CHANGED = """
from loopml.pipeline import step

@step
def double(x):
    return x * 3
"""


def test_cosmetic_changes_keep_the_hash(tmp_path: Path) -> None:
    a = load(tmp_path, "mod_base", BASE).double
    b = load(tmp_path, "mod_cosmetic", COSMETIC).double
    assert a.source_hash == b.source_hash
    assert normalised_source(a.func) == "def double(x):\n    return x * 2"


def test_code_changes_change_the_hash(tmp_path: Path) -> None:
    a = load(tmp_path, "mod_base2", BASE).double
    c = load(tmp_path, "mod_changed", CHANGED).double
    assert a.source_hash != c.source_hash


def test_functions_without_source_fall_back_to_bytecode() -> None:
    namespace: dict[str, object] = {}
    exec("def f(x):\n    return x + 1\n", namespace)  # noqa: S102 - no file: getsource fails
    exec("def g(x):\n    return x + 2\n", namespace)  # noqa: S102
    f, g = namespace["f"], namespace["g"]
    assert normalised_source(f) is None  # type: ignore[arg-type]
    assert len(source_hash(f)) == 64  # type: ignore[arg-type]
    assert source_hash(f) != source_hash(g)  # type: ignore[arg-type]
    assert step(f).source_hash == source_hash(f)  # type: ignore[arg-type]
