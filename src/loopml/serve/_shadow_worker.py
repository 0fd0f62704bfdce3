"""The shadow worker: shadow versions score and log their copies in a process of their own.

Why: on the server's shadow thread, a shadow of every request shares the
server's GIL with the event loop and the answering model. Its model call and
log rows (about 13 µs a request in situ, bench/serving/routing/RESULTS.md)
land on the request path's latency even though no response waits for them.
Here the shadow thread (:class:`~loopml.serve._shadow.ShadowLane`) still
collects a window of copies, but then only packs it (one matrix, the request
ids and clocks: about 0.5 µs a request, bench_pack.py) and writes it down a
pipe. The worker (``python -m loopml.serve._shadow_worker``) loads the shadow
versions from the workspace and runs the same ``score_copies`` the thread
would, logging into its own handle on the same prediction log (as
``--workers`` processes do).

- **Started on the first window**, so an endpoint without shadows never starts
  one. If it dies it is started again on a later window (at most once every
  ``restart_after_s``); windows meanwhile are dropped and counted.
- **Bounded**: a worker that falls behind fills its pipe, the shadow thread
  blocks (never the event loop) and the lane's bound drops copies, counted on
  ``/metrics``. It is not niced: its call times are the shadow's latency
  evidence, and a starved worker made a healthy candidate look slow enough to
  be rolled back on latency (at nice 10, in a test on a busy 2-core box, its
  p95 was 55.8 ms against the baseline's 31.1 ms).
- **Latency as if it had answered** is computed as on the thread: the request's
  wait before its batch (``perf_counter``, one clock for every process on the
  machine) plus its share of the worker's call time.
- ``close()`` sends an empty frame; the worker logs what it has, closes its
  log and exits, and the server waits for it (so the rows are in the log); a
  worker that does not exit within ``timeout`` is killed. The worker ignores
  SIGINT and SIGTERM: a Ctrl-C reaches the whole process group, and the server
  ends it in order (its pipe's end does it if the server is killed).

Frames on the pipe: 8 bytes of little-endian length, then a pickle. The first
is the :class:`ShadowWorkerSpec`; the server and the worker are one
installation, so pickle is only a wire format between two trusted processes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from loopml.serve._health import check_health
from loopml.serve._jobs import FRAME, REQUEST_ID, ROWS, T0, TS, Job
from loopml.serve._records import PredictionSink
from loopml.serve._router import ServedModel
from loopml.serve._shadow import Copy, ShadowLane
from loopml.serve._validation import Frame

__all__ = ["ShadowWorker", "ShadowWorkerSpec"]

log = logging.getLogger("loopml.serve")

_HEADER = struct.Struct("<Q")


@dataclass(frozen=True)
class ShadowWorkerSpec:
    """What the worker needs to stand in for an endpoint's shadow thread; must pickle.

    ``load(model, version)`` returns a ``LoadedModel`` (the endpoint's router loads with the same);
    ``open_sink()`` opens the prediction log the server writes to.
    """

    endpoint: str
    shadow_endpoint: str
    load: Callable[[str, int], Any]
    open_sink: Callable[[], PredictionSink]


class ShadowWorker:
    """The server's handle on one endpoint's worker process; ``ship`` is called from the shadow thread only."""

    def __init__(self, spec: ShadowWorkerSpec, *, restart_after_s: float = 5.0) -> None:
        self.spec = spec
        self.restart_after_s = restart_after_s
        self.starts = 0
        self._spec_frame = pickle.dumps(spec, protocol=5)  # raises here, in the server, if it cannot cross
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_at = -float("inf")
        self._closed = False

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def ship(self, copies: list[Copy]) -> bool:
        """Hand a window to the worker (blocks while its pipe is full); ``False`` if no worker could take it."""
        proc = self._running()
        if proc is None:
            return False
        try:
            _write(proc.stdin, pickle.dumps(_pack(copies), protocol=5))  # type: ignore[arg-type]
        except (OSError, ValueError):  # it died while we wrote
            log.error("shadow worker of endpoint %s (pid %d) stopped taking windows", self.spec.endpoint, proc.pid)
            return False
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Let the worker log what it has and exit; wait for it (blocks), killing it after ``timeout``."""
        self._closed = True  # a window the shadow thread still ships (it outlived its join) starts no new worker
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # A hung worker leaves its pipe full, and a write to it would block: the kill unblocks it.
        watchdog = threading.Timer(timeout, self._kill, (proc, timeout))
        watchdog.start()
        try:
            with contextlib.suppress(OSError, ValueError):
                _write(proc.stdin, b"")  # type: ignore[arg-type]
                proc.stdin.close()  # type: ignore[union-attr]
            proc.wait()
        finally:
            watchdog.cancel()

    def _kill(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        log.error("shadow worker of endpoint %s did not exit in %.0f s; killed", self.spec.endpoint, timeout)
        proc.kill()

    def _running(self) -> subprocess.Popen[bytes] | None:
        proc = self._proc
        if proc is not None:
            code = proc.poll()
            if code is None:
                return proc
            log.error("shadow worker of endpoint %s exited with status %s", self.spec.endpoint, code)
            self._proc = None
        now = time.monotonic()
        if self._closed or now - self._started_at < self.restart_after_s:
            return None
        self._started_at = now
        env = dict(os.environ)  # the worker imports what the server imports (a path added at run time too)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (*sys.path, env.get("PYTHONPATH", "")) if p)
        proc = subprocess.Popen([sys.executable, "-m", "loopml.serve._shadow_worker"], stdin=subprocess.PIPE,
                                env=env, close_fds=True)
        try:
            _write(proc.stdin, self._spec_frame)  # type: ignore[arg-type]
        except (OSError, ValueError):
            log.error("shadow worker of endpoint %s exited at start", self.spec.endpoint)
            return None
        self._proc = proc
        self.starts += 1
        return proc


# ------------------------------------------------------------------ the pipe


def _write(pipe: IO[bytes], data: bytes) -> None:
    pipe.write(_HEADER.pack(len(data)))
    if data:
        pipe.write(data)
    pipe.flush()


def _read(pipe: IO[bytes]) -> bytes:
    """The next frame; empty at the end (a close frame, or the server gone)."""
    head = pipe.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return b""
    (size,) = _HEADER.unpack(head)
    data = pipe.read(size) if size else b""
    return data if len(data) == size else b""


def _pack(copies: list[Copy]) -> dict[str, Any]:
    """A window as plain arrays: every job's rows in one matrix when they share a width (the usual case)."""
    jobs = [j for c in copies for j in c.jobs]
    frames = list(map(FRAME, jobs))
    matrix = None
    if all(f.matrix is not None for f in frames) and len({f.matrix.shape[1] for f in frames}) == 1:
        matrix = frames[0].matrix if len(frames) == 1 else np.concatenate([f.matrix for f in frames])
    names: dict[tuple[str, int], list[str]] = {}
    heads = []
    for c in copies:
        served = c.jobs[0].served  # a batch is one version (MicroBatcher._fill)
        key = (served.name, served.version)
        names.setdefault(key, served.contract.names)
        heads.append((tuple((m.name, m.version) for m in c.shadows), c.t_batch, c.rows, len(c.jobs), key))
    return {
        "copies": heads, "names": names, "request_ids": list(map(REQUEST_ID, jobs)),
        "t0": np.fromiter(map(T0, jobs), dtype=np.float64, count=len(jobs)),
        "ts": np.fromiter(map(TS, jobs), dtype=np.float64, count=len(jobs)),
        "sizes": np.fromiter(map(ROWS, frames), dtype=np.int64, count=len(frames)),
        "matrix": matrix, "frames": None if matrix is not None else frames,
    }


# ------------------------------------------------------------------ the worker process


class _Answered:
    """The version that answered a copy, as the lane reads it: its feature names (``served.contract.names``)."""

    __slots__ = ("contract", "name", "names", "version")

    def __init__(self, key: tuple[str, int], names: list[str]) -> None:
        self.name, self.version = key
        self.names = names
        self.contract = self


class _Models:
    """The shadow versions, loaded on first use; a version that fails to load is tried again after a minute.

    Each is warmed up on a few rows synthesised from its contract before it scores a window: in a fresh process
    the first call pays for lazy imports and first-touch memory, and that time would land on the first window's
    latencies (the rollout's latency evidence) as if the candidate were slow.
    """

    def __init__(self, load: Callable[[str, int], Any]) -> None:
        self._load = load
        self._loaded: dict[tuple[str, int], ServedModel] = {}
        self._failed: dict[tuple[str, int], float] = {}

    def get(self, key: tuple[str, int]) -> ServedModel | None:
        served = self._loaded.get(key)
        if served is not None:
            return served
        if time.monotonic() - self._failed.get(key, -float("inf")) < 60.0:
            return None
        try:
            served = ServedModel(self._load(*key))
        except Exception:
            log.exception("shadow worker: could not load %s/%s; its copies are not scored", *key)
            self._failed[key] = time.monotonic()
            return None
        check_health(served)  # the warm-up; never raises (a failing version logs its errors per request)
        self._loaded[key] = served
        return served


def _unpack(window: dict[str, Any], models: _Models) -> list[Copy]:
    sizes = window["sizes"].tolist()
    frames: list[Frame] = window["frames"]
    if frames is None:
        matrix, frames, start = window["matrix"], [], 0
        for n in sizes:
            frames.append(Frame(n, matrix=matrix[start:start + n]))
            start += n
    answered = {key: _Answered(key, names) for key, names in window["names"].items()}
    rids, t0, ts = window["request_ids"], window["t0"].tolist(), window["ts"].tolist()
    copies, i = [], 0
    for shadow_keys, t_batch, rows, count, key in window["copies"]:
        by = answered[key]
        jobs = [Job(by, frames[k], rids[k], t0[k], ts[k], None)  # type: ignore[arg-type]
                for k in range(i, i + count)]
        i += count
        shadows = tuple(m for m in map(models.get, shadow_keys) if m is not None)
        if shadows:
            copies.append(Copy(shadows, jobs, t_batch, rows, 0.0))
    return copies


def main() -> int:
    """The worker: read the spec, then score and log windows until an empty frame or the end of the pipe."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s shadow worker: %(message)s")
    stream = sys.stdin.buffer
    first = _read(stream)
    if not first:
        return 2
    spec: ShadowWorkerSpec = pickle.loads(first)
    # The server ends the worker (an empty frame, or the pipe's end if it dies): a Ctrl-C or SIGTERM to the whole
    # process group must not cut a window or the log's last segment short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from loopml.serve._batcher import MicroBatcher  # its scoring and record logging, as the thread uses them

    sink = spec.open_sink()
    scorer = MicroBatcher(spec.endpoint, max_batch_size=1, max_batch_wait_ms=0, max_queue=1, sink=sink)
    lane = ShadowLane(spec.endpoint, shadow_endpoint=spec.shadow_endpoint, score=scorer._score,
                      log_records=scorer._log, sink=sink)
    models = _Models(spec.load)
    try:
        while data := _read(stream):
            try:
                lane.score_copies(_unpack(pickle.loads(data), models))
            except Exception:  # one bad window must not end the shadow
                log.exception("shadow worker of endpoint %s: a window failed", spec.endpoint)
    finally:
        sink.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
