"""MQTT scoring against the real Mosquitto on 127.0.0.1:1883."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from loopml.testing import require_service
from tests.serve.conftest import SIGNATURE

FEATURES_SIG = {k: v for k, v in SIGNATURE.items() if k != "target"}
ROW = {"age": 61.0, "income": 40.0, "visits": 3, "plan": "basic"}


@pytest.fixture
def registered(sqlite_workspace, trained):  # type: ignore[no-untyped-def]
    from loopml.register import register_model

    register_model(sqlite_workspace, "churn", trained[0], signature=FEATURES_SIG, task="classification")
    return sqlite_workspace


def _parse(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return payload


class Device:
    """A device (or a dashboard): publishes inputs, collects what comes back on ``watch``."""

    def __init__(self, watch: str) -> None:
        import paho.mqtt.client as mqtt

        self.got: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.ready = threading.Event()
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"dev-{uuid.uuid4().hex[:8]}")
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_message = lambda c, u, m: self.got.put((m.topic, _parse(m.payload)))
        self.client.connect("127.0.0.1", 1883)
        self.client.loop_start()
        self.client.subscribe(watch, qos=1)
        assert self.ready.wait(5)

    def send(self, topic: str, payload: Any) -> None:
        body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        self.client.publish(topic, body, qos=1).wait_for_publish(5)

    def take(self, n: int, timeout: float = 10.0) -> list[tuple[str, dict[str, Any]]]:
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            out.append(self.got.get(timeout=max(0.01, deadline - time.monotonic())))
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def base() -> Iterator[str]:
    require_service("mqtt")
    yield f"loopml-test/{uuid.uuid4().hex[:10]}"


def _scorer(ws: Any, base: str, **kw: Any) -> Any:
    from loopml.serve.stream import MqttScorer

    opts: dict[str, Any] = {"topic_in": f"{base}/in/#", "topic_out": f"{base}/out", "dead_topic": f"{base}/dead",
                            "client_id": f"loopml-test-{uuid.uuid4().hex[:8]}", "clean_session": True}
    opts.update(kw)
    return MqttScorer(ws, "churn/1", **opts)


def _run_in_thread(scorer: Any, **kw: Any) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}
    scorer.start()
    thread = threading.Thread(target=lambda: result.setdefault("c", scorer.run(handle_signals=False, **kw)))
    thread.start()
    return thread, result


class ListSink:
    def __init__(self) -> None:
        self.records: list[Any] = []
        self.flushes = 0

    def submit(self, records: list[Any]) -> None:
        self.records.extend(records)

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        pass


def test_round_trip_device_to_loopml_to_its_own_topic(registered, base) -> None:  # type: ignore[no-untyped-def]
    device = Device(f"{base}/out/#")
    sink = ListSink()
    scorer = _scorer(registered, base, sink=sink)
    thread, result = _run_in_thread(scorer, max_messages=3, timeout_s=20)
    try:
        device.send(f"{base}/in/sensor-7", {**ROW, "request_id": "r-1"})
        device.send(f"{base}/in/sensor-8", [ROW, {**ROW, "plan": "pro"}])
        device.send(f"{base}/in/site/a/sensor-9", {"data": ROW})
        got = {t: p for t, p in device.take(3)}
    finally:
        thread.join(20)
        device.close()
    assert set(got) == {f"{base}/out/sensor-7", f"{base}/out/sensor-8", f"{base}/out/site/a/sensor-9"}
    one = got[f"{base}/out/sensor-7"]
    assert one["request_id"] == "r-1" and (one["model_name"], one["model_version"]) == ("churn", 1)
    assert one["prediction"] in (0, 1) and set(one["probabilities"]) == {"0", "1"}
    assert one["topic"] == f"{base}/in/sensor-7"
    two = got[f"{base}/out/sensor-8"]
    assert len(two["prediction"]) == 2 and len(two["probabilities"]) == 2
    counters = result["c"]
    assert (counters.consumed, counters.predicted, counters.dead_lettered, counters.acked) == (3, 3, 0, 3)
    assert len(sink.records) == 3 and sink.flushes >= 1 and {r.model_version for r in sink.records} == {1}


def test_poison_goes_to_the_dead_topic_and_the_loop_keeps_going(registered, base) -> None:  # type: ignore[no-untyped-def]
    device = Device(f"{base}/#")
    scorer = _scorer(registered, base)
    thread, result = _run_in_thread(scorer, max_messages=4, timeout_s=20)
    try:
        device.send(f"{base}/in/d1", b"\x00not json")
        device.send(f"{base}/in/d2", {**ROW, "age": -4.0})
        device.send(f"{base}/in/d3", 42)
        device.send(f"{base}/in/d4", ROW)
        got = [(t, p) for t, p in device.take(8) if "/in/" not in t]
    finally:
        thread.join(20)
        device.close()
    by_topic = dict(got)
    assert set(by_topic) == {f"{base}/dead/d1", f"{base}/dead/d2", f"{base}/dead/d3", f"{base}/out/d4"}
    assert by_topic[f"{base}/dead/d1"]["rule"] == "decode"
    assert by_topic[f"{base}/dead/d2"]["rule"] == "min" and "field 'age'" in by_topic[f"{base}/dead/d2"]["reason"]
    assert "JSON object of features" in by_topic[f"{base}/dead/d3"]["reason"]
    assert by_topic[f"{base}/out/d4"]["prediction"] in (0, 1)
    assert (result["c"].predicted, result["c"].dead_lettered) == (1, 3)


def test_unacknowledged_messages_come_back_to_the_persistent_session(registered, base) -> None:  # type: ignore[no-untyped-def]
    client_id = f"loopml-test-{uuid.uuid4().hex[:8]}"
    device = Device(f"{base}/out/#")
    first = _scorer(registered, base, client_id=client_id, clean_session=False)
    first._ack = lambda msgs: None  # type: ignore[method-assign]  # dies before PUBACK
    thread, _ = _run_in_thread(first, max_messages=2, timeout_s=20)
    try:
        device.send(f"{base}/in/a", {**ROW, "request_id": "x-1"})
        device.send(f"{base}/in/b", {**ROW, "request_id": "x-2"})
        first_answers = device.take(2)
        thread.join(20)
        second = _scorer(registered, base, client_id=client_id, clean_session=False)
        thread2, result2 = _run_in_thread(second, max_messages=2, timeout_s=20)
        again = device.take(2)
        thread2.join(20)
    finally:
        device.close()
        _drop_session(client_id)
    assert sorted(p["request_id"] for _, p in first_answers) == ["x-1", "x-2"]
    assert sorted(p["request_id"] for _, p in again) == ["x-1", "x-2"]  # redelivered: at-least-once
    assert result2["c"].acked == 2


def _drop_session(client_id: str) -> None:
    import paho.mqtt.client as mqtt

    c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    c.connect("127.0.0.1", 1883)
    c.loop_start()
    time.sleep(0.1)
    c.disconnect()
    c.loop_stop()


def test_answers_must_not_land_under_the_input_filter(registered, base) -> None:  # type: ignore[no-untyped-def]
    from loopml.kernel.exceptions import ValidationError

    with pytest.raises(ValidationError, match="falls under topic_in"):
        _scorer(registered, base, topic_in=f"{base}/#")
