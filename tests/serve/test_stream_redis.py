"""Redis Streams scoring against the real Redis on 127.0.0.1:6379."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from loopml.testing import require_service
from tests.serve.conftest import SIGNATURE, training_frame

FEATURES_SIG = {k: v for k, v in SIGNATURE.items() if k != "target"}


class ListSink:
    """A synchronous prediction sink that remembers what was flushed when."""

    def __init__(self) -> None:
        self.records: list[Any] = []
        self.flushes = 0

    def submit(self, records: list[Any]) -> None:
        self.records.extend(records)

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        pass


@pytest.fixture
def redis_client() -> Iterator[Any]:
    require_service("redis")
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=0)
    prefix = f"loopml-test:{uuid.uuid4().hex[:10]}"
    client.test_prefix = prefix  # type: ignore[attr-defined]
    yield client
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


@pytest.fixture
def registered(sqlite_workspace, trained):  # type: ignore[no-untyped-def]
    from loopml.register import register_model

    register_model(sqlite_workspace, "churn", trained[0], signature=FEATURES_SIG, task="classification")
    return sqlite_workspace


def _row(i: int) -> dict[str, Any]:
    frame, _ = training_frame(20, seed=3)
    r = frame.iloc[i % 20]
    return {"age": float(r["age"]), "income": None if r["income"] != r["income"] else float(r["income"]),
            "visits": int(r["visits"]), "plan": str(r["plan"])}


def _names(client: Any) -> dict[str, str]:
    p = client.test_prefix
    return {"stream": f"{p}:in", "output_stream": f"{p}:out", "dead_letter_stream": f"{p}:dead"}


def _scorer(ws: Any, client: Any, **kw: Any) -> Any:
    from loopml.serve.stream import RedisStreamScorer

    opts: dict[str, Any] = {"block_ms": 100, "client": client, **_names(client)}
    opts.update(kw)
    return RedisStreamScorer(ws, "churn/1", **opts)


def _outputs(client: Any, name: str) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in f.items()} for _, f in client.xrange(name)]


def test_predictions_reach_the_output_stream_with_the_model_version(registered, redis_client) -> None:  # type: ignore[no-untyped-def]
    names = _names(redis_client)
    ids = [redis_client.xadd(names["stream"], {"data": json.dumps(_row(i))}).decode() for i in range(5)]
    # the features-as-fields form: every value a string
    ids.append(redis_client.xadd(names["stream"], {"age": "40.5", "income": "", "visits": "3", "plan": "pro"}).decode())
    sink = ListSink()
    counters = _scorer(registered, redis_client, sink=sink).run(max_messages=6, handle_signals=False)

    out = _outputs(redis_client, names["output_stream"])
    assert [o["request_id"] for o in out] == ids
    assert {(o["model_name"], o["model_version"]) for o in out} == {("churn", "1")}
    assert all(json.loads(o["prediction"]) in (0, 1) for o in out)
    probs = json.loads(out[0]["probabilities"])
    assert set(probs) == {"0", "1"} and abs(sum(probs.values()) - 1) < 1e-9
    assert (counters.consumed, counters.predicted, counters.dead_lettered, counters.acked) == (6, 6, 0, 6)
    assert redis_client.xpending(names["stream"], "loopml")["pending"] == 0
    assert [r.request_id for r in sink.records] == ids and sink.flushes >= 1
    assert {r.model_version for r in sink.records} == {1} and all(r.status == 200 for r in sink.records)


def test_group_creation_is_idempotent_and_keeps_the_group(registered, redis_client) -> None:  # type: ignore[no-untyped-def]
    scorer = _scorer(registered, redis_client)
    scorer.ensure_group()
    redis_client.xadd(_names(redis_client)["stream"], {"data": json.dumps(_row(0))})
    scorer.ensure_group()  # BUSYGROUP is fine; the entry is still to be delivered
    assert scorer.run(max_messages=1, handle_signals=False).predicted == 1


def test_poison_goes_to_the_dead_letter_stream_and_the_loop_keeps_going(registered, redis_client) -> None:  # type: ignore[no-untyped-def]
    names = _names(redis_client)
    s = names["stream"]
    good1 = redis_client.xadd(s, {"data": json.dumps(_row(1))}).decode()
    bad_json = redis_client.xadd(s, {"data": "{not json"}).decode()
    bad_range = redis_client.xadd(s, {"data": json.dumps({**_row(2), "age": 500.0})}).decode()
    bad_cat = redis_client.xadd(s, {"data": json.dumps({**_row(3), "plan": "gold"})}).decode()
    missing = redis_client.xadd(s, {"data": json.dumps({"age": 30.0})}).decode()
    not_utf8 = redis_client.xadd(s, {"age": b"\xff\xfe", "plan": "pro"}).decode()
    good2 = redis_client.xadd(s, {"data": json.dumps(_row(4))}).decode()
    sink = ListSink()
    counters = _scorer(registered, redis_client, sink=sink, batch_size=3).run(max_messages=7, handle_signals=False)

    assert [o["request_id"] for o in _outputs(redis_client, names["output_stream"])] == [good1, good2]
    dead = {d["request_id"]: d for d in _outputs(redis_client, names["dead_letter_stream"])}
    assert set(dead) == {bad_json, bad_range, bad_cat, missing, not_utf8}
    assert dead[bad_json]["rule"] == "decode" and "not valid JSON" in dead[bad_json]["reason"]
    assert dead[bad_range]["rule"] == "max" and "field 'age'" in dead[bad_range]["reason"]
    assert dead[bad_cat]["rule"] == "unseen" and "'gold'" in dead[bad_cat]["reason"]
    assert dead[missing]["rule"] == "missing" and "field 'income' is missing" in dead[missing]["reason"]
    assert dead[not_utf8]["rule"] == "decode" and "not UTF-8" in dead[not_utf8]["reason"]
    assert json.loads(dead[bad_cat]["payload"])["data"]
    assert (counters.predicted, counters.dead_lettered, counters.acked) == (2, 5, 7)
    assert redis_client.xpending(s, "loopml")["pending"] == 0
    assert sorted(r.status for r in sink.records) == [200, 200, 400, 400, 400, 400, 400]


def test_a_dead_consumers_pending_entries_are_reclaimed_without_loss(registered, redis_client) -> None:  # type: ignore[no-untyped-def]
    names = _names(redis_client)
    s = names["stream"]
    ids = [redis_client.xadd(s, {"data": json.dumps(_row(i))}).decode() for i in range(8)]
    redis_client.xgroup_create(s, "loopml", id="0")
    # A consumer reads everything, then dies before writing or acking anything.
    got = redis_client.xreadgroup("loopml", "dead-consumer", {s: ">"}, count=100)
    assert len(got[0][1]) == 8
    assert redis_client.xpending(s, "loopml")["pending"] == 8
    time.sleep(0.15)

    counters = _scorer(registered, redis_client, consumer="survivor", claim_idle_ms=100).run(
        max_messages=8, handle_signals=False)
    assert counters.reclaimed == 8 and counters.predicted == 8
    assert sorted(o["request_id"] for o in _outputs(redis_client, names["output_stream"])) == sorted(ids)
    assert redis_client.xpending(s, "loopml")["pending"] == 0


def test_nothing_is_acked_before_its_output_exists_and_a_crash_is_redone(registered, redis_client) -> None:  # type: ignore[no-untyped-def]
    names = _names(redis_client)
    s = names["stream"]
    ids = [redis_client.xadd(s, {"data": json.dumps(_row(i))}).decode() for i in range(4)]
    first = _scorer(registered, redis_client, consumer="crashes")
    acked_when: list[int] = []

    def crash(entry_ids: list[str]) -> None:  # the process dies right where it would ack
        acked_when.append(redis_client.xlen(names["output_stream"]))
        raise KeyboardInterrupt("killed before XACK")

    first._ack = crash  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        first.run(max_messages=4, handle_signals=False)
    assert acked_when == [4]  # outputs were all written before the ack was attempted
    assert redis_client.xpending(s, "loopml")["pending"] == 4  # ... and nothing was acked

    time.sleep(0.15)
    second = _scorer(registered, redis_client, consumer="restarted", claim_idle_ms=100)
    assert second.run(max_messages=4, handle_signals=False).reclaimed == 4
    assert redis_client.xpending(s, "loopml")["pending"] == 0
    out = [o["request_id"] for o in _outputs(redis_client, names["output_stream"])]
    # at-least-once: every input answered; the redone ones twice, de-duplicable by request_id
    assert sorted(set(out)) == sorted(ids) and len(out) == 8


def test_a_restarted_consumer_first_redoes_its_own_pending_entries(registered, redis_client) -> None:  # type: ignore[no-untyped-def]
    names = _names(redis_client)
    s = names["stream"]
    ids = [redis_client.xadd(s, {"data": json.dumps(_row(i))}).decode() for i in range(3)]
    redis_client.xgroup_create(s, "loopml", id="0")
    redis_client.xreadgroup("loopml", "worker-1", {s: ">"}, count=100)  # read, then the process died
    # Same consumer name, long claim time: only its own history can bring the entries back.
    counters = _scorer(registered, redis_client, consumer="worker-1").run(max_messages=3, handle_signals=False)
    assert counters.reclaimed == 0 and counters.predicted == 3
    assert [o["request_id"] for o in _outputs(redis_client, names["output_stream"])] == ids
    assert redis_client.xpending(s, "loopml")["pending"] == 0


def test_an_entry_delivered_too_often_is_dead_lettered(registered, redis_client) -> None:  # type: ignore[no-untyped-def]
    names = _names(redis_client)
    s = names["stream"]
    entry = redis_client.xadd(s, {"data": json.dumps(_row(0))}).decode()
    redis_client.xgroup_create(s, "loopml", id="0")
    for i in range(3):  # three consumers crashed on it in turn
        redis_client.xautoclaim(s, "loopml", f"crashed-{i}", 0, "0-0") if i else \
            redis_client.xreadgroup("loopml", "crashed-0", {s: ">"})
    time.sleep(0.15)
    counters = _scorer(registered, redis_client, claim_idle_ms=100, max_deliveries=3).run(
        max_messages=1, handle_signals=False)
    dead = _outputs(redis_client, names["dead_letter_stream"])
    assert counters.dead_lettered == 1 and dead[0]["request_id"] == entry
    assert dead[0]["rule"] == "max_deliveries" and dead[0]["deliveries"] == "4"
    assert redis_client.xlen(names["output_stream"]) == 0
    assert redis_client.xpending(s, "loopml")["pending"] == 0


def test_stop_finishes_the_batch_and_flushes(registered, redis_client) -> None:  # type: ignore[no-untyped-def]
    names = _names(redis_client)
    sink = ListSink()
    scorer = _scorer(registered, redis_client, sink=sink, commit_interval_ms=60_000)
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.setdefault("c", scorer.run(handle_signals=False)))
    thread.start()
    for i in range(3):
        redis_client.xadd(names["stream"], {"data": json.dumps(_row(i))})
    deadline = time.monotonic() + 10
    while scorer.counters.predicted < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    scorer.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert result["c"].acked == 3 and sink.flushes >= 1
    assert redis_client.xpending(names["stream"], "loopml")["pending"] == 0


def test_bad_options_are_rejected(registered, redis_client) -> None:  # type: ignore[no-untyped-def]
    from loopml.kernel.exceptions import ValidationError

    with pytest.raises(ValidationError, match="batch_size must be an integer >= 1, got 0"):
        _scorer(registered, redis_client, batch_size=0)
    with pytest.raises(ValidationError, match="streams must differ"):
        _scorer(registered, redis_client, output_stream=_names(redis_client)["stream"])
