"""Micro-batching: concurrent requests share one model call, in one model thread per version.

Why it pays: a HistGradientBoosting ``predict_proba`` costs ~0.9 ms whether it
scores 1 row or 100, and releases the GIL while it walks the trees, so the
event loop parses the next requests while the model thread scores this batch.
The batch forms naturally: while the model is busy, requests queue; when it
frees, it takes everything queued (up to ``max_batch_size`` rows). An idle
model never waits for company unless the last batch had company (then it
waits at most ``max_batch_wait_ms``). The queue is bounded: past
``max_queue`` waiting requests, ``submit`` raises :class:`Overloaded` at once.

Each version an endpoint answers with has its own lane (queue and model
thread). In a split (canary, A/B) a batch is then one version, one model call
and one columnar log batch, and a version's requests never wait for another
version's call: with one shared thread, a candidate five times slower would
slow the baseline's answers too, and blur the latency comparison the rollout
makes between them.

Shadow versions (a traffic policy's ``shadow``) get a copy of each batch only
after its answers are handed back; the endpoint's :class:`ShadowLane`
(``_shadow.py``) scores copies on its own thread, a coalescing window at a
time (``shadow_window_ms``, ``shadow_max_rows``), so they never delay a
response and pay the per-call cost once per window rather than once per batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import numpy as np

from loopml.kernel.exceptions import BadRequest, Overloaded
from loopml.serve._jobs import Job, Result
from loopml.serve._records import MatrixColumns, PredictionBatch, PredictionRecord, PredictionSink, stacked_batch
from loopml.serve._router import ServedModel
from loopml.serve._shadow import ShadowLane
from loopml.serve._validation import combine_frames

__all__ = ["Job", "MicroBatcher", "Result"]

log = logging.getLogger("loopml.serve")


class _Lane:
    """One version's queue and model thread: a split's versions never wait for each other's model calls."""

    __slots__ = ("executor", "last_jobs", "queue", "served", "task", "wakeup")

    def __init__(self, endpoint: str, served: ServedModel) -> None:
        self.served = served
        self.queue: deque[Job] = deque()
        self.wakeup: asyncio.Future[None] | None = None
        self.executor = ThreadPoolExecutor(max_workers=1,
                                           thread_name_prefix=f"loopml-model-{endpoint}-v{served.version_str}")
        self.task: asyncio.Task[None] | None = None
        self.last_jobs = 0

    def wake(self) -> None:
        wake = self.wakeup
        if wake is not None and not wake.done():
            wake.set_result(None)


