"""Scoring a Redis Stream with a consumer group: at-least-once, no loss, poison to a dead-letter stream.

Delivery guarantee (the invariant every change here must keep):

* An input entry is acknowledged (``XACK``) only after its output entry (or
  its dead-letter entry) is in Redis *and* its prediction-log record is
  durable (the sink's ``flush()`` returned). The order per batch is
  ``XREADGROUP`` -> score -> ``XADD`` output/dead-letter -> ``sink.submit`` ->
  ``sink.flush`` -> ``XACK``. Acks are grouped (``commit_interval_ms``) so the
  log is not flushed once per batch; a crash anywhere before ``XACK`` leaves
  the entries in the group's pending list, never lost.
* Entries left pending by a consumer that died are taken over with
  ``XAUTOCLAIM`` once idle for ``claim_idle_ms`` (checked at start and every
  ``claim_idle_ms / 2``); a restarted consumer with the same name first
  re-reads its own pending entries.
* Hence *at-least-once*: an entry whose output was written but which was not
  acked before a crash is scored again, and its output appears twice. Every
  output carries ``request_id`` = the input entry id, so a consumer of the
  output stream can drop duplicates (the model version is on every output).
* Poison never stops the loop: an entry that does not decode, breaks the
  model's contract, makes the model raise, or has been delivered more than
  ``max_deliveries`` times goes to the dead-letter stream with ``reason`` and
  ``rule``, then is acked.
* SIGTERM/SIGINT finish the current batch, flush the sink, ack, and return.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from loopml.kernel.exceptions import MissingExtraError, ServingError, ValidationError
from loopml.serve._records import PredictionSink
from loopml.serve._stream_core import (
    install_stop_signals,
    Message,
    Outcome,
    StreamCounters,
    coerce_fields,
    decode_json_payload,
    flush_sink,
    load_served,
    log_durably,
    prediction_records,
    score_messages,
)

__all__ = ["RedisStreamScorer", "default_consumer_name"]

log = logging.getLogger("loopml.serve.stream")

Progress = Callable[[StreamCounters], None]


def default_consumer_name() -> str:
    """``host:pid``: unique per process, stable for the life of one."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _redis() -> Any:
    try:
        import redis
    except ImportError as exc:
        raise MissingExtraError("redis", "stream", "Redis stream scoring") from exc
    return redis


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)


