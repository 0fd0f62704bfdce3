"""The shadow lane: shadow versions score copies of answered batches, a window at a time, off the response path.

Why a window: a model call has a fixed cost (~0.9 ms for a HistGradientBoosting
``predict_proba``, whether it scores 1 row or 1,000). Scoring each answered batch
as it arrives pays that cost once per batch, which on a CPU-bound box nearly
doubles the CPU per request. So the lane's thread, once a copy arrives, waits up
to ``window_ms`` for more (or until ``max_rows`` rows wait), then scores what
waits in one model call per shadow version and logs each call as one batch.
``window_ms=0`` scores at once and coalesces only what queued while it was busy.

Latency "as if the shadow had answered": the wait before the request's own
batch, plus the share of the coalesced call's time that its batch's rows take
(``call time x batch rows / call rows``). That keeps shadow and primary latencies
comparable for the rollout's latency test (the whole call's time would count
every other batch of the window against each request). It splits a fixed
per-call cost across the window: a candidate slow *per call* rather than per
row looks faster here than it would answer; a canary measures it directly.

Bounded: at most ``max_waiting_rows`` rows (default 4 x ``max_rows``) wait;
further copies are dropped and ``dropped`` counts their requests. ``close()``
scores what waits without waiting out the window. A failing shadow is logged
(records with its error), never raised: responses were sent before any copy
arrives here.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import chain
from typing import Any, NamedTuple

import numpy as np

from loopml.serve._jobs import FRAME, REQUEST_ID, ROWS, SERVED, T0, TS, Job, Result
from loopml.serve._records import PredictionSink, stacked_batch
from loopml.serve._router import ServedModel
from loopml.serve._validation import combine_frames

__all__ = ["Copy", "ShadowLane"]

log = logging.getLogger("loopml.serve")



class Copy(NamedTuple):
    """An answered batch waiting for the shadow versions."""

    shadows: tuple[ServedModel, ...]
    jobs: list[Job]
    t_batch: float  # perf_counter when its answering model call began
    rows: int
    arrived: float  # perf_counter when it reached the lane


class ShadowLane:
    """One endpoint's shadow thread and the copies waiting for it.

    ``score(model, jobs) -> results`` scores jobs one result per job, isolating
    a request the model or contract rejects; ``log_records(jobs, results,
    endpoint=, latencies_ms=)`` hands results to the prediction log as records.
    Both come from the endpoint's :class:`~loopml.serve._batcher.MicroBatcher`
    and are used only when a call fails, the inputs are not one numeric matrix,
    or the sink takes no columnar batches (``submit_batch``). With ``ship``,
    the thread only collects windows and hands each to ``ship(copies)``
    (a :class:`~loopml.serve._shadow_worker.ShadowWorker`, which scores them in
    another process); a window it cannot take (``False``) counts as dropped.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        shadow_endpoint: str,
        score: Callable[[ServedModel, list[Job]], list[Result]],
        log_records: Callable[..., None],
        sink: PredictionSink | None = None,
        window_ms: float = 100.0,
        max_rows: int = 4096,
        max_waiting_rows: int | None = None,
        sample_rate: float = 1.0,
        ship: Callable[[list[Copy]], bool] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.shadow_endpoint = shadow_endpoint
        self.window = max(0.0, float(window_ms)) / 1000.0
        self.max_rows = max(1, int(max_rows))
        self.max_waiting_rows = 4 * self.max_rows if max_waiting_rows is None else max(1, int(max_waiting_rows))
        self.sample_rate = min(1.0, max(0.0, float(sample_rate)))
        self.sink = sink
        #: requests whose copies were dropped because too many rows waited (or the lane was closed)
        self.dropped = 0
        self._score = score
        self._log_records = log_records
        self._ship = ship
        self._cond = threading.Condition()
        self._waiting: deque[Copy] = deque()
        self._rows = 0  # rows waiting
        self._closing = False
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ event loop side

    def send(self, shadows: Sequence[ServedModel], jobs: list[Job], t_batch: float, rows: int) -> None:
        """Queue a copy of an answered batch of ``rows`` rows (never blocks on scoring)."""
        if self.sample_rate < 1.0:
            rate = self.sample_rate
            jobs = [j for j in jobs if random.random() < rate]
            if not jobs:
                return
            rows = sum(j.frame.n for j in jobs)
        with self._cond:
            waiting = self._rows
            if self._closing or (waiting and waiting + rows > self.max_waiting_rows):
                self.dropped += len(jobs)
                return
            self._waiting.append(Copy(tuple(shadows), jobs, t_batch, rows, time.perf_counter()))
            self._rows = waiting + rows
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=f"loopml-shadow-{self.endpoint}", daemon=True)
                self._thread.start()
            elif not waiting or self._rows >= self.max_rows:  # the thread may sleep for a first copy or a full window
                self._cond.notify()

    def close(self, timeout: float | None = 60.0) -> None:
        """Score what waits now (no window), then stop the thread. Blocks: call it off the event loop."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # ------------------------------------------------------------ shadow thread

    def _loop(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while not self._waiting:
                    if self._closing:
                        return
                    cond.wait()
                if self.window:
                    deadline = self._waiting[0].arrived + self.window
                    while self._rows < self.max_rows and not self._closing:
                        left = deadline - time.perf_counter()
                        if left <= 0:
                            break
                        cond.wait(left)
                taken: list[Copy] = []
                rows = 0
                while self._waiting and rows < self.max_rows:
                    copy = self._waiting.popleft()
                    taken.append(copy)
                    rows += copy.rows
                self._rows -= rows
            try:
                if self._ship is None:
                    self.score_copies(taken)
                elif not self._ship(taken):
                    self.dropped += sum(len(c.jobs) for c in taken)
            except Exception:  # the lane must outlive any failure
                log.exception("shadow scoring failed on endpoint %s", self.endpoint)

    def score_copies(self, taken: list[Copy]) -> None:
        """Score and log a window: one model call per shadow version for copies that share shadow versions (a
        policy may change mid-window). The shadow thread's step; a shadow worker runs it in its own process."""
        groups: dict[tuple[int, ...], list[Copy]] = {}
        for copy in taken:
            groups.setdefault(tuple(map(id, copy.shadows)), []).append(copy)
        for copies in groups.values():
            if len(copies) == 1:
                jobs = copies[0].jobs
                t_batch: Any = copies[0].t_batch
                batch_rows: Any = float(copies[0].rows)
            else:
                jobs = list(chain.from_iterable(c.jobs for c in copies))
                counts = [len(c.jobs) for c in copies]
                t_batch = np.repeat(np.array([c.t_batch for c in copies]), counts)
                batch_rows = np.repeat(np.array([c.rows for c in copies], dtype=np.float64), counts)
            # The wait before each request's own batch; its batch's share of the call's time is added per call.
            waited = t_batch - np.fromiter(map(T0, jobs), dtype=np.float64, count=len(jobs))
            served = set(map(SERVED, jobs))
            for model in copies[0].shadows:
                try:
                    self._run(model, jobs, waited, batch_rows, served)
                except Exception:  # a broken shadow (or log) stops only this shadow's call
                    log.exception("shadow %s/%s failed on endpoint %s", model.name, model.version, self.endpoint)

    def _run(self, model: ServedModel, jobs: list[Job], waited: np.ndarray, batch_rows: Any,
             served: set[ServedModel]) -> None:
        names = model.contract.names
        other = [s for s in served if s.contract.names != names]
        if other:  # requests parsed for another feature set cannot go to this shadow
            skip = set(other)
            keep = np.fromiter((j.served not in skip for j in jobs), dtype=bool, count=len(jobs))
            log.warning("shadow %s/%s skipped %d requests on %s: its features %s differ from theirs",
                        model.name, model.version, int(len(jobs) - keep.sum()), self.endpoint, names)
            if not keep.any():
                return
            idx = np.flatnonzero(keep)
            jobs, waited = [jobs[i] for i in idx], waited[idx]
            batch_rows = np.broadcast_to(batch_rows, keep.shape)[idx]
        frames = list(map(FRAME, jobs))
        t = time.perf_counter()
        frame = combine_frames(frames)
        sizes = np.fromiter(map(ROWS, frames), dtype=np.int64, count=len(frames))
        labels: Any = None
        proba = None
        ok = False
        try:
            errors, codes = model.contract.check(frame, np.cumsum(sizes) - sizes)
            if not errors:
                labels, proba = model.predict(frame, codes)
                ok = True
        except Exception:  # noqa: BLE001 - scored again below, request by request, to log who failed
            pass
        sink = self.sink
        if sink is None:
            return
        share = np.minimum(batch_rows / max(int(sizes.sum()), 1), 1.0)  # of the call's time, per request
        if ok and frame.matrix is not None and hasattr(sink, "submit_batch"):
            latency_ms = (waited + (time.perf_counter() - t) * share) * 1000.0
            batch = stacked_batch(
                model, self.shadow_endpoint, request_ids=list(map(REQUEST_ID, jobs)), sizes=sizes,
                ts=np.fromiter(map(TS, jobs), dtype=np.float64, count=len(jobs)), latency_ms=latency_ms,
                matrix=frame.matrix, labels=labels, proba=proba)
            try:
                sink.submit_batch(batch)  # type: ignore[attr-defined]
            except Exception:  # the log must never take the lane down
                log.exception("prediction sink rejected a shadow batch of %d requests", len(jobs))
            return
        # The rarer paths: a request this shadow rejects or a model error (scored again request by request, as the
        # answering model's batch is), non-numeric inputs, or a sink that takes records only.
        results = _split(labels, proba, sizes) if ok else self._score(model, jobs)
        took = time.perf_counter() - t
        copies = [replace(j, served=model) for j in jobs]
        self._log_records(copies, results, endpoint=self.shadow_endpoint,
                          latencies_ms=((waited + took * share) * 1000.0).tolist())


def _split(labels: Any, proba: np.ndarray | None, sizes: np.ndarray) -> list[Result]:
    """One result per request from the outputs of one call (slices, no copies)."""
    if len(sizes) == 1:
        return [Result(labels, proba)]
    ends = np.cumsum(sizes).tolist()
    starts = [0, *ends[:-1]]
    if proba is None:
        return [Result(labels[a:b]) for a, b in zip(starts, ends, strict=True)]
    return [Result(labels[a:b], proba[a:b]) for a, b in zip(starts, ends, strict=True)]
