"""The micro-batcher: one lane (queue and model thread) per version, so a split's versions never wait for each other."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from loopml.kernel.exceptions import Overloaded
from loopml.serve._batcher import Job, MicroBatcher
from tests.serve.test_shadow_lane import BatchSink, CountingClassifier, _frame, _served


def _job(served: Any, rid: str, seed: int = 0) -> Job:
    return Job(served, _frame(1, seed), rid, time.perf_counter(), time.time(), asyncio.get_running_loop().create_future())


def _batcher(sink: Any = None, **settings: Any) -> MicroBatcher:
    """A started batcher (call it on the event loop)."""
    options: dict[str, Any] = {"max_batch_size": 64, "max_batch_wait_ms": 0, "max_queue": 64, **settings}
    batcher = MicroBatcher("ep", sink=sink, **options)
    batcher.start()
    return batcher


def test_the_baseline_is_answered_while_a_slow_candidates_call_is_still_running(numeric: Any) -> None:
    gate = threading.Event()
    slow = CountingClassifier(numeric, gate=gate)
    baseline, candidate = _served(numeric, 1), _served(slow, 2)
    sink = BatchSink()

    async def main() -> None:
        batcher = _batcher(sink)
        held = batcher.submit(_job(candidate, "c-1"))
        assert await asyncio.to_thread(slow.entered.wait, 10)  # the candidate's model call is running, held
        answers = [await asyncio.wait_for(batcher.submit(_job(baseline, f"b-{i}", seed=i)), 10) for i in range(3)]
        assert all(a.error is None for a in answers) and not held.done()
        assert batcher.lanes == 2
        gate.set()
        assert (await asyncio.wait_for(held, 10)).error is None
        await batcher.close()

    asyncio.run(main())
    # Each version's batches are logged in columns, under the version that answered them.
    logged = [(b["model_version"], list(b["request_id"])) for b in sink.batches]
    assert logged == [(1, ["b-0"]), (1, ["b-1"]), (1, ["b-2"]), (2, ["c-1"])]


def test_requests_that_arrive_together_share_one_call_per_version(numeric: Any) -> None:
    v1, v2 = CountingClassifier(numeric), CountingClassifier(numeric)
    a, b = _served(v1, 1), _served(v2, 2)

    async def main() -> None:
        batcher = _batcher()
        futures = [batcher.submit(_job(a if i % 3 else b, f"r-{i}", seed=i)) for i in range(12)]  # before any runs
        assert batcher.queued == 12
        results = await asyncio.gather(*futures)
        assert all(r.error is None for r in results) and batcher.queued == 0
        await batcher.close()

    asyncio.run(main())
    assert v1.calls == [8] and v2.calls == [4]  # one model call each: no batch held two versions


def test_waiting_requests_are_bounded_over_all_versions(numeric: Any) -> None:
    gate = threading.Event()
    v1, v2 = CountingClassifier(numeric, gate=gate), CountingClassifier(numeric, gate=gate)
    a, b = _served(v1, 1), _served(v2, 2)

    async def main() -> None:
        batcher = _batcher(max_queue=3)
        first = [batcher.submit(_job(a, "a-1")), batcher.submit(_job(b, "b-1"))]
        assert await asyncio.to_thread(v1.entered.wait, 10) and await asyncio.to_thread(v2.entered.wait, 10)
        waiting = [batcher.submit(_job(a, "a-2")), batcher.submit(_job(b, "b-2")), batcher.submit(_job(b, "b-3"))]
        with pytest.raises(Overloaded, match="3 requests waiting"):
            batcher.submit(_job(a, "a-3"))
        gate.set()
        assert all(r.error is None for r in await asyncio.gather(*first, *waiting))
        await batcher.close()

    asyncio.run(main())


def test_an_idle_lane_lets_its_thread_go_and_a_new_request_starts_another(numeric: Any) -> None:
    a = _served(numeric, 1)

    async def main() -> None:
        batcher = _batcher(idle_lane_s=0.05)
        assert (await batcher.submit(_job(a, "r-1"))).error is None and batcher.lanes == 1
        for _ in range(100):
            if batcher.lanes == 0:
                break
            await asyncio.sleep(0.02)
        assert batcher.lanes == 0
        assert not [t for t in threading.enumerate() if t.name.startswith("loopml-model-ep-v1")]
        assert (await asyncio.wait_for(batcher.submit(_job(a, "r-2")), 10)).error is None
        await batcher.close()

    asyncio.run(main())
