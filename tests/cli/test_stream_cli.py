"""``loopml stream``: the real CLI app against the real Redis and Mosquitto."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from loopml.kernel.config import reset_settings
from loopml.testing import require_service

SIGNATURE = {"version": 1, "columns": {
    "x": {"type": "float", "nullable": False, "min": 0.0, "max": 10.0},
    "color": {"type": "category", "nullable": False, "categories": ["blue", "red"], "unseen": "reject"},
}}


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from loopml.register import register_model
    from loopml.workspace import init_workspace

    monkeypatch.setenv("LOOPML_ROOT", str(tmp_path))
    reset_settings()
    ws = init_workspace(tmp_path, actor="tester")
    x = np.linspace(0, 10, 60)
    frame = pd.DataFrame({"x": x, "color": np.where(np.arange(60) % 2, "red", "blue")})
    model = Pipeline([("pre", ColumnTransformer([("c", OneHotEncoder(), ["color"])], remainder="passthrough")),
                      ("lr", LogisticRegression())]).fit(frame, (x > 5).astype(int))
    register_model(ws, "lin", model, signature=SIGNATURE, task="classification")
    yield ws
    ws.store.dispose()


def _app():  # type: ignore[no-untyped-def]
    from loopml.cli.main import app

    return app


def test_stream_scores_a_redis_stream_and_logs_every_prediction(ws) -> None:  # type: ignore[no-untyped-def]
    require_service("redis")
    import redis

    from loopml.predictions import count_predictions

    client = redis.Redis(host="127.0.0.1", port=6379)
    p = f"loopml-test:{uuid.uuid4().hex[:10]}"
    try:
        ids = [client.xadd(f"{p}:in", {"data": json.dumps({"x": float(i), "color": "red"})}).decode()
               for i in range(4)]
        client.xadd(f"{p}:in", {"x": "99", "color": "red"})  # out of range: dead-lettered
        res = CliRunner().invoke(_app(), [
            "stream", "lin/1", "--source", f"redis://127.0.0.1:6379/0?stream={p}:in&group=cli",
            "--output", f"{p}:out", "--dead-letter", f"{p}:dead", "--endpoint", "lin-stream",
            "--max-messages", "5", "--timeout", "30", "--json"])
        assert res.exit_code == 0, res.output
        body = json.loads(res.stdout)
        assert (body["consumed"], body["predicted"], body["dead_lettered"], body["acked"]) == (5, 4, 1, 5)
        assert (body["model_name"], body["model_version"], body["output"]) == ("lin", 1, f"{p}:out")
        out = client.xrange(f"{p}:out")
        assert [f[b"request_id"].decode() for _, f in out] == ids
        assert [json.loads(f[b"prediction"]) for _, f in out] == [0, 0, 0, 0]
        assert client.xrange(f"{p}:dead")[0][1][b"rule"] == b"max"
        assert client.xpending(f"{p}:in", "cli")["pending"] == 0
        assert count_predictions(ws, "lin-stream") == 5  # the log is closed (flushed) on exit
    finally:
        for key in client.scan_iter(f"{p}*"):
            client.delete(key)
        client.close()


def test_stream_answers_an_mqtt_device(ws) -> None:  # type: ignore[no-untyped-def]
    require_service("mqtt")
    import paho.mqtt.client as mqtt

    base = f"loopml-test/{uuid.uuid4().hex[:10]}"
    answers: list[tuple[str, dict[str, Any]]] = []
    done = threading.Event()
    device = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=f"dev-{uuid.uuid4().hex[:8]}")

    def on_message(c: Any, u: Any, m: Any) -> None:
        answers.append((m.topic, json.loads(m.payload)))
        done.set()

    device.on_message = on_message
    device.connect("127.0.0.1", 1883)
    device.loop_start()
    device.subscribe(f"{base}/out/#", qos=1)

    def keep_sending() -> None:  # until the CLI has subscribed and answered
        while not done.wait(0.2):
            device.publish(f"{base}/in/dev-1", json.dumps({"x": 8.0, "color": "blue", "request_id": "q1"}), qos=1)

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        res = CliRunner().invoke(_app(), [
            "stream", "lin/1", "--source",
            f"mqtt://127.0.0.1:1883/{base}/in/#?client_id=cli-{uuid.uuid4().hex[:8]}&clean_session=1",
            "--output", f"{base}/out", "--max-messages", "1", "--timeout", "30", "--no-log"])
        assert res.exit_code == 0, res.output
        assert done.wait(10)
    finally:
        done.set()
        sender.join()
        device.disconnect()
        device.loop_stop()
    topic, answer = answers[0]
    assert topic == f"{base}/out/dev-1" and answer["request_id"] == "q1" and answer["prediction"] == 1
    assert "consumed 1" in res.stdout and "predicted 1" in res.stdout


def test_stream_rejects_an_unknown_source_in_one_line(ws) -> None:  # type: ignore[no-untyped-def]
    res = CliRunner().invoke(_app(), ["stream", "lin/1", "--source", "kafka://localhost:9092/t"])
    assert res.exit_code == 2 and "--source 'kafka://localhost:9092/t' is not supported" in res.stderr
    res = CliRunner().invoke(_app(), ["stream", "lin/1", "--source", "redis://localhost:6379/0?strem=x"])
    assert res.exit_code == 2 and "--source option 'strem' is not known for redis://" in res.stderr
