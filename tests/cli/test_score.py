"""``loopml score``: batch scoring through the real CLI app."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from loopml.kernel.config import reset_settings

CONTRACT = {"version": 1, "columns": {"x": {"type": "float", "nullable": False, "min": 0.0}}}


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from loopml.register import register_model
    from loopml.workspace import init_workspace

    monkeypatch.setenv("LOOPML_ROOT", str(tmp_path))
    reset_settings()
    ws = init_workspace(tmp_path, actor="tester")
    x = np.linspace(0, 10, 50)
    model = LogisticRegression().fit(pd.DataFrame({"x": x}), (x > 5).astype(int))
    register_model(ws, "lin", model, signature=CONTRACT, task="classification")
    yield ws
    ws.store.dispose()


def _app():  # type: ignore[no-untyped-def]
    from loopml.cli.main import app

    return app


def test_score_writes_output_and_rejects(ws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "in.csv"
    pd.DataFrame({"x": [1.0, 9.0, -3.0, 4.0]}).to_csv(src, index=False)
    out = tmp_path / "out.parquet"
    res = CliRunner().invoke(_app(), ["score", "lin/1", "--input", str(src), "--output", str(out),
                                      "--reject", str(tmp_path / "rej.csv"), "--batch-rows", "2", "--json"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert (body["rows_in"], body["rows_scored"], body["rows_rejected"]) == (4, 3, 1)
    assert pd.read_parquet(out)["prediction"].tolist() == [0, 1, 0]
    assert pd.read_csv(tmp_path / "rej.csv")["_reject_reason"].tolist() == ["x: -3 below min 0.0 (rule min)"]


def test_score_shows_a_summary_and_fails_in_one_line(ws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "in.csv"
    pd.DataFrame({"x": [1.0, 2.0]}).to_csv(src, index=False)
    res = CliRunner().invoke(_app(), ["score", "lin/1", "-i", str(src), "-o", str(tmp_path / "o.csv")])
    assert res.exit_code == 0, res.output
    assert "Scored 2 of 2 rows with lin/1" in res.stdout
    res = CliRunner().invoke(_app(), ["score", "lin/1", "-i", str(src), "-o", str(tmp_path / "o.txt")])
    assert res.exit_code == 2 and "unsupported format '.txt'" in res.stderr
