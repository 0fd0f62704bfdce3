"""The writer: flush cadence, nothing lost on close or SIGTERM, bounded loss on SIGKILL, spill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from loopml.kernel.exceptions import ServingError, ValidationError
from loopml.predictions import PredictionLog, PredictionSink, count_predictions, query_predictions
from loopml.predictions._journal import JournalSegment, read_segment, segment_paths
from loopml.predictions._log import commit_blocks
from loopml.predictions._schema import records_to_table
from tests.predictions.conftest import make_records

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _wait_for(fn, expected, timeout=15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if fn() == expected:
                return True
        except LookupError:
            pass
        time.sleep(0.02)
    return False


def test_log_is_a_prediction_sink(tmp_path: Path) -> None:
    with PredictionLog(tmp_path / "log") as log:
        assert isinstance(log, PredictionSink)


def test_writer_flushes_within_the_interval(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "log", flush_interval_s=0.05, roll_interval_s=0.1)
    try:
        log.submit(make_records(20))
        # No close(), no flush(): the background threads alone make the rows queryable.
        assert _wait_for(lambda: count_predictions(tmp_path / "log", "churn"), 20)
        assert log.lag_seconds() == 0.0
    finally:
        log.close()


def test_close_loses_nothing(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "log", flush_interval_s=10, roll_interval_s=10)
    for i in range(50):
        log.submit(make_records(100, start=i * 100))
    log.close()
    df = query_predictions(tmp_path / "log", "churn", columns=["request_id"])
    assert len(df) == 5000 and df["request_id"].nunique() == 5000
    assert not segment_paths(tmp_path / "log" / "_journal")
    with pytest.raises(ServingError, match="is closed"):
        log.submit(make_records(1))


def test_flush_makes_rows_queryable_now(tmp_path: Path) -> None:
    with PredictionLog(tmp_path / "log", flush_interval_s=30, roll_interval_s=30) as log:
        log.submit(make_records(7))
        log.flush()
        assert count_predictions(tmp_path / "log", "churn") == 7


def _child(tmp_path: Path, body: str) -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(body))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, str(Path(__file__).resolve().parents[2])])}
    return subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)


def test_sigkill_loses_at_most_the_last_interval(tmp_path: Path) -> None:
    root = tmp_path / "log"
    proc = _child(tmp_path, f"""
        import sys, time
        from loopml.predictions import PredictionLog
        from tests.predictions.conftest import make_records
        log = PredictionLog({str(root)!r}, flush_interval_s=0.05, roll_interval_s=3600)
        for i in range(10):
            log.submit(make_records(100, start=i * 100))
        while log.stats()["journaled_rows"] < 1000:   # older than one interval: journaled
            time.sleep(0.01)
        log.submit(make_records(500, start=1000))      # the last interval: may be lost
        print("ready", flush=True)
        time.sleep(60)
    """)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert not list(root.glob("endpoint=*"))  # nothing reached Parquet: only the journal has it
    PredictionLog(root).close()  # reopening replays the journal
    ids = query_predictions(root, "churn", columns=["request_id"])["request_id"]
    assert ids.is_unique
    assert 1000 <= len(ids) <= 1500
    assert set(ids) >= {f"req-{i}" for i in range(1000)}
    assert not segment_paths(root / "_journal")


def test_sigterm_loses_nothing_with_the_handler(tmp_path: Path) -> None:
    root = tmp_path / "log"
    proc = _child(tmp_path, f"""
        import time
        from loopml.predictions import PredictionLog, install_sigterm_handler
        from tests.predictions.conftest import make_records
        install_sigterm_handler()
        log = PredictionLog({str(root)!r}, flush_interval_s=30, roll_interval_s=30)
        log.submit(make_records(300))
        print("ready", flush=True)
        time.sleep(60)
    """)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == -signal.SIGTERM
    assert count_predictions(root, "churn") == 300


def test_spills_to_disk_past_the_buffer_bound_and_drops_nothing(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "log", flush_interval_s=0.02, roll_interval_s=3600, max_buffer_rows=10)
    for i in range(20):
        log.submit(make_records(5, start=i * 5))
        time.sleep(0.01)
    assert _wait_for(lambda: log.stats()["journaled_rows"], 100)
    stats = log.stats()
    assert stats["spilled_rows"] > 0 and stats["memory_rows"] <= 10
    log.close()
    df = query_predictions(tmp_path / "log", "churn", columns=["request_id"])
    assert len(df) == 100 and df["request_id"].nunique() == 100


def test_replay_after_a_crash_mid_commit_writes_no_duplicate(tmp_path: Path) -> None:
    root = tmp_path / "log"
    seg = JournalSegment(root / "_journal", chunk_rows=10)
    for i in range(3):
        seg.append(records_to_table(make_records(6, start=i * 6)))
    seg.sync()
    # The first Parquet chunk got written, then the process died before the rest.
    commit_blocks(root, seg.id, 10, [records_to_table(make_records(6)), records_to_table(make_records(6, start=6))])
    os.close(seg._fd)  # release the lock as a dead process would
    with open(seg.path, "ab") as fh:
        fh.write(b"LPJB\x00\x00")  # and a torn block at the tail
    PredictionLog(root).close()
    ids = query_predictions(root, "churn", columns=["request_id"])["request_id"]
    assert len(ids) == 18 and ids.is_unique


def test_recovery_checks_block_crcs_that_the_writers_own_commit_skips(tmp_path: Path) -> None:
    root = tmp_path / "log"
    seg = JournalSegment(root / "_journal", chunk_rows=100)
    for i in range(2):
        seg.append(records_to_table(make_records(6, start=i * 6)))
    seg.sync()
    raw = bytearray(seg.path.read_bytes())
    second = raw.index(b"LPJB", raw.index(b"LPJB") + 4)
    raw[second + 4 : second + 8] = bytes(4)  # the second block's stored CRC no longer matches its bytes
    seg.path.write_bytes(bytes(raw))
    # The writer's own commit trusts the bytes it wrote; anyone else checks them.
    assert sum(t.num_rows for t in read_segment(seg.path, verify=False)[1]) == 12
    assert sum(t.num_rows for t in read_segment(seg.path)[1]) == 6
    os.close(seg._fd)  # the writer died: a new log replays the segment, CRCs checked
    with PredictionLog(root) as log:
        pass
    assert log.stats()["recovered_rows"] == 6
    assert count_predictions(root, "churn") == 6


def test_journal_blocks_of_growing_and_shrinking_size_read_back_whole(tmp_path: Path) -> None:
    seg = JournalSegment(tmp_path / "_journal", chunk_rows=100)
    tables = [records_to_table(make_records(n, start=100 * i)) for i, n in enumerate((2, 50, 3, 80))]
    for table in tables:
        seg.append(table)
    seg.sync()
    back = list(read_segment(seg.path)[1])
    assert [t.num_rows for t in back] == [2, 50, 3, 80]
    assert all(a.equals(b) for a, b in zip(back, tables, strict=True))
    seg.discard()


def test_a_live_writers_segment_is_not_replayed_by_another(tmp_path: Path) -> None:
    root = tmp_path / "log"
    first = PredictionLog(root, flush_interval_s=0.02, roll_interval_s=3600)
    first.submit(make_records(10))
    assert _wait_for(lambda: first.stats()["journaled_rows"], 10)
    second = PredictionLog(root)
    second.close()
    assert second.stats()["recovered_rows"] == 0
    first.close()
    assert count_predictions(root, "churn") == 10


def test_serving_records_with_matrix_inputs_are_flattened(tmp_path: Path) -> None:
    from loopml.serve._records import MatrixColumns, PredictionRecord

    names = ["tenure", "charges"]
    now = datetime.now(UTC)
    recs = [
        PredictionRecord(f"r{i}", now, "churn", "churn", 2, MatrixColumns(names, {"tenure": 0, "charges": 1},
                         np.arange(6, dtype=float).reshape(3, 2) + i),
                         {"predict": np.array(["no", "yes", "yes"]), "predict_proba": np.array([[0.9, 0.1]] * 3),
                          "classes": ["no", "yes"]}, 3.0, 200)
        for i in range(2)
    ]
    recs.append(PredictionRecord("bad", now, "churn", "churn", 2, None, None, 0.5, 400, "field 'tenure' is missing"))
    with PredictionLog(tmp_path / "log") as log:
        log.submit(recs)
    df = query_predictions(tmp_path / "log", "churn")
    assert list(df["request_id"]) == ["bad", "r0", "r0", "r0", "r1", "r1", "r1"] or len(df) == 7
    ok = df[df["status"] == 200].sort_values(["request_id", "row"])
    assert list(ok["row"]) == [0, 1, 2, 0, 1, 2]
    assert list(ok["f_charges"]) == [1.0, 3.0, 5.0, 2.0, 4.0, 6.0]
    assert list(ok["prediction"]) == ["no", "yes", "yes"] * 2
    assert ok["proba_yes"].tolist() == [0.1] * 6
    bad = df[df["status"] == 400].iloc[0]
    assert bad["error"] == "field 'tenure' is missing"


def test_odd_inputs_and_columnar_batches_are_kept(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    with PredictionLog(tmp_path / "log") as log:
        log.submit([{"request_id": "odd", "ts": now, "endpoint": "e1", "model_name": "m", "model_version": 1,
                     "inputs": {"x": 1.0, "tags": ["a", "b"]}, "outputs": {"predict": [1], "score": 0.3},
                     "latency_ms": 1.0, "status": 200}])
        log.submit({"request_id": ["c1", "c2"], "ts": now, "endpoint": "e1", "model_name": "m", "model_version": 1,
                    "latency_ms": [1.0, 2.0], "status": 200,
                    "inputs": {"x": np.array([2.0, 3.0])}, "outputs": {"prediction": np.array([0, 1])}})
    df = query_predictions(tmp_path / "log", "e1").set_index("request_id")
    assert df.loc["odd", "inputs_json"] == '{"tags":["a","b"]}'
    assert df.loc["odd", "outputs_json"] == '{"score":0.3}'
    assert df.loc["c2", "f_x"] == 3.0 and df.loc["c2", "prediction"] == 1


def test_bad_options_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="flush_interval_s must be > 0"):
        PredictionLog(tmp_path, flush_interval_s=0)
    with pytest.raises(ValidationError, match="max_buffer_rows must be an integer >= 1"):
        PredictionLog(tmp_path, max_buffer_rows=0)
