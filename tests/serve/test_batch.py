"""Batch scoring: streamed in record batches, rejects with reasons, lineage and audit recorded."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.serve.batch import reject_reasons, score_file

CONTRACT = {
    "version": 1,
    "columns": {
        "tenure": {"type": "float", "nullable": False, "min": 0.0, "max": 100.0},
        "visits": {"type": "int", "nullable": True},
        "plan": {"type": "category", "nullable": False, "categories": ["basic", "pro"], "unseen": "reject"},
    },
    "target": "churned",
}


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "id": np.arange(n),
        "tenure": rng.uniform(0, 100, n).round(2),
        "visits": rng.integers(0, 20, n),
        "plan": rng.choice(["basic", "pro"], n),
    })


@pytest.fixture
def model_ref(workspace) -> str:  # type: ignore[no-untyped-def]
    train = _frame(200, seed=1)
    y = (train["tenure"] < 30).astype(int)
    pre = ColumnTransformer([("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough")
    pipe = make_pipeline(pre, LogisticRegression(max_iter=500)).fit(train[["tenure", "visits", "plan"]], y)
    from loopml.register import register_model

    register_model(workspace, "churn", pipe, signature=CONTRACT, task="classification")
    return "churn/1"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_scores_a_csv_in_batches_and_rejects_rows_with_reasons(workspace, model_ref: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    df = _frame(250).astype({"tenure": object, "visits": object, "plan": object})
    df.loc[10, "tenure"] = "abc"
    df.loc[70, "tenure"] = 140.0
    df.loc[130, "plan"] = "gold"
    df.loc[200, "tenure"] = None
    df.loc[201, "visits"] = 2.5
    src = tmp_path / "in.csv"
    df.to_csv(src, index=False)
    out = tmp_path / "out.csv"
    calls: list[tuple[int, int | None]] = []
    result = score_file(workspace, model_ref, src, out, batch_rows=64, progress=lambda d, t: calls.append((d, t)))
    assert (result.rows_in, result.rows_scored, result.rows_rejected) == (250, 245, 5)
    assert [c[0] for c in calls] == [64, 128, 192, 250]
    scored = pd.read_csv(out)
    assert len(scored) == 245 and {"id", "prediction", "proba_0", "proba_1"} <= set(scored.columns)
    assert np.allclose(scored["proba_0"] + scored["proba_1"], 1.0)
    rejects = pd.read_csv(result.reject_path).set_index("_row")
    assert sorted(rejects.index) == [10, 70, 130, 200, 201]
    assert rejects.loc[10, "_reject_reason"] == "tenure: 'abc' is not a number (rule type)"
    assert rejects.loc[70, "_reject_reason"] == "tenure: 140 above max 100.0 (rule max)"
    assert rejects.loc[130, "_reject_reason"] == "plan: 'gold' not in categories ['basic', 'pro'] (rule unseen)"
    assert rejects.loc[200, "_reject_reason"] == "tenure: missing value not allowed (rule nullable)"
    assert rejects.loc[201, "_reject_reason"] == "visits: '2.5' is not an integer (rule type)"
    assert result.reject_path == str((tmp_path / "out.rejects.csv").resolve())


def test_scores_a_parquet_larger_than_one_batch_and_records_lineage(workspace, model_ref: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "in.parquet"
    _frame(1000).to_parquet(src, row_group_size=300)
    out = tmp_path / "scored.parquet"
    result = score_file(workspace, model_ref, src, out, batch_rows=128)
    table = pq.read_table(out)
    assert table.num_rows == 1000 and result.rows_rejected == 0 and result.reject_path is None
    assert table.column("id").to_pylist() == list(range(1000))
    assert result.input_digest == _sha(src) and result.output_digest == _sha(out)
    assert (result.model_name, result.model_version) == ("churn", 1)

    from sqlalchemy import select

    from loopml.metadata._orm import AuditEvent, LineageEdge

    with workspace.store.read() as session:
        event = session.execute(select(AuditEvent).where(AuditEvent.action == "prediction_batch.score")).scalar_one()
        edge = session.execute(select(LineageEdge).where(LineageEdge.dst_type == "prediction_batch")).scalar_one()
    assert event.object_id == result.batch_id
    assert event.after["input_digest"] == result.input_digest
    assert event.after["output_digest"] == result.output_digest
    assert event.after["model_version"] == "churn/1"
    assert (edge.src_type, edge.src_id, edge.relation, edge.dst_id) == ("model_version", "churn/1", "used_by", result.batch_id)


def test_parquet_rejects_go_to_a_parquet_reject_file(sqlite_workspace, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from loopml.register import register_model

    df = _frame(50)
    pipe = make_pipeline(
        ColumnTransformer([("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough"),
        LogisticRegression(max_iter=300),
    ).fit(df[["tenure", "visits", "plan"]], (df["tenure"] < 50).astype(int))
    register_model(sqlite_workspace, "churn", pipe, signature=CONTRACT, task="classification")
    df.loc[3, "tenure"] = -1.0
    df.to_parquet(tmp_path / "in.parquet")
    result = score_file(sqlite_workspace, "churn/1", tmp_path / "in.parquet", tmp_path / "o.parquet",
                        reject_path=tmp_path / "bad.parquet", batch_rows=16)
    bad = pq.read_table(tmp_path / "bad.parquet").to_pandas()
    assert bad["_row"].tolist() == [3] and bad["_reject_reason"].tolist() == ["tenure: -1 below min 0.0 (rule min)"]
    assert result.rows_scored == 49


def test_input_missing_a_contract_column_fails_before_any_output(sqlite_workspace, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from loopml.register import register_model

    df = _frame(40)
    pipe = make_pipeline(
        ColumnTransformer([("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough"),
        LogisticRegression(max_iter=300),
    ).fit(df[["tenure", "visits", "plan"]], (df["tenure"] < 50).astype(int))
    register_model(sqlite_workspace, "churn", pipe, signature=CONTRACT, task="classification")
    df.drop(columns=["plan"]).to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(ValidationError, match="lacks column 'plan' that model churn/1 needs") as info:
        score_file(sqlite_workspace, "churn/1", tmp_path / "in.csv", tmp_path / "out.csv")
    assert info.value.field == "plan"
    assert not (tmp_path / "out.csv").exists() and not list(tmp_path.glob(".*.tmp"))


def test_bad_paths_and_options(sqlite_workspace, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFoundError, match="input file .*nope.csv' does not exist"):
        score_file(sqlite_workspace, "churn/1", tmp_path / "nope.csv", tmp_path / "o.csv")
    (tmp_path / "in.json").write_text("{}")
    with pytest.raises(ValidationError, match="unsupported format '.json'; use .parquet or .csv"):
        score_file(sqlite_workspace, "churn/1", tmp_path / "in.json", tmp_path / "o.csv")
    (tmp_path / "in.csv").write_text("a\n1\n")
    with pytest.raises(ValidationError, match="batch_rows must be an integer >= 1"):
        score_file(sqlite_workspace, "churn/1", tmp_path / "in.csv", tmp_path / "o.csv", batch_rows=0)


def test_reject_reasons_collects_every_broken_rule_per_row() -> None:
    frame = pd.DataFrame({"tenure": ["x", "5"], "visits": ["1", "y"], "plan": [None, "pro"]})
    typed, reasons = reject_reasons(frame, CONTRACT)
    assert reasons[0] == ("tenure: 'x' is not a number (rule type); "
                          "plan: missing value not allowed (rule nullable)")
    assert reasons[1] == "visits: 'y' is not an integer (rule type)"
    assert typed["tenure"].tolist()[1] == 5.0
