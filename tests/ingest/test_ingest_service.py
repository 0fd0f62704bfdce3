"""Ingesting CSV / Parquet / DataFrame / SQL into dataset versions, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from loopml.ingest import get_dataset_version, ingest, list_datasets, list_versions, load_frame
from loopml.kernel.exceptions import DataError, NotFoundError, ValidationError
from loopml.metadata._orm import AuditEvent, LineageEdge


def _frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "id": np.arange(n),
        "temp": rng.normal(20, 5, n).round(3),
        "weather": rng.choice(["rain", "sun", "fog"], n),
        "rain_tomorrow": rng.random(n) < 0.3,
        "day": pd.date_range("2024-01-01", periods=n, freq="D"),
    })


def test_ingest_csv_records_version_audit_lineage_and_contract(workspace, tmp_path: Path) -> None:
    path = tmp_path / "weather.csv"
    _frame().to_csv(path, index=False)
    rec = ingest(workspace, path, "weather", target="rain_tomorrow", description="daily weather")
    assert (rec.ref, rec.new, rec.n_rows, rec.n_columns) == ("weather@1", True, 200, 5)
    assert [c["type"] for c in rec.schema] == ["int", "float", "string", "bool", "datetime"]
    assert rec.source["path"] == str(path.resolve())
    with workspace.store.read() as s:
        events = s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()
        assert [(e.action, e.object_id) for e in events] == [("dataset.ingest", "weather@1"), ("dataset.contract", "weather")]
        assert events[0].after["digest"] == rec.digest and events[0].actor == "tester"
        edge = s.execute(select(LineageEdge)).scalar_one()
        assert (edge.src_type, edge.src_id, edge.dst_type, edge.dst_id) == ("source", path.resolve().as_uri(), "dataset_version", "weather@1")
    stored = get_dataset_version(workspace, "weather")
    assert stored.digest == rec.digest and stored.profile == rec.profile
    assert list_datasets(workspace)[0].description == "daily weather"


def test_same_data_same_version_new_data_new_version(workspace, tmp_path: Path) -> None:
    df = _frame()
    csv, pq = tmp_path / "a.csv", tmp_path / "a.parquet"
    df.to_csv(csv, index=False)
    df.to_parquet(pq)
    first = ingest(workspace, csv, "w")
    # Same content through three other readers: the content digest matches, nothing is written.
    for source in (pq, df, csv):
        again = ingest(workspace, source, "w")
        assert (again.version, again.new, again.digest) == (1, False, first.digest)
    second = ingest(workspace, _frame(seed=1), "w")
    assert (second.version, second.new) == (2, True)
    assert [v.version for v in list_versions(workspace, "w")] == [1, 2]
    with workspace.store.read() as s:
        assert [e.action for e in s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()] == [
            "dataset.ingest", "dataset.contract", "dataset.ingest"]


def test_load_frame_round_trips_values_and_reads_columns(sqlite_workspace) -> None:
    df = _frame(50)
    df.loc[3, "temp"] = np.nan
    rec = ingest(sqlite_workspace, df, "w")
    back = load_frame(sqlite_workspace, rec)
    assert list(back.columns) == list(df.columns)
    pd.testing.assert_series_equal(back["temp"], df["temp"])
    assert back["weather"].tolist() == df["weather"].tolist()
    assert list(load_frame(sqlite_workspace, "w@1", columns=["weather"]).columns) == ["weather"]
    with pytest.raises(ValidationError, match="dataset w@1 has no column 'nope'"):
        load_frame(sqlite_workspace, "w", columns=["nope"])


def test_references_resolve_and_fail_clearly(sqlite_workspace) -> None:
    ingest(sqlite_workspace, _frame(10), "w")
    assert get_dataset_version(sqlite_workspace, "w@latest").version == 1
    with pytest.raises(NotFoundError, match="dataset 'w' has no version 9; versions: 1"):
        get_dataset_version(sqlite_workspace, "w@9")
    with pytest.raises(NotFoundError, match="dataset 'nope' not found"):
        get_dataset_version(sqlite_workspace, "nope")
    with pytest.raises(ValidationError, match="the version must be a positive integer"):
        get_dataset_version(sqlite_workspace, "w@x")


def test_ingest_sql_from_sqlite(sqlite_workspace, tmp_path: Path) -> None:
    db = tmp_path / "src.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER, x REAL, s TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(1, 0.5, "a"), (2, None, "b"), (3, 1.5, None)])
    rec = ingest(sqlite_workspace, f"sqlite:///{db}", "sqlt", query="SELECT * FROM t ORDER BY id")
    assert rec.n_rows == 3 and rec.source["kind"] == "sql" and rec.source["query"].startswith("SELECT")
    assert rec.profile["columns"]["x"]["n_missing"] == 1
    with pytest.raises(DataError, match="the query failed: no such table: missing"):
        ingest(sqlite_workspace, f"sqlite:///{db}", "sqlt", query="SELECT * FROM missing")
    with pytest.raises(ValidationError, match="pass query="):
        ingest(sqlite_workspace, f"sqlite:///{db}", "sqlt")


@pytest.mark.postgres
def test_ingest_sql_from_postgres(workspace) -> None:
    from loopml.testing import PG_DB, PG_HOST, PG_PORT, PG_USER, require_service

    require_service("postgres")
    import psycopg

    dsn = f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={PG_DB}"
    table = f"src_{np.random.default_rng().integers(1 << 40):x}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id int, amount numeric(10,2), label text, at timestamptz)")
        conn.execute(f"INSERT INTO {table} VALUES (1, 2.50, 'a', '2024-01-01T00:00:00Z'), (2, NULL, 'b', NULL)")
    try:
        url = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{PG_DB}"
        rec = ingest(workspace, url, "pg", query=f"SELECT * FROM {table} ORDER BY id")
        assert [c["type"] for c in rec.schema] == ["int", "float", "string", "datetime"]
        assert load_frame(workspace, rec)["amount"].tolist()[0] == 2.5
        again = ingest(workspace, url, "pg", query=f"SELECT * FROM {table} ORDER BY id")
        assert not again.new
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")


def test_bad_inputs_name_file_and_rule_and_write_nothing(sqlite_workspace, tmp_path: Path) -> None:
    ws = sqlite_workspace
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(ValidationError, match=r"ragged\.csv: malformed CSV at line 3: every row must have as many fields"):
        ingest(ws, ragged, "bad")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValidationError, match=r"empty\.csv: the CSV file is empty"):
        ingest(ws, empty, "bad")
    header = tmp_path / "header.csv"
    header.write_text("a,b\n")
    with pytest.raises(ValidationError, match=r"header\.csv has no rows \(columns: a, b\)"):
        ingest(ws, header, "bad")
    with pytest.raises(DataError, match=r"nope\.csv: no such file"):
        ingest(ws, tmp_path / "nope.csv", "bad")
    ok = tmp_path / "ok.csv"
    ok.write_text("a,b\n1,2\n")
    with pytest.raises(ValidationError, match=r"target column 'y' is not in .*ok\.csv; columns: a, b"):
        ingest(ws, ok, "bad", target="y")
    with pytest.raises(ValidationError, match="cannot tell the format from the extension .xlsx"):
        ingest(ws, tmp_path / "x.xlsx" if (tmp_path / "x.xlsx").write_text("x") else None, "bad")
    with pytest.raises(ValidationError, match="DataFrame column 'm' has values of mixed or unsupported types"):
        ingest(ws, pd.DataFrame({"m": [1, "a"]}), "bad")
    with pytest.raises(ValidationError, match="dataset 'bad name' is invalid"):
        ingest(ws, ok, "bad name")
    assert list_datasets(ws) == []
    assert list(ws.artifacts.digests()) == []



def test_a_quote_that_never_closes_is_a_malformed_csv_not_one_huge_value(sqlite_workspace, tmp_path: Path) -> None:
    ws = sqlite_workspace
    broken = tmp_path / "unclosed.csv"
    broken.write_text('a,b\n1,2\n3,"4\n5,6\n7,8\n')  # pyarrow alone reads rows 5,6 and 7,8 into one value
    with pytest.raises(ValidationError, match=r"unclosed\.csv: malformed CSV: the quoted value of column 'b' in data row 2 never closes"):
        ingest(ws, broken, "bad")
    assert list_datasets(ws) == []
    # Quoted newlines, doubled quotes and a literal inch mark in closed or unquoted values stay valid.
    fine = tmp_path / "fine.csv"
    fine.write_text('a,b\n1,"x\ny"\n2,"say ""hi"""\n3,12" tv\n')
    rec = ingest(ws, fine, "fine")
    assert load_frame(ws, rec)["b"].tolist() == ["x\ny", 'say "hi"', '12" tv']

