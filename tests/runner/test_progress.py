"""Progress: silent by default, a Rich line per step on request."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import runner_steps as rs
from rich.console import Console

from loopml.runner import RichReporter, run_pipeline


def test_default_is_silent(sqlite_workspace: Any, tmp_path: Path, capsys: Any) -> None:
    run_pipeline(sqlite_workspace, rs.training_pipeline(), {"calls_dir": str(tmp_path)})
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_rich_reporter_shows_each_step_and_its_status(sqlite_workspace: Any, tmp_path: Path) -> None:
    p = rs.training_pipeline()
    run_pipeline(sqlite_workspace, p, {"calls_dir": str(tmp_path), "c": 2.0})
    buf = io.StringIO()
    reporter = RichReporter(p, console=Console(file=buf, width=120, force_terminal=False))
    run_pipeline(sqlite_workspace, p, {"calls_dir": str(tmp_path), "c": 3.0}, progress=reporter)
    text = buf.getvalue()
    for name in ("raw", "clean", "split", "model", "report"):
        assert name in text
    assert "cached" in text and "succeeded" in text and "5/5 steps" in text


def test_progress_true_writes_to_stderr(sqlite_workspace: Any, tmp_path: Path, capsys: Any) -> None:
    run_pipeline(sqlite_workspace, rs.training_pipeline(), {"calls_dir": str(tmp_path)}, progress=True)
    out = capsys.readouterr()
    assert out.out == "" and "training" in out.err
