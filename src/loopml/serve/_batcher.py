"""Micro-batching: concurrent requests share one model call, in one model thread.

Why it pays: a HistGradientBoosting ``predict_proba`` costs ~0.9 ms whether it
scores 1 row or 100, and releases the GIL while it walks the trees, so the
event loop parses the next requests while the model thread scores this batch.
The batch forms naturally: while the model is busy, requests queue; when it
frees, it takes everything queued (up to ``max_batch_size`` rows). An idle
model never waits for company unless the last batch had company (then it
waits at most ``max_batch_wait_ms``). The queue is bounded: past
``max_queue`` waiting requests, ``submit`` raises :class:`Overloaded` at once.

Shadow versions (a traffic policy's ``shadow``) get a copy of each batch only
after its answers are handed back, on their own thread, so they never delay a
response. Copies that wait while the shadow thread is busy are scored together
in one model call per shadow version (the per-call cost is paid once, as for
the primary batch); at most ``max_shadow_pending`` batches wait and further
copies are dropped (``shadow_dropped`` counts the requests) rather than queued
without bound. ``shadow_sample_rate`` < 1 copies only that fraction of requests.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from loopml.kernel.exceptions import BadRequest, Overloaded
from loopml.serve._records import MatrixColumns, PredictionBatch, PredictionRecord, PredictionSink
from loopml.serve._router import ServedModel
from loopml.serve._validation import Frame, combine_frames

__all__ = ["Job", "MicroBatcher", "Result"]

log = logging.getLogger("loopml.serve")


@dataclass(slots=True)
class Job:
    """One request waiting for the model."""

    served: ServedModel
    frame: Frame
    request_id: str
    t0: float  # perf_counter at arrival
    ts: float  # wall clock at arrival
    future: asyncio.Future[Result]


@dataclass(slots=True)
class Result:
    """The answer for one job: outputs, or the error that stopped it."""

    labels: Any = None
    proba: np.ndarray | None = None
    error: BadRequest | None = None


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
        max_shadow_pending: int = 4,
        shadow_sample_rate: float = 1.0,
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
        self.shadow_endpoint = shadow_endpoint or f"{endpoint}.shadow"
        self.shadow_dropped = 0
        self.shadow_sample_rate = min(1.0, max(0.0, float(shadow_sample_rate)))
        self._max_shadow_pending = max(1, int(max_shadow_pending))
        self._shadow_lock = threading.Lock()
        #: answered batches waiting for the shadow thread: (shadow models, jobs, t_batch)
        self._shadow_waiting: deque[tuple[tuple[ServedModel, ...], list[Job], float]] = deque()
        self._shadow_draining = False
        self._shadow_executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"loopml-shadow-{endpoint}") if shadow is not None else None

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
        if self._shadow_executor is not None:
            self._shadow_executor.shutdown(wait=True)

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
        queue, limit = self.queue, self.max_batch_size
        while True:
            if not queue:
                if self._closing:
                    return
                await self._sleep_until_job(None)
                continue
            jobs = [queue.popleft()]
            rows = jobs[0].frame.n
            while queue and rows + queue[0].frame.n <= limit:
                job = queue.popleft()
                jobs.append(job)
                rows += job.frame.n
            if self.max_wait and self._last_jobs > 1 and rows < limit and not self._closing:
                deadline = loop.time() + self.max_wait
                while rows < limit:
                    if not queue:
                        remaining = deadline - loop.time()
                        if remaining <= 0:
                            break
                        await self._sleep_until_job(remaining)
                        if not queue:
                            break
                    if rows + queue[0].frame.n > limit:
                        break
                    job = queue.popleft()
                    jobs.append(job)
                    rows += job.frame.n
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
            if self.shadow is not None:
                shadows = self.shadow()
                if shadows:
                    self._send_to_shadows(shadows, jobs, t_batch)

    # ------------------------------------------------------------ model thread

    def _run_batch(self, jobs: list[Job]) -> list[Result]:
        if all(j.served is jobs[0].served for j in jobs):
            results = self._score(jobs[0].served, jobs)
        else:  # a swap happened mid-batch, or a traffic split: one call per version
            results = [Result()] * len(jobs)
            by_model: dict[int, list[int]] = {}
            for i, j in enumerate(jobs):
                by_model.setdefault(id(j.served), []).append(i)
            for idxs in by_model.values():
                for i, r in zip(idxs, self._score(jobs[idxs[0]].served, [jobs[i] for i in idxs]), strict=True):
                    results[i] = r
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

    # ------------------------------------------------------------ shadow thread

    def _send_to_shadows(self, shadows: Sequence[ServedModel], jobs: list[Job], t_batch: float) -> None:
        """Hand a copy of an answered batch to the shadow thread, or drop it when that thread is behind."""
        rate = self.shadow_sample_rate
        if rate < 1.0:
            jobs = [j for j in jobs if random.random() < rate]
            if not jobs:
                return
        with self._shadow_lock:
            if len(self._shadow_waiting) >= self._max_shadow_pending:
                self.shadow_dropped += len(jobs)
                return
            self._shadow_waiting.append((tuple(shadows), jobs, t_batch))
            if self._shadow_draining:  # the shadow thread picks it up with what else waits
                return
            self._shadow_draining = True
        try:
            self._shadow_executor.submit(self._drain_shadows)  # type: ignore[union-attr]
        except RuntimeError:  # shut down while closing
            with self._shadow_lock:
                self._shadow_draining = False
                self._shadow_waiting.clear()

    def _drain_shadows(self) -> None:
        """Score every waiting copy, coalescing batches that share shadow versions into one call each."""
        while True:
            with self._shadow_lock:
                if not self._shadow_waiting:
                    self._shadow_draining = False
                    return
                waiting = list(self._shadow_waiting)
                self._shadow_waiting.clear()
            groups: dict[tuple[int, ...], tuple[tuple[ServedModel, ...], list[Job], list[float]]] = {}
            for shadows, jobs, t_batch in waiting:
                key = tuple(id(m) for m in shadows)
                group = groups.setdefault(key, (shadows, [], []))
                group[1].extend(jobs)
                group[2].extend([t_batch] * len(jobs))
            for shadows, jobs, t_batches in groups.values():
                self._run_shadows(shadows, jobs, t_batches)

    def _run_shadows(self, shadows: tuple[ServedModel, ...], jobs: list[Job], t_batches: list[float]) -> None:
        try:
            for model in shadows:
                # requests parsed for another feature set cannot go to this shadow
                same = [i for i, j in enumerate(jobs) if j.served.contract.names == model.contract.names]
                if len(same) < len(jobs):
                    log.warning("shadow %s/%s skipped %d requests on %s: its features %s differ from theirs",
                                model.name, model.version, len(jobs) - len(same), self.endpoint,
                                model.contract.names)
                if not same:
                    continue
                copies = [Job(model, jobs[i].frame, jobs[i].request_id, jobs[i].t0, jobs[i].ts, jobs[i].future)
                          for i in same]
                t = time.perf_counter()
                try:
                    results = self._score(model, copies)
                except Exception as exc:  # noqa: BLE001 - a broken shadow is logged as such, never raised
                    err = BadRequest(f"shadow {model.name}/{model.version} failed: {type(exc).__name__}: {exc}"[:500],
                                     rule="model", status=500)
                    results = [Result(error=err)] * len(copies)
                took = time.perf_counter() - t
                if self.sink is not None:
                    # Latency as if the shadow had answered: the wait before the batch, plus its own scoring.
                    self._log(copies, results, endpoint=self.shadow_endpoint,
                              latencies_ms=[(t_batches[i] - jobs[i].t0 + took) * 1000.0 for i in same])
        except Exception:
            log.exception("shadow scoring failed on endpoint %s", self.endpoint)

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

    Records remain for the rare batches this shape does not cover: an error, a
    version swap or split inside the batch, or inputs that are not one numeric matrix.
    """
    s = jobs[0].served
    if any(r.error is not None for r in results) or any(j.served is not s or j.frame.matrix is None for j in jobs):
        return None
    sizes = [j.frame.n for j in jobs]
    lat = np.array([(now - j.t0) * 1000.0 for j in jobs] if latencies_ms is None else latencies_ms, dtype=np.float64)
    ts = np.array([j.ts for j in jobs], dtype=np.float64)
    rids: Any = [j.request_id for j in jobs]
    if len(jobs) == 1:
        matrix, labels = jobs[0].frame.matrix, results[0].labels
        proba = results[0].proba
    else:
        matrix = np.concatenate([j.frame.matrix for j in jobs])
        labels = np.concatenate([np.asarray(r.labels) for r in results])
        proba = None if results[0].proba is None else np.concatenate([r.proba for r in results])
    total = int(matrix.shape[0])
    if total == len(jobs):
        row = np.zeros(total, dtype=np.int32)
    else:
        reps = np.asarray(sizes)
        rids = np.repeat(np.array(rids, dtype=object), reps)
        ts, lat = np.repeat(ts, reps), np.repeat(lat, reps)
        row = np.arange(total, dtype=np.int32) - np.repeat(np.cumsum(reps) - reps, reps).astype(np.int32)
    outputs: dict[str, Any] = {"predict": labels}
    if proba is not None:
        outputs["predict_proba"] = proba
        outputs["classes"] = s.classes_list
    return PredictionBatch(
        request_id=rids, row=row, ts=ts, endpoint=endpoint, model_name=s.name, model_version=s.version,
        latency_ms=lat, status=200, error=None,
        inputs=MatrixColumns(s.contract.names, s.contract.index, matrix), outputs=outputs,
    )


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
