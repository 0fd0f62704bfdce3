"""Streaming scoring: a registered model over a Redis Stream or MQTT topics.

    RedisStreamScorer(ws, "churn@champion", url="redis://host:6379/0").run()
    MqttScorer(ws, "churn@champion", host="broker", port=1883).run()

Both score each batch of messages with one model call, check every message
against the model's contract with the online server's validator, send poison
(undecodable, invalid, or a model error) to a dead-letter stream/topic with
the reason instead of stopping, and write one prediction-log record per
message through a :class:`~loopml.serve.PredictionSink`.

Delivery (details in each module): **at-least-once**. An input is acknowledged
only after its answer is stored by the broker and its log record is flushed;
a crash before that redelivers it, so answers can repeat and carry the input's
``request_id`` for de-duplication. Redis: consumer group + ``XACK`` after the
output ``XADD`` + ``XAUTOCLAIM`` of a dead consumer's pending entries. MQTT:
QoS 1 on a persistent session (``clean_session=False``) + manual ``PUBACK``
after the answer's QoS 1 publish is confirmed.

Importing this module needs neither ``redis`` nor ``paho-mqtt``; creating a
scorer without them raises ``MissingExtraError`` naming ``loopml[stream]``.
"""

from __future__ import annotations

from loopml.serve._stream_core import StreamCounters
from loopml.serve._stream_mqtt import MqttScorer
from loopml.serve._stream_redis import RedisStreamScorer, default_consumer_name

__all__ = ["MqttScorer", "RedisStreamScorer", "StreamCounters", "default_consumer_name"]
