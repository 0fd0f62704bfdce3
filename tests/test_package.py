"""The package as a whole: a light facade, explicit exports, enforced layering."""

from __future__ import annotations

import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import loopml

SRC = Path(loopml.__file__).parent
HEAVY = ("sqlalchemy", "pandas", "numpy", "sklearn", "fastapi", "starlette", "pyarrow", "duckdb")


def test_import_loopml_pulls_in_no_heavy_library() -> None:
    code = f"import sys, loopml; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_facade_name_resolves_to_its_home() -> None:
    for name in loopml.__all__:
        assert getattr(loopml, name) is not None, name


def test_unknown_facade_name_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        loopml.nope  # noqa: B018


PUBLIC_MODULES = sorted(
    m.name for m in pkgutil.walk_packages([str(SRC)], prefix="loopml.")
    if ".migrations" not in m.name and not m.name.rsplit(".", 1)[-1].startswith("_")
)


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_each_public_module_imports_alone_in_a_fresh_interpreter(module: str) -> None:
    """Catches import cycles that a warm interpreter hides (private modules load through these)."""
    if module.endswith("__main__"):
        pytest.skip("entry script")
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_nothing_inside_the_package_imports_the_facade() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "__init__.py" and path.parent == SRC:
            continue
        text = path.read_text()
        if re.search(r"^\s*(from loopml import|import loopml\s*$)", text, re.MULTILINE):
            offenders.append(str(path.relative_to(SRC)))
    assert offenders == []


def test_layer_contracts_hold() -> None:
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install 'loopml[test]')")
    root = SRC.parent.parent
    proc = subprocess.run([exe], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:]
