"""What the Redis and MQTT scorers share: message -> rows -> one model call -> results.

A queue message is one *request*: a JSON object of features (one row) or a
list of such objects (several rows). A batch of messages is checked against
the model's contract with the server's own validator (:mod:`._validation`),
scored with one model call (:class:`~loopml.serve._router.ServedModel`), and
every message gets either outputs or the reason it is poison (a decode error,
a contract violation, or the model failing on exactly that message). The
prediction-log records have the same shape as the online server's.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from loopml.kernel.exceptions import BadRequest, ServingError
from loopml.serve._records import PredictionRecord, PredictionSink
from loopml.serve._router import ServedModel
from loopml.serve._validation import Frame, combine_frames

__all__ = ["Message", "Outcome", "StreamCounters", "decode_json_payload", "load_served", "score_messages"]

log = logging.getLogger("loopml.serve.stream")

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}
_NULLS = {"", "null", "none", "nan"}


@dataclass
class StreamCounters:
    """What a scorer has done so far (shown by ``loopml stream`` and returned by ``run``)."""

    consumed: int = 0
    predicted: int = 0
    dead_lettered: int = 0
    reclaimed: int = 0
    acked: int = 0
    batches: int = 0
    rows: int = 0
    errors: int = 0
    started_at: float = field(default_factory=time.monotonic, repr=False)

    def rate(self) -> float:
        """Messages consumed per second since the start."""
        elapsed = time.monotonic() - self.started_at
        return self.consumed / elapsed if elapsed > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("started_at")
        out["seconds"] = round(time.monotonic() - self.started_at, 3)
        out["per_second"] = round(self.rate(), 2)
        return out


@dataclass(slots=True)
class Message:
    """One consumed message: its id, its rows (``None`` when it did not decode) or why not."""

    id: str
    rows: list[dict[str, Any]] | None
    error: str | None = None
    ts: float = field(default_factory=time.time)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Outcome:
    """The answer for one message: ``labels``/``proba`` of its rows, or ``error`` (poison)."""

    message: Message
    labels: list[Any] | None = None
    proba: np.ndarray | None = None
    error: str | None = None
    rule: str | None = None
    frame: Frame | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def payload(self, served: ServedModel) -> dict[str, Any]:
        """The JSON-safe answer: one value for a one-row message, lists otherwise."""
        labels = [_py(v) for v in (self.labels or [])]
        single = len(labels) == 1 and not self.message.meta.get("as_list")
        out: dict[str, Any] = {
            "request_id": self.message.id,
            "model_name": served.name,
            "model_version": served.version,
            "prediction": labels[0] if single else labels,
        }
        if self.proba is not None and served.classes_list is not None:
            keys = [str(_py(c)) for c in served.classes_list]
            rows = [{k: float(p) for k, p in zip(keys, row, strict=True)} for row in self.proba]
            out["probabilities"] = rows[0] if single else rows
        return out


def load_served(ws: Any, model_ref: Any) -> ServedModel:
    """The model behind ``model_ref`` (a reference or an already loaded model), ready to score."""
    if isinstance(model_ref, ServedModel):
        return model_ref
    if isinstance(model_ref, str):
        import loopml.register as registry  # at call time: keeps ``import loopml.serve`` light

        model_ref = registry.load_model(ws, model_ref)
    return ServedModel(model_ref)


def decode_json_payload(raw: bytes | str, message_id: str, meta: dict[str, Any] | None = None) -> Message:
    """A JSON object (one row) or a non-empty list of objects (rows); anything else is poison."""
    meta = dict(meta or {})
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return Message(message_id, None, f"payload is not valid JSON: {exc}"[:300], meta=meta)
    if isinstance(value, dict) and isinstance(value.get("data"), (dict, list)):
        value = value["data"]
    if isinstance(value, dict):
        return Message(message_id, [value], meta=meta)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        meta["as_list"] = True
        return Message(message_id, list(value), meta=meta)
    kind = type(value).__name__ if not isinstance(value, list) else "a list that is not a non-empty list of objects"
    return Message(message_id, None, f"payload must be a JSON object of features or a list of them, got {kind}",
                   meta=meta)


def coerce_fields(fields: Mapping[str, str], served: ServedModel) -> dict[str, Any]:
    """Features sent as flat stream fields (all strings) -> typed values per the contract.

    Why: Redis stream fields are byte strings; ``"3.5"`` must reach a numeric
    feature as a number and ``""`` as a null, or every message would be poison.
    A value that does not parse is kept as the string, so the validator names it.
    """
    out: dict[str, Any] = {}
    specs = {s.name: s for s in served.contract.specs}
    for key, value in fields.items():
        spec = specs.get(key)
        if spec is None or not isinstance(value, str):
            out[key] = value
            continue
        text = value.strip()
        if text.lower() in _NULLS:
            out[key] = None
        elif spec.type == "bool":
            low = text.lower()
            out[key] = 1.0 if low in _TRUE else 0.0 if low in _FALSE else value
        elif spec.numeric:
            try:
                out[key] = float(text)
            except ValueError:
                out[key] = value
        else:
            out[key] = value
    return out


def score_messages(served: ServedModel, messages: Sequence[Message]) -> list[Outcome]:
    """Every message's outcome; one model call for all the valid ones (never raises)."""
    outcomes = [Outcome(m) for m in messages]
    good: list[Outcome] = []
    contract = served.contract
    for oc in outcomes:
        msg = oc.message
        if msg.rows is None:
            oc.error, oc.rule = msg.error or "message could not be decoded", "decode"
            continue
        try:
            oc.frame = contract.from_records(msg.rows, "data")
        except BadRequest as exc:
            oc.error, oc.rule = str(exc), exc.rule or "contract"
            continue
        except Exception as exc:  # noqa: BLE001 - a decoder bug must cost one message, not the loop
            oc.error, oc.rule = f"{type(exc).__name__}: {exc}"[:300], "decode"
            continue
        good.append(oc)
    if good:
        _score(served, good)
    return outcomes