class RedisStreamScorer:
    """Consume ``stream`` in ``group`` as ``consumer``; predictions to ``output_stream``.

    Args:
        ws: the workspace the model is loaded from.
        model_ref: ``NAME@ALIAS`` / ``NAME/VERSION``, or an already loaded model.
        url: Redis URL (``redis://host:port/db``).
        stream / output_stream / dead_letter_stream: default
            ``loopml:in|out|dead:<endpoint>``.
        batch_size: most entries per read (and per model call).
        block_ms: how long one read waits for new entries.
        claim_idle_ms: a pending entry idle this long belongs to a dead consumer.
        max_deliveries: more deliveries than this make an entry poison.
        commit_interval_ms: how long acks may wait to be grouped behind one sink flush.
        output_maxlen: approximate cap of the output stream (``None``: no trimming).
        sink: the prediction log (anything with ``submit``; ``flush`` if it buffers).
        endpoint_name: the endpoint written in the log; default the model name.
        client: a ready ``redis.Redis`` (tests); default one from ``url``.
    """

    def __init__(
        self,
        ws: Any,
        model_ref: Any,
        *,
        url: str = "redis://127.0.0.1:6379/0",
        stream: str | None = None,
        group: str = "loopml",
        consumer: str | None = None,
        output_stream: str | None = None,
        dead_letter_stream: str | None = None,
        batch_size: int = 64,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
        max_deliveries: int = 5,
        commit_interval_ms: int = 200,
        output_maxlen: int | None = None,
        sink: PredictionSink | None = None,
        endpoint_name: str | None = None,
        client: Any = None,
    ) -> None:
        for name, value, low in (("batch_size", batch_size, 1), ("block_ms", block_ms, 1),
                                 ("claim_idle_ms", claim_idle_ms, 1), ("max_deliveries", max_deliveries, 1),
                                 ("commit_interval_ms", commit_interval_ms, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValidationError(f"{name} must be an integer >= {low}, got {value!r}", field=name, rule="min")
        redis = _redis()
        self.served = load_served(ws, model_ref)
        self.endpoint = endpoint_name or self.served.name
        self.stream = stream or f"loopml:in:{self.endpoint}"
        self.output_stream = output_stream or f"loopml:out:{self.endpoint}"
        self.dead_letter_stream = dead_letter_stream or f"loopml:dead:{self.endpoint}"
        if len({self.stream, self.output_stream, self.dead_letter_stream}) < 3:
            raise ValidationError(
                f"input, output and dead-letter streams must differ, got {self.stream!r}, "
                f"{self.output_stream!r}, {self.dead_letter_stream!r}", field="output_stream", rule="distinct")
        self.group = group
        self.consumer = consumer or default_consumer_name()
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.max_deliveries = max_deliveries
        self.commit_interval_s = commit_interval_ms / 1000.0
        self.output_maxlen = output_maxlen
        self.sink = sink
        self.url = url
        self._owns_client = client is None
        self.client = client if client is not None else redis.Redis.from_url(url, socket_timeout=None)
        self.counters = StreamCounters()
        self._redis_errors: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError)
        self._response_error = redis.ResponseError
        self._stop = threading.Event()
        self._unacked: list[str] = []
        self._first_unacked = 0.0
        self._next_claim = 0.0
        self._read_history = True
        self._history_cursor = "0"

    # ------------------------------------------------------------------ control

    def stop(self) -> None:
        """Ask the loop to finish its batch and return (thread-safe; signal handlers call it)."""
        self._stop.set()

    def close(self) -> None:
        """Close the connection this scorer opened (a client passed in is the caller's)."""
        if self._owns_client:
            self.client.close()

    def ensure_group(self) -> None:
        """``XGROUP CREATE ... 0 MKSTREAM``, idempotent: an existing group is kept as is."""
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except self._response_error as exc:
            if "BUSYGROUP" not in str(exc):
                raise ServingError(f"cannot create consumer group {self.group!r} on {self.stream!r}: {exc}") from exc
        except self._redis_errors as exc:
            raise ServingError(f"Redis at {self.url} is not reachable: {exc}") from exc

    def run(
        self,
        *,
        max_messages: int | None = None,
        timeout_s: float | None = None,
        on_progress: Progress | None = None,
        handle_signals: bool = True,
    ) -> StreamCounters:
        """Consume until stopped (signal, :meth:`stop`, ``max_messages`` or ``timeout_s``).

        Returns the counters. A Redis outage is retried with backoff; only a
        failure to create the group at the start raises.
        """
        self.ensure_group()
        restore = install_stop_signals(self.stop, f"redis stream {self.stream}") if handle_signals else None
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        backoff = 0.2
        try:
            while not self._stop.is_set():
                if max_messages is not None and self.counters.consumed >= max_messages:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
                try:
                    limit = self.batch_size
                    if max_messages is not None:
                        limit = max(1, min(limit, max_messages - self.counters.consumed))
                    self.step(limit)
                    backoff = 0.2
                except self._redis_errors as exc:
                    self.counters.errors += 1
                    log.warning("redis stream %s: %s; retrying in %.1fs", self.stream, exc, backoff)
                    self._read_history, self._history_cursor = True, "0"  # what we read but did not ack is ours to redo
                    self._stop.wait(backoff)
                    backoff = min(5.0, backoff * 2)
                if on_progress is not None:
                    on_progress(self.counters)
            self.commit(force=True)
        finally:
            if restore is not None:
                restore()
        if on_progress is not None:
            on_progress(self.counters)
        return self.counters

    def step(self, limit: int | None = None) -> int:
        """One cycle: own history or reclaimed entries, else new ones; score; write; maybe ack.

        Returns how many entries it consumed.
        """
        limit = limit or self.batch_size
        entries: list[tuple[Any, dict[Any, Any]]] = []
        check = True
        if self._read_history:
            raw = self._read(self._history_cursor, limit, block=False)
            if raw:
                self._history_cursor = _text(raw[-1][0])
                pending = set(self._unacked)
                # History of a deleted entry comes back without fields: nothing to score, just ack it.
                self._mark_unacked([_text(e[0]) for e in raw if not e[1]])
                entries = [e for e in raw if e[1] and _text(e[0]) not in pending]
            else:
                self._read_history, self._history_cursor = False, "0"
        if not entries and not self._read_history and time.monotonic() >= self._next_claim:
            entries = self._claim(limit)
        if not entries and not self._read_history:
            # Do not sit on acks while waiting for new entries.
            self.commit(force=True)
            entries = self._read(">", limit, block=True)
            check = False  # a first delivery: no need to ask how often it was delivered
        if entries:
            self.counters.consumed += len(entries)
            self._process(entries, check_deliveries=check)
        self.commit(force=False)
        return len(entries)

    def commit(self, *, force: bool) -> int:
        """Flush the sink, then ``XACK`` everything written since the last commit."""
        if not self._unacked:
            return 0
        if not force and time.monotonic() - self._first_unacked < self.commit_interval_s:
            return 0
        flush_sink(self.sink)
        ids = self._unacked
        self._ack(ids)
        self._unacked = []
        self.counters.acked += len(ids)
        return len(ids)

    # ----------------------------------------------------------------- reading

    def _read(self, start: str, count: int, *, block: bool) -> list[tuple[Any, dict[Any, Any]]]:
        reply = self.client.xreadgroup(
            self.group, self.consumer, {self.stream: start}, count=count,
            block=self.block_ms if block else None,
        )
        entries: list[tuple[Any, dict[Any, Any]]] = []
        if isinstance(reply, dict):  # RESP3
            for items in reply.values():
                entries.extend(items[0] if items and isinstance(items[0], list) else items)
        else:
            for _name, items in reply or []:
                entries.extend(items)
        return entries

    def _claim(self, count: int) -> list[tuple[Any, dict[Any, Any]]]:
        self._next_claim = time.monotonic() + max(0.05, self.claim_idle_ms / 2000.0)
        reply = self.client.xautoclaim(self.stream, self.group, self.consumer, self.claim_idle_ms,
                                       start_id="0-0", count=count)
        claimed = [e for e in (reply[1] if len(reply) > 1 else []) if e and e[1] is not None]
        if claimed:
            self.counters.reclaimed += len(claimed)
            log.info("redis stream %s: reclaimed %d idle entries", self.stream, len(claimed))
            self._next_claim = 0.0  # there may be more: look again next cycle
        return claimed

    def _deliveries(self, ids: list[str]) -> dict[str, int]:
        if not ids:
            return {}
        rows = self.client.xpending_range(self.stream, self.group, min=min(ids, key=_id_key),
                                          max=max(ids, key=_id_key), count=len(ids) + 16,
                                          consumername=self.consumer)
        return {_text(r["message_id"]): int(r["times_delivered"]) for r in rows}

    # -------------------------------------------------------------- processing

    def _decode(self, entry_id: str, fields: dict[Any, Any]) -> Message:
        try:
            named = {_text_strict(k): v for k, v in fields.items()}
        except UnicodeDecodeError:
            return Message(entry_id, None, "a field name is not UTF-8")
        if "data" in named:
            return decode_json_payload(named["data"], entry_id)
        try:
            values = {k: v.decode("utf-8") if isinstance(v, (bytes, bytearray)) else v for k, v in named.items()}
        except UnicodeDecodeError as exc:
            return Message(entry_id, None, f"a field value is not UTF-8: {exc}")
        if not values:
            return Message(entry_id, None, "the entry has no fields")
        return Message(entry_id, [coerce_fields(values, self.served)])

    def _process(self, entries: list[tuple[Any, dict[Any, Any]]], *, check_deliveries: bool) -> None:
        ids = [_text(e[0]) for e in entries]
        counts = self._deliveries(ids) if check_deliveries else {}
        over: list[Outcome] = []
        messages: list[Message] = []
        raw: dict[str, dict[Any, Any]] = {}
        for entry_id, (_, fields) in zip(ids, entries, strict=True):
            raw[entry_id] = fields
            n = counts.get(entry_id, 1)
            if n > self.max_deliveries:
                over.append(Outcome(Message(entry_id, None), error=(
                    f"entry {entry_id} was delivered {n} times, more than max_deliveries={self.max_deliveries}; "
                    "it was never acknowledged (a consumer crashed on it?)"), rule="max_deliveries"))
            else:
                messages.append(self._decode(entry_id, fields))
        outcomes = score_messages(self.served, messages) + over
        self._write(outcomes, raw, counts)
        log_durably(self.sink, prediction_records(self.served, [o for o in outcomes if o.rule != "max_deliveries"],
                                                  self.endpoint))
        self._mark_unacked(ids)
        self.counters.batches += 1

    def _mark_unacked(self, ids: list[str]) -> None:
        if ids and not self._unacked:
            self._first_unacked = time.monotonic()
        self._unacked.extend(ids)

    def _write(self, outcomes: list[Outcome], raw: dict[str, dict[Any, Any]], counts: dict[str, int]) -> None:
        pipe = self.client.pipeline(transaction=False)
        trim: dict[str, Any] = {} if self.output_maxlen is None else {"maxlen": self.output_maxlen, "approximate": True}
        now = str(time.time())
        ok = dead = rows = 0
        for oc in outcomes:
            mid = oc.message.id
            if oc.ok:
                body = oc.payload(self.served)
                fields = {
                    "request_id": mid, "model_name": self.served.name, "model_version": str(self.served.version),
                    "endpoint": self.endpoint, "prediction": json.dumps(body["prediction"]), "ts": now,
                }
                if "probabilities" in body:
                    fields["probabilities"] = json.dumps(body["probabilities"])
                pipe.xadd(self.output_stream, fields, **trim)
                ok += 1
                rows += len(oc.labels or [])
            else:
                payload = {_text(k): _text(v) for k, v in raw.get(mid, {}).items()}
                pipe.xadd(self.dead_letter_stream, {
                    "request_id": mid, "stream": self.stream, "group": self.group, "consumer": self.consumer,
                    "reason": oc.error or "unknown", "rule": oc.rule or "unknown",
                    "deliveries": str(counts.get(mid, 1)), "payload": json.dumps(payload)[:100_000],
                    "model_name": self.served.name, "model_version": str(self.served.version), "ts": now,
                })
                dead += 1
                log.warning("redis stream %s: entry %s dead-lettered (%s): %s", self.stream, mid, oc.rule, oc.error)
        pipe.execute()
        self.counters.predicted += ok
        self.counters.dead_lettered += dead
        self.counters.rows += rows

    def _ack(self, ids: list[str]) -> None:
        for start in range(0, len(ids), 1000):
            self.client.xack(self.stream, self.group, *ids[start:start + 1000])

    # ----------------------------------------------------------------- signals


def _text_strict(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else str(value)


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
