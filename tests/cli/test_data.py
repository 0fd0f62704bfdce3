"""``loopml data ...`` through typer's CliRunner, on a real workspace."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from loopml.cli.main import app
from loopml.kernel.config import reset_settings
from loopml.workspace import init_workspace

runner = CliRunner()


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOOPML_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    reset_settings()
    init_workspace(tmp_path, actor="tester").store.dispose()
    rng = np.random.default_rng(0)
    pd.DataFrame({
        "id": np.arange(60), "temp": rng.normal(20, 5, 60).round(2),
        "weather": rng.choice(["rain", "sun"], 60), "rain": rng.random(60) < 0.3,
    }).to_csv(tmp_path / "weather.csv", index=False)
    return tmp_path


def _ok(args: list[str]):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result


def test_ingest_list_versions_show(root: Path) -> None:
    out = json.loads(_ok(["data", "ingest", "weather.csv", "--name", "weather", "--target", "rain", "--json"]).stdout)
    assert out["ref"] == "weather@1" and out["new"] and out["validation"]["ok"]
    assert "unchanged: same content as weather@1" in _ok(["data", "ingest", "weather.csv", "--name", "weather"]).stdout
    assert json.loads(_ok(["data", "list", "--json"]).stdout)[0]["latest_version"] == 1
    assert "weather" in _ok(["data", "list"]).stdout
    assert json.loads(_ok(["data", "versions", "weather", "--json"]).stdout)[0]["version"] == 1
    shown = _ok(["data", "show", "weather@1"]).stdout
    assert "temp" in shown and "60 rows" in shown
    assert json.loads(_ok(["data", "show", "weather", "--json"]).stdout)["profile"]["n_rows"] == 60


def test_validate_contract_and_failures_exit_1(root: Path) -> None:
    _ok(["data", "ingest", "weather.csv", "--name", "weather", "--target", "rain"])
    assert "valid" in _ok(["data", "validate", "weather"]).stdout
    yaml_text = _ok(["data", "contract", "weather", "--show"]).stdout
    assert "type: category" in yaml_text and "target: rain" in yaml_text
    strict = root / "strict.yaml"
    data = yaml.safe_load(yaml_text)
    data["columns"]["temp"]["max"] = 20.0
    strict.write_text(yaml.safe_dump(data))
    res = runner.invoke(app, ["data", "validate", "weather", "--contract", str(strict)])
    assert res.exit_code == 1, res.output
    assert "max" in res.stdout and "invalid" in res.stdout
    res = runner.invoke(app, ["data", "validate", "weather@1", "--contract", str(strict), "--json"])
    assert res.exit_code == 1 and json.loads(res.stdout)["failures"][0]["rule"] == "max"
    assert "replaced" in _ok(["data", "contract", "weather", "--edit", str(strict)]).stdout
    assert runner.invoke(app, ["data", "validate", "weather"]).exit_code == 1
    bad = root / "bad.yaml"
    bad.write_text("columns: {a: {type: text}}")
    res = runner.invoke(app, ["data", "contract", "weather", "--edit", str(bad)])
    assert res.exit_code == 2 and "allowed values: int, float" in res.output


def test_profile_writes_self_contained_html(root: Path) -> None:
    _ok(["data", "ingest", "weather.csv", "--name", "weather", "--target", "rain"])
    _ok(["data", "profile", "weather@1", "--output", "report.html"])
    html = (root / "report.html").read_text()
    assert '<section id="warnings">' in html and '<section id="target">' in html and "http" not in html.split("<body>")[0]
    data = json.loads(_ok(["data", "profile", "weather", "--json"]).stdout)
    assert data["ref"] == "weather@1" and "issues" in data


def test_errors_are_one_line_with_exit_codes(root: Path) -> None:
    (root / "ragged.csv").write_text("a,b\n1,2\n3,4,5\n")
    res = runner.invoke(app, ["data", "ingest", "ragged.csv", "--name", "r"])
    assert res.exit_code == 2 and "malformed CSV at line 3" in res.output
    res = runner.invoke(app, ["data", "show", "nope"])
    assert res.exit_code == 1 and "dataset 'nope' not found" in res.output
