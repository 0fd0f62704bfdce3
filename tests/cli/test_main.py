"""``loopml NAME`` mounts only the module that defines NAME; ``app`` and ``--help`` mount them all."""

from __future__ import annotations

import subprocess
import sys

_PROBE = """
import sys
sys.argv = ["loopml", *{argv!r}]
import loopml.cli.main as m
m._mount_for(sys.argv[1:])
print(",".join(sorted(m._mounted)))
"""


def _mounted(*argv: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", _PROBE.format(argv=list(argv))],
                         capture_output=True, text=True, check=True).stdout.strip()
    return set(out.split(",")) if out else set()


def test_a_command_mounts_only_its_module() -> None:
    assert _mounted("run", "quickstart.yaml", "--json") == {"pipeline"}
    assert _mounted("--debug", "models", "list") == {"models"}
    assert _mounted("lineage", "run:abc") == {"lineage"}
    assert _mounted("init", ".") == set()


def test_help_and_unknown_names_mount_every_module() -> None:
    every = _mounted()
    assert {"pipeline", "models", "data", "lineage", "quickstart"} <= every
    assert _mounted("--help") == _mounted("no-such-command") == _mounted("--help", "run") == every


def test_imported_app_has_every_command() -> None:
    from typer.main import get_command

    from loopml.cli.main import app

    names = set(get_command(app).commands)  # type: ignore[attr-defined]
    assert {"init", "run", "quickstart", "lineage", "data", "models", "runs", "audit"} <= names


def test_the_cached_run_path_imports_no_numpy_pandas_or_postgresql_dialect() -> None:
    code = (
        "import sys\n"
        "import loopml.cli.main, loopml.cli.pipeline, loopml.recipes, loopml.runner._records, loopml.runner._engine\n"
        "import loopml.governance.gates, loopml.evaluate, loopml.metadata.audit, loopml.metadata.lineage\n"
        "heavy = [m for m in ('numpy', 'pandas', 'pyarrow', 'sqlalchemy.dialects.postgresql') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"imported on the cached run path: {out}"


def test_console_entry_point_runs_a_command() -> None:
    out = subprocess.run([sys.executable, "-m", "loopml.cli.main", "run", "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "recipe" in out.stdout.lower()


def test_importing_the_cli_leaves_the_garbage_collector_running() -> None:
    code = "import gc; import loopml.cli.main, loopml.cli._common as c\nwith c.quiet_gc():\n    import json\nprint(gc.isenabled())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "True"
