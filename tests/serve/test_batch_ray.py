"""Batch scoring on Ray Data: the same output, rejects, audit and lineage as the local path (local Ray, 2 CPUs)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'loopml[ray]')")

from loopml.kernel.exceptions import ServingError, ValidationError
from loopml.serve.batch import score_file
from loopml.serve.batch_ray import score_file_ray

# Ray Data's own context warns about its deprecated knobs as it copies itself
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")
TESTS = Path(__file__).parent.parent
CONTRACT = {
    "version": 1,
    "columns": {
        "tenure": {"type": "float", "nullable": False, "min": 0.0, "max": 100.0},
        "visits": {"type": "int", "nullable": True},
        "plan": {"type": "category", "nullable": False, "categories": ["basic", "pro"], "unseen": "reject"},
    },
    "target": "churned",
}


class CountingModel:
    """Wraps a classifier; every unpickling leaves a file named by the process (counts model loads)."""

    def __init__(self, inner: Any, count_dir: str, fail: bool = False) -> None:
        self.inner, self.count_dir, self.fail = inner, count_dir, fail
        self.classes_ = inner.classes_

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        Path(self.count_dir, f"{os.getpid()}-{uuid.uuid4().hex}").write_text("")

    def predict(self, X: pd.DataFrame) -> Any:
        if self.fail:
            raise RuntimeError("model exploded")
        return self.inner.predict(X)

    def predict_proba(self, X: pd.DataFrame) -> Any:
        return self.inner.predict_proba(X)


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "id": np.arange(n),
        "tenure": rng.uniform(0, 100, n).round(2),
        "visits": rng.integers(0, 20, n),
        "plan": rng.choice(["basic", "pro"], n),
    })


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    path = os.pathsep.join([str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])])
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield
    ray.shutdown()


def _register(ws: Any, count_dir: Path, *, fail: bool = False) -> str:
    from loopml.register import register_model

    train = _frame(200, seed=1)
    pre = ColumnTransformer([("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough")
    pipe = make_pipeline(pre, LogisticRegression(max_iter=500)).fit(train[["tenure", "visits", "plan"]],
                                                                     (train["tenure"] < 30).astype(int))
    count_dir.mkdir(exist_ok=True)
    record = register_model(ws, "churn", CountingModel(pipe, str(count_dir), fail), signature=CONTRACT,
                            task="classification")
    return f"churn/{record.version}"


def _input(path: Path, n: int = 1000) -> Path:
    df = _frame(n)
    for row, col, value in [(10, "tenure", 140.0), (130, "plan", "gold"), (700, "tenure", None), (999, "tenure", -1.0)]:
        if row < n:
            df.loc[row, col] = value
    df.to_parquet(path, row_group_size=300)
    return path


def test_ray_scoring_matches_the_local_path_rows_rejects_and_records(
    sqlite_workspace: Any, ray_cluster: None, tmp_path: Path
) -> None:
    counts = tmp_path / "loads"
    ref = _register(sqlite_workspace, counts)
    src = _input(tmp_path / "in.parquet")
    local = score_file(sqlite_workspace, ref, src, tmp_path / "local.parquet", batch_rows=128)
    seen: list[tuple[int, int | None]] = []
    remote = score_file_ray(sqlite_workspace, ref, src, tmp_path / "ray.parquet", batch_rows=128, num_workers=2,
                            progress=lambda d, t: seen.append((d, t)))
    assert (remote.rows_in, remote.rows_scored, remote.rows_rejected) == (1000, 996, 4)
    assert (local.rows_in, local.rows_scored, local.rows_rejected) == (1000, 996, 4)
    pd.testing.assert_frame_equal(pq.read_table(remote.output_path).to_pandas(),
                                  pq.read_table(local.output_path).to_pandas())
    pd.testing.assert_frame_equal(pq.read_table(remote.reject_path).to_pandas(),
                                  pq.read_table(local.reject_path).to_pandas())
    rejects = pq.read_table(remote.reject_path).to_pandas().set_index("_row")
    assert sorted(rejects.index) == [10, 130, 700, 999]  # global row numbers across blocks
    assert rejects.loc[999, "_reject_reason"] == "tenure: -1 below min 0.0 (rule min)"
    assert seen[-1] == (1000, 1000)
    # the model was unpickled once in this process and once per scoring actor, not per block
    pids = {p.name.split("-")[0] for p in counts.iterdir()}
    assert len(list(counts.iterdir())) <= 3 and str(os.getpid()) in pids and len(pids) <= 3

    from sqlalchemy import select

    from loopml.metadata._orm import AuditEvent, LineageEdge

    with sqlite_workspace.store.read() as session:
        events = session.execute(select(AuditEvent).where(AuditEvent.action == "prediction_batch.score")).scalars().all()
        edges = session.execute(select(LineageEdge).where(LineageEdge.dst_type == "prediction_batch")).scalars().all()
    event = next(e for e in events if e.object_id == remote.batch_id)
    assert event.after["output_digest"] == remote.output_digest and event.after["model_version"] == ref
    assert event.after["reject_digest"] == remote.reject_digest
    assert {(e.src_id, e.dst_id) for e in edges} == {(ref, local.batch_id), (ref, remote.batch_id)}


def test_a_model_failing_on_a_worker_is_a_serving_error_and_leaves_no_output(
    sqlite_workspace: Any, ray_cluster: None, tmp_path: Path
) -> None:
    ref = _register(sqlite_workspace, tmp_path / "loads", fail=True)
    src = _input(tmp_path / "in.parquet", 300)
    with pytest.raises(ServingError, match=r"model exploded"):
        score_file_ray(sqlite_workspace, ref, src, tmp_path / "out.parquet", batch_rows=100, num_workers=1)
    assert not (tmp_path / "out.parquet").exists() and not list(tmp_path.glob(".out.parquet*"))


def test_csv_input_and_missing_columns_are_refused_before_ray_runs(sqlite_workspace: Any, tmp_path: Path) -> None:
    ref = _register(sqlite_workspace, tmp_path / "loads")
    _frame(10).to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(ValidationError, match=r"the Ray path reads Parquet only"):
        score_file_ray(sqlite_workspace, ref, tmp_path / "in.csv", tmp_path / "out.parquet")
    _frame(10).drop(columns=["plan"]).to_parquet(tmp_path / "in.parquet")
    with pytest.raises(ValidationError, match=r"lacks column 'plan' that model churn/1 needs"):
        score_file_ray(sqlite_workspace, ref, tmp_path / "in.parquet", tmp_path / "out.parquet")


def test_cli_score_with_executor_ray(sqlite_workspace: Any, ray_cluster: None, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from loopml.cli.main import app
    from loopml.kernel.config import reset_settings

    ref = _register(sqlite_workspace, tmp_path / "loads")
    src = _input(tmp_path / "in.parquet", 400)
    monkeypatch.setenv("LOOPML_ROOT", str(sqlite_workspace.root))
    reset_settings()
    res = CliRunner().invoke(app, ["score", ref, "--input", str(src), "--output", str(tmp_path / "o.parquet"),
                                   "--executor", "ray", "--batch-rows", "100", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)  # Ray Data logs its progress on stderr
    assert (out["rows_in"], out["rows_scored"], out["rows_rejected"]) == (400, 398, 2)
    bad = CliRunner().invoke(app, ["score", ref, "--input", str(src), "--output", str(tmp_path / "p.parquet"),
                                   "--executor", "dask"])
    assert bad.exit_code != 0 and "--executor 'dask' is unknown" in bad.output
