"""ONNX export: parity on real sklearn pipelines, the record it leaves, and clear refusals."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")


def _frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "temp": rng.uniform(-5, 40, n),
        "humidity": np.where(rng.random(n) < 0.05, np.nan, rng.uniform(10, 100, n)),
        "weather": rng.choice(["rain", "sun", "fog"], n),
        "rain_tomorrow": 0,
    }).assign(rain_tomorrow=lambda d: ((d.humidity.fillna(50) > 60) | (d.weather == "rain")).astype(int))


def _signature(frame: pd.DataFrame, features: list[str]) -> dict[str, Any]:
    from loopml.validate import infer_contract

    contract = infer_contract(frame[features]).to_dict()
    contract.pop("target", None)
    return contract


def _pipeline(final: Any) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    pre = ColumnTransformer([
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["weather"]),
        ("num", SimpleImputer(strategy="median"), ["temp", "humidity"]),
    ])
    return Pipeline([("pre", pre), ("model", final)])


FEATURES = ["temp", "humidity", "weather"]


@pytest.fixture
def hgb_ws(sqlite_workspace):  # type: ignore[no-untyped-def]
    """A HistGradientBoosting pipeline with a categorical column, registered on an ingested dataset."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from loopml.ingest import ingest
    from loopml.register import register_model

    frame = _frame()
    ingest(sqlite_workspace, frame, "weather")
    model = _pipeline(HistGradientBoostingClassifier(max_iter=40, random_state=0))
    model.fit(frame[FEATURES], frame["rain_tomorrow"])
    register_model(sqlite_workspace, "rain", model, signature=_signature(frame, FEATURES),
                   task="classification", dataset_versions=["weather@1"])
    return sqlite_workspace


def test_hist_gradient_boosting_pipeline_exports_within_tolerance_on_its_data(hgb_ws) -> None:  # type: ignore[no-untyped-def]
    import onnx

    from loopml.metadata.audit import audit_log
    from loopml.metadata.lineage import lineage
    from loopml.serve.export import export_model

    result = export_model(hgb_ws, "rain/1", format="onnx")
    p = result.parity
    assert p.source == "dataset_version:weather@1" and p.n_rows == 400
    assert p.passed and p.max_abs_diff_proba is not None and p.max_abs_diff_proba <= 1e-4
    assert p.label_agreement == 1.0 and p.tolerance == 1e-4
    assert [i["name"] for i in result.inputs] == FEATURES
    assert [i["type"] for i in result.inputs] == ["float32", "float32", "string"]

    data = Path(result.path).read_bytes()
    assert Path(result.path).name == "rain-1.onnx"
    assert hgb_ws.artifacts.get_bytes(result.digest) == data  # stored in the artifact store too
    meta = {m.key: m.value for m in onnx.load_from_string(data).metadata_props}
    assert meta["loopml.model"] == "rain" and meta["loopml.version"] == "1"
    event = audit_log(hgb_ws, action="model.export")[0]
    assert event.object_id == "rain/1" and event.after["digest"] == result.digest
    assert event.after["parity"]["passed"] is True
    graph = lineage(hgb_ws, ("model_version", "rain/1"), direction="downstream")
    assert any(e.relation == "exported_as" and e.dst == ("artifact", result.digest) for e in graph.edges)


