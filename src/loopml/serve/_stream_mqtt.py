"""Scoring MQTT messages from IoT devices (paho-mqtt 2, callback API version 2).

A device publishes features to ``loopml/<endpoint>/in/<device>`` (a JSON
object, or a list of objects; an optional ``request_id`` key is echoed back);
the answer goes to ``loopml/<endpoint>/out/<device>``: the device suffix of the
input topic is kept, so each device subscribes to its own answers. Poison
(bad JSON, contract violations, a model error) goes to
``loopml/<endpoint>/dead/<device>`` with the reason; the loop keeps going.

Delivery guarantee, honestly:

* The scorer subscribes with QoS 1 on a *persistent session*
  (``clean_session=False``, a stable ``client_id``) and acknowledges each
  input (``PUBACK``, via paho's ``manual_ack``) only after its answer was
  published with QoS 1 *and confirmed by the broker* and its prediction-log
  record was flushed. A scorer that dies before that leaves the message
  unacknowledged: the broker re-sends it when a client with the same
  ``client_id`` reconnects. Answers may therefore be duplicated
  (at-least-once); ``request_id`` lets a device drop them.
* What the broker keeps while no scorer is connected is bounded by the broker
  (Mosquitto: ``max_queued_messages``, and ``persistence true`` to survive a
  broker restart). Messages published before the session first existed, or
  with QoS 0 by the device, have no such guarantee: MQTT gives none.
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from loopml.kernel.exceptions import MissingExtraError, ServingError, ValidationError
from loopml.kernel.types import new_id
from loopml.serve._records import PredictionSink
from loopml.serve._stream_core import (
    install_stop_signals,
    Message,
    StreamCounters,
    decode_json_payload,
    flush_sink,
    load_served,
    log_durably,
    prediction_records,
    score_messages,
)

__all__ = ["MqttScorer"]

log = logging.getLogger("loopml.serve.stream")

Progress = Callable[[StreamCounters], None]


def _paho() -> Any:
    try:
        import paho.mqtt.client as mqtt
    except ImportError as exc:
        raise MissingExtraError("paho-mqtt", "stream", "MQTT scoring") from exc
    return mqtt


def _prefix(topic_filter: str) -> str:
    """The literal part of a filter before its first wildcard level (``a/b/in/#`` -> ``a/b/in``)."""
    parts: list[str] = []
    for level in topic_filter.split("/"):
        if level in ("+", "#"):
            break
        parts.append(level)
    return "/".join(parts)


class MqttScorer:
    """Subscribe to ``topic_in``, answer on ``topic_out`` + the device suffix.

    Args:
        ws: the workspace the model is loaded from.
        model_ref: ``NAME@ALIAS`` / ``NAME/VERSION``, or an already loaded model.
        host / port: the broker.
        topic_in: a filter; default ``loopml/<endpoint>/in/#``.
        topic_out / dead_topic: default ``loopml/<endpoint>/out`` and ``.../dead``.
        qos: 1 (at-least-once) or 0 (at-most-once; no acknowledgement is waited for).
        client_id: stable across restarts so the broker keeps the session;
            default ``loopml-<endpoint>-<host>``.
        clean_session: ``False`` keeps the session (and unacknowledged messages).
        batch_size / batch_wait_ms: most messages per model call, and how long
            to wait for company once one message is in.
        sink: the prediction log (``flush`` called before any acknowledgement).
    """

    def __init__(
        self,
        ws: Any,
        model_ref: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        topic_in: str | None = None,
        topic_out: str | None = None,
        dead_topic: str | None = None,
        qos: int = 1,
        client_id: str | None = None,
        clean_session: bool = False,
        batch_size: int = 64,
        batch_wait_ms: int = 5,
        keepalive: int = 30,
        username: str | None = None,
        password: str | None = None,
        publish_timeout_s: float = 10.0,
        sink: PredictionSink | None = None,
        endpoint_name: str | None = None,
    ) -> None:
        if qos not in (0, 1):
            raise ValidationError(f"qos must be 0 or 1, got {qos!r}", field="qos", rule="choice")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValidationError(f"batch_size must be an integer >= 1, got {batch_size!r}", field="batch_size", rule="min")
        mqtt = _paho()
        self._mqtt = mqtt
        self.served = load_served(ws, model_ref)
        self.endpoint = endpoint_name or self.served.name
        self.topic_in = topic_in or f"loopml/{self.endpoint}/in/#"
        self.topic_out = (topic_out or f"loopml/{self.endpoint}/out").rstrip("/")
        self.dead_topic = (dead_topic or f"loopml/{self.endpoint}/dead").rstrip("/")
        for name, topic in (("topic_out", self.topic_out), ("dead_topic", self.dead_topic)):
            if mqtt.topic_matches_sub(self.topic_in, topic) or mqtt.topic_matches_sub(self.topic_in, topic + "/x"):
                raise ValidationError(
                    f"{name} {topic!r} falls under topic_in {self.topic_in!r}: answers would be scored again",
                    field=name, rule="distinct")
        self._in_prefix = _prefix(self.topic_in)
        self.host, self.port, self.qos = host, int(port), qos
        self.batch_size = batch_size
        self.batch_wait_s = max(0, batch_wait_ms) / 1000.0
        self.publish_timeout_s = publish_timeout_s
        self.sink = sink
        self.client_id = client_id or f"loopml-{self.endpoint}-{socket.gethostname()}"[:120]
        self.counters = StreamCounters()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._connect_error: str | None = None
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
            clean_session=clean_session, protocol=mqtt.MQTTv311, manual_ack=True,
        )
        if username is not None:
            client.username_pw_set(username, password)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        self.keepalive = keepalive
        self.client = client
        self._started = False

    # --------------------------------------------------------------- callbacks (network thread)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if getattr(reason_code, "is_failure", False):
            self._connect_error = str(reason_code)
            log.error("mqtt %s:%s refused the connection: %s", self.host, self.port, reason_code)
            return
        client.subscribe(self.topic_in, qos=self.qos)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reason_codes: Any, properties: Any) -> None:
        self._subscribed.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._subscribed.clear()
        if not self._stop.is_set():
            log.warning("mqtt %s:%s disconnected (%s); paho reconnects", self.host, self.port, reason_code)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        # Scoring happens in the run loop: the network thread must keep pinging the broker.
        self._queue.put(msg)

    # ------------------------------------------------------------------ control

    def start(self, timeout_s: float = 10.0) -> None:
        """Connect, subscribe, and wait until the broker confirmed the subscription."""
        if self._started:
            return
        try:
            self.client.connect(self.host, self.port, keepalive=self.keepalive)
        except OSError as exc:
            raise ServingError(f"MQTT broker at {self.host}:{self.port} is not reachable: {exc}") from exc
        self.client.loop_start()
        self._started = True
        if not self._subscribed.wait(timeout_s):
            self.close()
            why = self._connect_error or f"no subscription confirmed within {timeout_s:g}s"
            raise ServingError(f"MQTT broker at {self.host}:{self.port}: cannot subscribe to {self.topic_in!r}: {why}")

    def stop(self) -> None:
        """Ask the loop to finish its batch and return (thread-safe)."""
        self._stop.set()

    def close(self) -> None:
        """Disconnect (unacknowledged messages stay with the broker's session)."""
        if not self._started:
            return
        self._started = False
        self._stop.set()
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    def run(
        self,
        *,
        max_messages: int | None = None,
        timeout_s: float | None = None,
        on_progress: Progress | None = None,
        handle_signals: bool = True,
    ) -> StreamCounters:
        """Score until stopped (signal, :meth:`stop`, ``max_messages`` or ``timeout_s``), then disconnect."""
        self.start()
        restore = install_stop_signals(self.stop, f"mqtt {self.topic_in}") if handle_signals else None
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while not self._stop.is_set():
                if max_messages is not None and self.counters.consumed >= max_messages:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
                limit = self.batch_size
                if max_messages is not None:
                    limit = max(1, min(limit, max_messages - self.counters.consumed))
                batch = self._take(limit)
                if batch:
                    self.process(batch)
                if on_progress is not None:
                    on_progress(self.counters)
        finally:
            if restore is not None:
                restore()
            self.close()
        if on_progress is not None:
            on_progress(self.counters)
        return self.counters

    def _take(self, limit: int) -> list[Any]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        wait_until = time.monotonic() + self.batch_wait_s
        while len(batch) < limit:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                remaining = wait_until - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(self._queue.get(timeout=remaining))
                except queue.Empty:
                    break
        return batch

    # -------------------------------------------------------------- processing

    def process(self, msgs: list[Any]) -> None:
        """Score, publish answers (QoS confirmed), log and flush, then acknowledge the inputs."""
        self.counters.consumed += len(msgs)
        messages = [self._decode(m) for m in msgs]
        outcomes = score_messages(self.served, messages)
        infos = []
        now = time.time()
        for msg, oc in zip(msgs, outcomes, strict=True):
            suffix = msg.topic[len(self._in_prefix):] if msg.topic.startswith(self._in_prefix) else ""
            if oc.ok:
                body = {**oc.payload(self.served), "topic": msg.topic, "endpoint": self.endpoint, "ts": now}
                infos.append(self.client.publish(self.topic_out + suffix, json.dumps(body), qos=self.qos))
                self.counters.predicted += 1
                self.counters.rows += len(oc.labels or [])
            else:
                body = {"request_id": oc.message.id, "topic": msg.topic, "reason": oc.error, "rule": oc.rule,
                        "payload": bytes(msg.payload[:10_000]).decode("utf-8", "replace"),
                        "model_name": self.served.name, "model_version": self.served.version, "ts": now}
                infos.append(self.client.publish(self.dead_topic + suffix, json.dumps(body), qos=self.qos))
                self.counters.dead_lettered += 1
                log.warning("mqtt %s: message dead-lettered (%s): %s", msg.topic, oc.rule, oc.error)
        if self.qos:
            try:
                for info in infos:
                    info.wait_for_publish(timeout=self.publish_timeout_s)
                    if not info.is_published():
                        raise ServingError(f"the broker did not confirm an answer within {self.publish_timeout_s:g}s")
            except (RuntimeError, ValueError, ServingError) as exc:
                # Unacknowledged inputs come back from the broker after a reconnect.
                self.counters.errors += 1
                log.error("mqtt: answers not confirmed (%s); leaving %d inputs unacknowledged", exc, len(msgs))
                return
        log_durably(self.sink, prediction_records(self.served, outcomes, self.endpoint))
        flush_sink(self.sink)
        self._ack(msgs)
        self.counters.batches += 1

    def _ack(self, msgs: list[Any]) -> None:
        for m in msgs:
            if m.qos > 0:
                self.client.ack(m.mid, m.qos)
                self.counters.acked += 1

    def _decode(self, msg: Any) -> Message:
        decoded = decode_json_payload(bytes(msg.payload), "", {"topic": msg.topic})
        rid = None
        if decoded.rows:
            first = decoded.rows[0]
            rid = first.get("request_id") if isinstance(first.get("request_id"), str) else None
        decoded.id = rid or new_id()
        return decoded

    # ----------------------------------------------------------------- signals
