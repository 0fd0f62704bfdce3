"""``loopml predictions``: query, count, feedback, compact, through the real CLI app."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from loopml.kernel.config import reset_settings
from loopml.predictions import PredictionLog, join_feedback
from tests.predictions.conftest import make_records

T0 = datetime.now(UTC) - timedelta(minutes=30)


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from loopml.workspace import init_workspace

    monkeypatch.setenv("LOOPML_ROOT", str(tmp_path))
    reset_settings()
    ws = init_workspace(tmp_path, actor="tester")
    with PredictionLog(ws.settings.resolved_predictions_url) as log:
        log.submit(make_records(5, ts=T0, step=timedelta(minutes=1)))
        log.submit(make_records(2, start=50, version=2, ts=T0))
    yield ws
    ws.store.dispose()


def _app():  # type: ignore[no-untyped-def]
    from loopml.cli.main import app

    return app


def test_query_prints_rows_as_json_and_filters(ws) -> None:  # type: ignore[no-untyped-def]
    res = CliRunner().invoke(_app(), ["predictions", "query", "churn", "--since", "1h", "--model-version", "2", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert sorted(r["request_id"] for r in rows) == ["req-50", "req-51"]
    res = CliRunner().invoke(_app(), ["predictions", "query", "churn", "--limit", "3"])
    assert res.exit_code == 0 and "churn: 3 rows" in res.stdout


def test_query_to_a_parquet_file(ws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "window.parquet"
    res = CliRunner().invoke(_app(), ["predictions", "query", "churn", "--output", str(out), "--limit", "1"])
    assert res.exit_code == 0, res.output
    assert len(pd.read_parquet(out)) == 7  # --output writes every matching row


def test_query_errors_are_one_line(ws) -> None:  # type: ignore[no-untyped-def]
    res = CliRunner().invoke(_app(), ["predictions", "query", "nope"])
    assert res.exit_code == 1 and "known endpoints: 'churn'" in res.stderr
    res = CliRunner().invoke(_app(), ["predictions", "query", "churn", "--since", "soon"])
    assert res.exit_code == 2 and "since 'soon' is not a time" in res.stderr


def test_count_and_compact(ws) -> None:  # type: ignore[no-untyped-def]
    res = CliRunner().invoke(_app(), ["predictions", "count", "churn", "--json"])
    assert json.loads(res.stdout) == {"endpoint": "churn", "count": 7}
    res = CliRunner().invoke(_app(), ["predictions", "compact", "churn", "--date", f"{T0:%Y-%m-%d}", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["rows"] == 7


def test_bulk_feedback_from_csv(ws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"request_id": ["req-0", "req-1"], "label": [1, 0]}).to_csv(labels, index=False)
    res = CliRunner().invoke(_app(), ["predictions", "feedback", "churn", "--file", str(labels), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["rows"] == 2
    joined = join_feedback(ws, "churn").set_index("request_id")
    assert joined.loc["req-0", "label"] == 1 and joined.loc["req-1", "label"] == 0
    res = CliRunner().invoke(_app(), ["predictions", "feedback", "churn", "--file", str(tmp_path / "x.csv")])
    assert res.exit_code == 2 and "does not exist" in res.stderr