def test_profile_is_json_safe_and_matches_numpy(sqlite_workspace) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, 5000)
    df = pd.DataFrame({"x": x, "k": rng.choice(["a", "b"], 5000), "inf": np.r_[np.inf, -np.inf, np.nan, x[:4997]]})
    df = pd.concat([df, df.iloc[:7]], ignore_index=True)  # 7 duplicate rows
    prof = ingest(sqlite_workspace, df, "p").profile
    json.dumps(prof, allow_nan=False)
    assert prof["n_duplicate_rows"] == 7
    col = prof["columns"]["x"]
    allx = np.r_[x, x[:7]]
    assert col["quantiles"]["0.5"] == pytest.approx(np.quantile(allx, 0.5))
    assert col["mean"] == pytest.approx(allx.mean()) and col["std"] == pytest.approx(allx.std())
    assert sum(col["histogram"]["counts"]) == allx.size and len(col["histogram"]["edges"]) == 21
    assert len(col["percentiles"]) == 101 and len(col["sample"]) == 100
    # The 7 repeated rows repeat the infinities and the NaN too.
    assert prof["columns"]["inf"]["n_inf"] == 4 and prof["columns"]["inf"]["n_missing"] == 2
    top = prof["columns"]["k"]["top"]
    assert top["counts"] == sorted(top["counts"], reverse=True) and sum(top["counts"]) == 5007


def test_csv_slices_promote_types_and_keep_quoted_newlines(sqlite_workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import loopml.ingest._sources as sources

    rows = ["a,b,c"] + [f'{i},"x, ""q""\nline",{i % 2 == 0}' for i in range(300)] + ['1.5,"z",maybe']
    path = tmp_path / "s.csv"
    path.write_text("\n".join(rows) + "\n")
    whole = ingest(sqlite_workspace, path, "whole")
    monkeypatch.setattr(sources, "_CSV_SLICE", 1000)
    sliced = ingest(sqlite_workspace, path, "sliced")
    assert sliced.digest == whole.digest
    assert [c["arrow_type"] for c in sliced.schema] == ["double", "string", "string"]
    assert load_frame(sqlite_workspace, sliced)["b"][0] == 'x, "q"\nline'
