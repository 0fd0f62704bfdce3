"""The micro-batcher forms each batch from one model version, keeping the others' places in the queue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from loopml.serve._batcher import Job, MicroBatcher
from loopml.serve._validation import Frame


def _job(served: Any, rid: str, rows: int = 1) -> Job:
    return Job(served=served, frame=Frame(rows, np.zeros((rows, 1))), request_id=rid, t0=0.0, ts=0.0,
               future=None)  # type: ignore[arg-type]  # _fill never touches the future


@pytest.fixture
def batchers() -> Iterator[Any]:
    """``batchers(max_batch_size)``: a batcher whose (never started) model thread pool is shut down after the test."""
    made: list[MicroBatcher] = []

    def make(max_batch_size: int) -> MicroBatcher:
        made.append(MicroBatcher("ep", max_batch_size=max_batch_size, max_batch_wait_ms=0, max_queue=64))
        return made[-1]

    yield make
    for batcher in made:
        batcher._executor.shutdown(wait=True)


def test_a_batch_takes_only_its_versions_jobs_and_the_others_keep_their_order(batchers: Any) -> None:
    a, b = object(), object()
    batcher = batchers(max_batch_size=3)
    batcher.queue.extend([_job(b, "b1"), _job(a, "a2"), _job(b, "b2"), _job(a, "a3"), _job(a, "a4"), _job(b, "b3")])
    jobs = [_job(a, "a1")]
    rows, full = batcher._fill(jobs, 1)
    assert [j.request_id for j in jobs] == ["a1", "a2", "a3"] and (rows, full) == (3, True)
    assert [j.request_id for j in batcher.queue] == ["b1", "b2", "a4", "b3"]  # the next batch is b's
    jobs = [batcher.queue.popleft()]
    rows, full = batcher._fill(jobs, 1)
    assert [j.request_id for j in jobs] == ["b1", "b2", "b3"] and (rows, full) == (3, True)
    assert [j.request_id for j in batcher.queue] == ["a4"]


def test_a_batch_is_full_when_its_next_job_does_not_fit_and_not_before(batchers: Any) -> None:
    a, b = object(), object()
    batcher = batchers(max_batch_size=4)
    batcher.queue.extend([_job(b, "b1", rows=3), _job(a, "a2", rows=2), _job(a, "a3", rows=4)])
    jobs = [_job(a, "a1", rows=2)]
    assert batcher._fill(jobs, 2) == (4, True)
    assert [j.request_id for j in batcher.queue] == ["b1", "a3"]
    jobs = [_job(a, "a0", rows=1)]
    batcher.queue.clear()
    batcher.queue.append(_job(b, "b2"))
    assert batcher._fill(jobs, 1) == (1, False)  # only another version waits: room is left for this one's
    assert [j.request_id for j in batcher.queue] == ["b2"]