def _score(served: ServedModel, batch: list[Outcome]) -> None:
    frames = [oc.frame for oc in batch]
    frame = combine_frames(frames)  # type: ignore[arg-type]
    offsets, total = [], 0
    for f in frames:
        offsets.append(total)
        total += f.n  # type: ignore[union-attr]
    errors, codes = served.contract.check(frame, offsets)
    if errors:
        for i, err in errors.items():
            batch[i].error, batch[i].rule = str(err), err.rule or "contract"
        rest = [oc for i, oc in enumerate(batch) if i not in errors]
        if rest:
            _score(served, rest)
        return
    try:
        labels, proba = served.predict(frame, codes)
    except Exception as exc:  # noqa: BLE001 - any model error is this batch's poison, never the loop's
        if len(batch) > 1:  # isolate the message the model chokes on
            for oc in batch:
                _score(served, [oc])
            return
        batch[0].error = f"model {served.name}/{served.version} could not score it: {type(exc).__name__}: {exc}"[:500]
        batch[0].rule = "model"
        return
    labels_list = labels.tolist() if isinstance(labels, np.ndarray) else list(labels)
    for oc, a in zip(batch, offsets, strict=True):
        b = a + oc.frame.n  # type: ignore[union-attr]
        oc.labels = labels_list[a:b]
        oc.proba = None if proba is None else proba[a:b]


def prediction_records(served: ServedModel, outcomes: Sequence[Outcome], endpoint: str) -> list[PredictionRecord]:
    """Prediction-log records, one per message, shaped like the online server's."""
    now = time.time()
    records = []
    for oc in outcomes:
        f = oc.frame
        inputs: Any = None
        if f is not None:
            inputs = ({n: f.matrix[:, j] for j, n in enumerate(served.contract.names)}
                      if f.matrix is not None else f.columns)
        outputs: dict[str, Any] | None = None
        if oc.ok:
            outputs = {"predict": np.asarray(oc.labels) if served.labels_numeric else oc.labels}
            if oc.proba is not None:
                outputs["predict_proba"] = oc.proba
                outputs["classes"] = served.classes_list
        records.append(PredictionRecord(
            request_id=oc.message.id, ts=datetime.fromtimestamp(oc.message.ts, UTC), endpoint=endpoint,
            model_name=served.name, model_version=served.version, inputs=inputs, outputs=outputs,
            latency_ms=max(0.0, (now - oc.message.ts) * 1000.0),
            status=200 if oc.ok else (500 if oc.rule == "model" else 400),
            error=oc.error,
        ))
    return records


def log_durably(sink: PredictionSink | None, records: list[PredictionRecord]) -> None:
    """Hand records to the sink; the caller flushes before it acknowledges anything."""
    if sink is None or not records:
        return
    try:
        sink.submit(records)
    except Exception as exc:
        raise ServingError(f"the prediction log rejected {len(records)} records: {exc}; nothing was acknowledged") from exc


def flush_sink(sink: PredictionSink | None) -> None:
    """Make what the sink holds durable (sinks without ``flush`` are taken as synchronous)."""
    flush: Callable[[], None] | None = getattr(sink, "flush", None)
    if flush is None:
        return
    try:
        flush()
    except Exception as exc:
        raise ServingError(f"the prediction log could not flush: {exc}; nothing was acknowledged") from exc


def _py(value: Any) -> Any:
    """numpy scalars -> Python; NaN -> None (JSON has no NaN)."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def install_stop_signals(stop: Callable[[], None], what: str) -> Callable[[], None] | None:
    """SIGTERM/SIGINT call ``stop`` (finish the batch, flush, ack); returns the undo, or None off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, frame: Any) -> None:
        logging.getLogger("loopml.stream").info("%s: signal %d, finishing the batch", what, signum)
        stop()

    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