class MicroBatcher:
    """An endpoint's queues and model threads, one lane per version that has requests.

    ``idle_lane_s``: a lane with nothing queued for that long stops and lets its
    thread go (a version a policy no longer routes to); the next request for it
    starts a new one.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        max_batch_size: int,
        max_batch_wait_ms: float,
        max_queue: int,
        sink: PredictionSink | None = None,
        on_batch: Callable[[int, int], None] | None = None,
        shadow: Callable[[], Sequence[ServedModel]] | None = None,
        shadow_endpoint: str | None = None,
        shadow_sample_rate: float = 1.0,
        shadow_window_ms: float = 100.0,
        shadow_max_rows: int = 4096,
        idle_lane_s: float = 300.0,
    ) -> None:
        self.endpoint = endpoint
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_wait = max(0.0, float(max_batch_wait_ms)) / 1000.0
        self.max_queue = max(1, int(max_queue))
        self.idle_lane_s = idle_lane_s
        self.sink = sink
        self.on_batch = on_batch
        #: requests waiting, over every lane
        self.queued = 0
        self._lanes: dict[ServedModel, _Lane] = {}
        self._closing = False
        self.shadow = shadow
        self.shadow_lane = ShadowLane(
            endpoint, shadow_endpoint=shadow_endpoint or f"{endpoint}.shadow", score=self._score,
            log_records=self._log, sink=sink, window_ms=shadow_window_ms, max_rows=shadow_max_rows,
            sample_rate=shadow_sample_rate) if shadow is not None else None

    @property
    def shadow_dropped(self) -> int:
        """Requests whose shadow copies were dropped because the shadow lane was full."""
        return self.shadow_lane.dropped if self.shadow_lane is not None else 0

    @property
    def lanes(self) -> int:
        """Versions with a model thread now."""
        return len(self._lanes)

    # ------------------------------------------------------------ event loop

    def start(self) -> None:
        """Nothing to start: a lane starts with its version's first request (on the event loop)."""

    def submit(self, job: Job) -> asyncio.Future[Result]:
        """Queue a job; raises :class:`Overloaded` when ``max_queue`` requests wait (never waits)."""
        if self.queued >= self.max_queue or self._closing:
            raise Overloaded(
                f"endpoint '{self.endpoint}' is overloaded: {self.queued} requests waiting "
                f"(max_queue={self.max_queue}); retry shortly"
            )
        lane = self._lanes.get(job.served)
        if lane is None:
            lane = self._lanes[job.served] = _Lane(self.endpoint, job.served)
            lane.task = asyncio.get_running_loop().create_task(
                self._run(lane), name=f"loopml-batcher-{self.endpoint}-v{job.served.version_str}")
        lane.queue.append(job)
        self.queued += 1
        lane.wake()
        return job.future

    async def close(self) -> None:
        """Score what is queued, then stop the model threads and the shadow lane."""
        self._closing = True
        lanes = list(self._lanes.values())
        for lane in lanes:
            lane.wake()
        for lane in lanes:
            if lane.task is not None:
                try:
                    await asyncio.wait_for(lane.task, timeout=30)
                except (TimeoutError, asyncio.CancelledError):
                    lane.task.cancel()
            lane.executor.shutdown(wait=True)
        if self.shadow_lane is not None:  # scores the copies still waiting, without waiting out the window
            await asyncio.to_thread(self.shadow_lane.close)

    async def _sleep_until_job(self, lane: _Lane, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        lane.wakeup = wake = loop.create_future()
        handle = loop.call_later(timeout, _resolve, wake) if timeout is not None else None
        try:
            await wake
        finally:
            lane.wakeup = None
            if handle is not None:
                handle.cancel()

    def _take(self, lane: _Lane, jobs: list[Job], rows: int) -> int:
        """Move queued jobs into the batch while they fit in ``max_batch_size`` rows; the batch's rows."""
        queue, limit, before = lane.queue, self.max_batch_size, len(jobs)
        while queue and rows + queue[0].frame.n <= limit:
            job = queue.popleft()
            jobs.append(job)
            rows += job.frame.n
        self.queued -= len(jobs) - before
        return rows

    async def _run(self, lane: _Lane) -> None:
        loop = asyncio.get_running_loop()
        queue, limit = lane.queue, self.max_batch_size
        while True:
            if not queue:
                if self._closing:
                    return
                await self._sleep_until_job(lane, self.idle_lane_s)
                if not queue and not self._closing:  # idle: let the thread go (a new request starts a new lane)
                    del self._lanes[lane.served]
                    lane.executor.shutdown(wait=False)
                    return
                continue
            jobs = [queue.popleft()]
            self.queued -= 1
            rows = self._take(lane, jobs, jobs[0].frame.n)
            if self.max_wait and lane.last_jobs > 1 and rows < limit and not self._closing:
                deadline = loop.time() + self.max_wait
                while rows < limit and not (queue and rows + queue[0].frame.n > limit):
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    await self._sleep_until_job(lane, remaining)
                    if not queue:
                        break
                    rows = self._take(lane, jobs, rows)
            lane.last_jobs = len(jobs)
            if self.on_batch is not None:
                self.on_batch(rows, len(jobs))
            t_batch = time.perf_counter()
            try:
                results = await loop.run_in_executor(lane.executor, self._run_batch, jobs)
            except Exception as exc:  # the batch machinery itself failed: fail these jobs, keep serving
                log.exception("batch failed on endpoint %s", self.endpoint)
                err = BadRequest(f"the model could not score this request: {type(exc).__name__}: {exc}",
                                 rule="model", status=500)
                results = [Result(error=err)] * len(jobs)
            for job, res in zip(jobs, results, strict=True):
                if not job.future.done():
                    job.future.set_result(res)
            if self.shadow_lane is not None:
                shadows = self.shadow()  # type: ignore[misc]
                if shadows:
                    self.shadow_lane.send(shadows, jobs, t_batch, rows)

    # ------------------------------------------------------------ model thread

    def _run_batch(self, jobs: list[Job]) -> list[Result]:
        results = self._score(jobs[0].served, jobs)  # a lane's batch is one version
        if self.sink is not None:
            self._log(jobs, results)
        return results

    def _score(self, served: ServedModel, jobs: list[Job]) -> list[Result]:
        frame = combine_frames([j.frame for j in jobs])
        offsets = [0] * len(jobs)
        total = 0
        for i, j in enumerate(jobs):
            offsets[i] = total
            total += j.frame.n
        try:
            errors, codes = served.contract.check(frame, offsets)
        except Exception as exc:  # a checker bug on one request must not fail the others batched with it
            if len(jobs) > 1:
                return [r for j in jobs for r in self._score(served, [j])]
            log.exception("contract check failed on endpoint %s", self.endpoint)
            return [Result(error=BadRequest(
                f"the request could not be checked against the contract of {served.name}/{served.version}: "
                f"{type(exc).__name__}: {exc}"[:500], rule="contract", status=500))]
        if errors:
            ok = [j for i, j in enumerate(jobs) if i not in errors]
            ok_results = iter(self._score(served, ok) if ok else [])
            return [Result(error=errors[i]) if i in errors else next(ok_results) for i in range(len(jobs))]
        try:
            labels, proba = served.predict(frame, codes)
        except Exception as exc:
            if len(jobs) > 1:  # isolate the request the model chokes on
                return [r for j in jobs for r in self._score(served, [j])]
            return [Result(error=BadRequest(
                f"model {served.name}/{served.version} could not score this input: {type(exc).__name__}: {exc}"[:500],
                rule="model", status=500))]
        if len(jobs) == 1:
            return [Result(labels, proba)]
        out = []
        for i, j in enumerate(jobs):
            a = offsets[i]
            b = a + j.frame.n
            out.append(Result(labels[a:b], None if proba is None else proba[a:b]))
        return out

    def _log(self, jobs: list[Job], results: list[Result], *, endpoint: str | None = None,
             latencies_ms: list[float] | None = None) -> None:
        now = time.perf_counter()
        endpoint = endpoint or self.endpoint
        submit_batch = getattr(self.sink, "submit_batch", None)
        if submit_batch is not None:
            batch = _columnar(jobs, results, endpoint, now, latencies_ms)
            if batch is not None:
                try:
                    submit_batch(batch)
                except Exception:  # the log must never take serving down
                    log.exception("prediction sink rejected a batch of %d requests", len(jobs))
                return
        records = []
        for i, (j, r) in enumerate(zip(jobs, results, strict=True)):
            s = j.served
            f = j.frame
            inputs: Any = MatrixColumns(s.contract.names, s.contract.index, f.matrix) if f.matrix is not None else f.columns
            if r.error is None:
                outputs: dict[str, Any] | None = {"predict": r.labels}
                if r.proba is not None:
                    outputs["predict_proba"] = r.proba  # type: ignore[index]
                    outputs["classes"] = s.classes_list  # type: ignore[index]
            else:
                outputs = None
            records.append(PredictionRecord(
                request_id=j.request_id, ts=datetime.fromtimestamp(j.ts, UTC), endpoint=endpoint,
                model_name=s.name, model_version=s.version, inputs=inputs, outputs=outputs,
                latency_ms=(now - j.t0) * 1000.0 if latencies_ms is None else latencies_ms[i],
                status=200 if r.error is None else r.error.status,
                error=None if r.error is None else str(r.error),
            ))
        try:
            self.sink.submit(records)  # type: ignore[union-attr]
        except Exception:  # the log must never take serving down
            log.exception("prediction sink rejected %d records", len(records))


def _columnar(jobs: list[Job], results: list[Result], endpoint: str, now: float,
              latencies_ms: list[float] | None) -> PredictionBatch | None:
    """The batch in columns for ``submit_batch``; None when records are needed.

    Records remain for the rare batches this shape does not cover: an error, or
    inputs that are not one numeric matrix. A batch is always one version (its lane's).
    """
    s = jobs[0].served
    if any(r.error is not None for r in results) or any(j.frame.matrix is None for j in jobs):
        return None
    lat = np.array([(now - j.t0) * 1000.0 for j in jobs] if latencies_ms is None else latencies_ms, dtype=np.float64)
    ts = np.array([j.ts for j in jobs], dtype=np.float64)
    if len(jobs) == 1:
        matrix, labels = jobs[0].frame.matrix, results[0].labels
        proba = results[0].proba
    else:
        matrix = np.concatenate([j.frame.matrix for j in jobs])
        labels = np.concatenate([np.asarray(r.labels) for r in results])
        proba = None if results[0].proba is None else np.concatenate([r.proba for r in results])
    return stacked_batch(s, endpoint, request_ids=[j.request_id for j in jobs], sizes=[j.frame.n for j in jobs],
                         ts=ts, latency_ms=lat, matrix=matrix, labels=labels, proba=proba)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
