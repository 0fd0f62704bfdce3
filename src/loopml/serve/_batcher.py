"""Micro-batching: concurrent requests share one model call, in one model thread.

Why it pays: a HistGradientBoosting ``predict_proba`` costs ~0.9 ms whether it
scores 1 row or 100, and releases the GIL while it walks the trees, so the
event loop parses the next requests while the model thread scores this batch.
The batch forms naturally: while the model is busy, requests queue; when it
frees, it takes everything queued for the version at the head of the queue (up
to ``max_batch_size`` rows): a batch is one version, one model call and one
columnar log batch, and a split's other version makes the next batch. An idle
model never waits for company unless the last batch had company (then it
waits at most ``max_batch_wait_ms``). The queue is bounded: past
``max_queue`` waiting requests, ``submit`` raises :class:`Overloaded` at once.

Shadow versions (a traffic policy's ``shadow``) get a copy of each batch only
after its answers are handed back; the endpoint's :class:`ShadowLane`
(``_shadow.py``) scores copies on its own thread, a coalescing window at a
time (``shadow_window_ms``, ``shadow_max_rows``), so they never delay a
response and pay the per-call cost once per window rather than once per batch.
With a :class:`ShadowWorker` (``_shadow_worker.py``) the lane only collects
windows and the worker scores them in another process, off this one's GIL.
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
from loopml.serve._shadow_worker import ShadowWorker
from loopml.serve._validation import combine_frames

__all__ = ["Job", "MicroBatcher", "Result"]

log = logging.getLogger("loopml.serve")


class MicroBatcher:
    """An endpoint's queue and model thread."""

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
        shadow_worker: ShadowWorker | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_wait = max(0.0, float(max_batch_wait_ms)) / 1000.0
        self.max_queue = max(1, int(max_queue))
        self.sink = sink
        self.on_batch = on_batch
        self.queue: deque[Job] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"loopml-model-{endpoint}")
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._last_jobs = 0
        self.busy = False
        self.shadow = shadow
        self.shadow_worker = shadow_worker if shadow is not None else None
        self.shadow_lane = ShadowLane(
            endpoint, shadow_endpoint=shadow_endpoint or f"{endpoint}.shadow", score=self._score,
            log_records=self._log, sink=sink, window_ms=shadow_window_ms, max_rows=shadow_max_rows,
            sample_rate=shadow_sample_rate, ship=self.shadow_worker.ship if self.shadow_worker else None,
        ) if shadow is not None else None

    @property
    def shadow_dropped(self) -> int:
        """Requests whose shadow copies were dropped because the shadow lane was full."""
        return self.shadow_lane.dropped if self.shadow_lane is not None else 0

    # ------------------------------------------------------------ event loop

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"loopml-batcher-{self.endpoint}")

    def submit(self, job: Job) -> asyncio.Future[Result]:
        """Queue a job; raises :class:`Overloaded` when the queue is full (never waits)."""
        if len(self.queue) >= self.max_queue or self._closing:
            raise Overloaded(
                f"endpoint '{self.endpoint}' is overloaded: {len(self.queue)} requests waiting "
                f"(max_queue={self.max_queue}); retry shortly"
            )
        self.queue.append(job)
        wake = self._wakeup
        if wake is not None and not wake.done():
            wake.set_result(None)
        return job.future

    async def close(self) -> None:
        """Score what is queued, then stop the model thread."""
        self._closing = True
        wake = self._wakeup
        if wake is not None and not wake.done():
            wake.set_result(None)
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=30)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
        self._executor.shutdown(wait=True)
        if self.shadow_lane is not None:  # scores the copies still waiting, without waiting out the window
            await asyncio.to_thread(self.shadow_lane.close)
        if self.shadow_worker is not None:  # and the worker logs them before it exits
            await asyncio.to_thread(self.shadow_worker.close)

    async def _sleep_until_job(self, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        self._wakeup = wake = loop.create_future()
        handle = loop.call_later(timeout, _resolve, wake) if timeout is not None else None
        try:
            await wake
        finally:
            self._wakeup = None
            if handle is not None:
                handle.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        queue = self.queue
        while True:
            if not queue:
                if self._closing:
                    return
                await self._sleep_until_job(None)
                continue
            jobs = [queue.popleft()]
            rows, full = self._fill(jobs, jobs[0].frame.n)
            if self.max_wait and self._last_jobs > 1 and not full and not self._closing:
                deadline = loop.time() + self.max_wait
                while True:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    waiting = len(queue)
                    await self._sleep_until_job(remaining)
                    if len(queue) == waiting:
                        break
                    rows, full = self._fill(jobs, rows)
                    if full:
                        break
            self._last_jobs = len(jobs)
            if self.on_batch is not None:
                self.on_batch(rows, len(jobs))
            self.busy = True
            t_batch = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self._run_batch, jobs)
            except Exception as exc:  # the batch machinery itself failed: fail these jobs, keep serving
                log.exception("batch failed on endpoint %s", self.endpoint)
                err = BadRequest(f"the model could not score this request: {type(exc).__name__}: {exc}",
                                 rule="model", status=500)
                results = [Result(error=err)] * len(jobs)
            finally:
                self.busy = False
            for job, res in zip(jobs, results, strict=True):
                if not job.future.done():
                    job.future.set_result(res)
            if self.shadow_lane is not None:
                shadows = self.shadow()  # type: ignore[misc]
                if shadows:
                    self.shadow_lane.send(shadows, jobs, t_batch, rows)

    def _fill(self, jobs: list[Job], rows: int) -> tuple[int, bool]:
        """Move queued jobs for ``jobs[0]``'s version into the batch, up to ``max_batch_size`` rows.

        A batch holds one version, so it is one model call and one columnar log batch. Jobs for another version
        (an A/B split is per request key; a swap may land mid-queue) keep their places at the head of the queue
        and form the next batch. Returns the batch's rows and whether it is full (no more of its jobs fit).
        """
        queue, limit, served = self.queue, self.max_batch_size, jobs[0].served
        skipped: list[Job] = []
        full = rows >= limit
        while queue and not full:
            job = queue[0]
            if job.served is not served:
                skipped.append(queue.popleft())
            elif rows + job.frame.n > limit:
                full = True
            else:
                jobs.append(queue.popleft())
                rows += job.frame.n
                full = rows >= limit
        if skipped:
            queue.extendleft(reversed(skipped))
        return rows, full

    # ------------------------------------------------------------ model thread

    def _run_batch(self, jobs: list[Job]) -> list[Result]:
        results = self._score(jobs[0].served, jobs)  # one version per batch (_fill)
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
    inputs that are not one numeric matrix. A batch is always one version (``_fill``).
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