def test_logistic_regression_exports_with_synthesized_rows_and_with_a_sample(sqlite_workspace, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression

    from loopml.register import register_model
    from loopml.serve.export import export_model

    frame = _frame(seed=1)
    numeric = ["temp", "humidity"]
    frame["humidity"] = frame["humidity"].fillna(50.0)
    model = LogisticRegression(max_iter=500).fit(frame[numeric], frame["rain_tomorrow"])
    register_model(sqlite_workspace, "lin", model, signature=_signature(frame, numeric), task="classification")

    synth = export_model(sqlite_workspace, "lin/1", output=tmp_path / "lin.onnx")
    assert synth.parity.source == "synthesized" and synth.parity.n_rows == 256
    assert synth.parity.passed and synth.parity.max_abs_diff_proba <= 1e-4
    assert synth.inputs == [{"name": "input", "type": "float32", "shape": [None, 2], "features": numeric}]
    assert synth.path == str((tmp_path / "lin.onnx").resolve())

    sampled = export_model(sqlite_workspace, "lin/1", output=tmp_path / "lin2.onnx", sample=frame.head(50))
    assert sampled.parity.source == "sample" and sampled.parity.n_rows == 50 and sampled.parity.passed


def test_a_failed_parity_check_writes_nothing_unless_asked(hgb_ws, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from loopml.kernel.exceptions import GateFailed
    from loopml.metadata.audit import audit_log
    from loopml.serve.export import export_model

    out = tmp_path / "strict.onnx"
    with pytest.raises(GateFailed, match=r"failed the parity check on 400 rows \(dataset_version:weather@1\).*"
                                         r"tolerance 1e-15.*nothing was written"):
        export_model(hgb_ws, "rain/1", output=out, tolerance=1e-15)
    assert not out.exists() and audit_log(hgb_ws, action="model.export") == []
    loose = export_model(hgb_ws, "rain/1", output=out, tolerance=1e-15, require_parity=False)
    assert out.exists() and loose.parity.passed is False


def test_unsupported_models_are_refused_with_the_class_and_the_supported_list(sqlite_workspace) -> None:  # type: ignore[no-untyped-def]
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from loopml.kernel.exceptions import RegistryError
    from loopml.register import register_model
    from loopml.serve.export import export_model

    frame = _frame(seed=2)
    numeric = ["temp", "humidity"]
    frame["humidity"] = frame["humidity"].fillna(50.0)
    odd = Pipeline([("log", FunctionTransformer(np.log1p)), ("lr", LogisticRegression())])
    odd.fit(frame[numeric].clip(lower=0), frame["rain_tomorrow"])
    register_model(sqlite_workspace, "odd", odd, signature=_signature(frame, numeric), task="classification")
    with pytest.raises(RegistryError, match=r"model odd/1 \(Pipeline\) cannot be exported to ONNX: "
                                            r"FunctionTransformer is not supported; supported: .*LogisticRegression"):
        export_model(sqlite_workspace, "odd/1")

    cat = frame[["temp", "weather"]].astype({"weather": "category"})
    native = HistGradientBoostingClassifier(max_iter=5, categorical_features="from_dtype").fit(cat, frame["rain_tomorrow"])
    register_model(sqlite_workspace, "native", native, signature=_signature(cat, ["temp", "weather"]),
                   task="classification")
    with pytest.raises(RegistryError, match="HistGradientBoostingClassifier with native categorical features"):
        export_model(sqlite_workspace, "native/1")


def test_bad_arguments_and_a_missing_extra(hgb_ws, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from loopml.kernel.exceptions import MissingExtraError, ValidationError
    from loopml.serve.export import export_model

    with pytest.raises(ValidationError, match="export format 'tflite' is not supported; choose one of: onnx"):
        export_model(hgb_ws, "rain/1", format="tflite")
    with pytest.raises(ValidationError, match="tolerance must be a number > 0, got 0"):
        export_model(hgb_ws, "rain/1", tolerance=0)
    with pytest.raises(ValidationError, match="sample lacks feature 'weather'"):
        export_model(hgb_ws, "rain/1", sample=_frame()[["temp", "humidity"]])
    monkeypatch.setitem(sys.modules, "skl2onnx", None)
    with pytest.raises(MissingExtraError, match=r"ONNX export needs the 'skl2onnx' package.*loopml\[onnx\]"):
        export_model(hgb_ws, "rain/1")


def test_the_export_command(hgb_ws, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import typer
    from typer.testing import CliRunner

    from loopml.cli.models_export import register_export
    from loopml.kernel.config import reset_settings

    monkeypatch.setenv("LOOPML_ROOT", str(hgb_ws.root))
    reset_settings()
    group = typer.Typer()
    group.command("noop")(lambda: None)  # a group of one command would collapse into it
    register_export(group)
    out = tmp_path / "cli.onnx"
    res = CliRunner().invoke(group, ["export", "rain/1", "--format", "onnx", "--output", str(out), "--json"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert body["parity"]["passed"] is True and body["path"] == str(out.resolve())
    res = CliRunner().invoke(group, ["export", "rain/1", "--output", str(out)])
    assert res.exit_code == 0, res.output
    assert "parity passed" in res.stdout and "max |diff| proba" in res.stdout
    res = CliRunner().invoke(group, ["export", "rain/1", "--format", "tflite"])
    assert res.exit_code == 2 and "export format 'tflite' is not supported" in res.stderr
