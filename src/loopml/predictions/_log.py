"""The prediction log writer: a deque on the request path, two threads behind it.

``submit`` appends the caller's object to a deque and returns: no copy, no
serialization, no lock. The *journal thread* wakes every ``flush_interval_s``
(or as soon as a block's worth of serving batches is queued), drains the deque,
turns it into Arrow (serving's columnar batches merged, one Arrow call per
column), appends blocks of at most ``_BLOCK_ROWS`` rows to the write-ahead
journal (local disk) and fsyncs once per interval. Every ``roll_interval_s`` it closes the
journal segment and hands it to the *commit thread*, which writes it as
hive-partitioned Parquet (fsync + atomic rename) and only then deletes it.

Memory holds at most ``max_buffer_rows`` converted rows waiting for Parquet;
beyond that a segment lives only on disk (it *spills*) and is read back when
committed, so a slow destination costs disk, never dropped or blocked requests.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import queue
import signal
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from loopml.kernel.exceptions import ServingError, ValidationError
from loopml.predictions._files import PartitionedWriter, resolve_root
from loopml.predictions._journal import JournalSegment, lock_segment, read_segment, segment_paths
from loopml.predictions._schema import _is_columnar, _signature, fallback_table, merge_columnar, records_to_table

__all__ = ["PredictionLog", "close_all_logs", "install_sigterm_handler", "open_prediction_log"]

log = logging.getLogger("loopml.predictions")

_OPEN: weakref.WeakSet[PredictionLog] = weakref.WeakSet()
_ATEXIT_DONE = False
_ATEXIT_LOCK = threading.Lock()


class PredictionLog:
    """Append-only, partitioned Parquet log of predictions; a ``PredictionSink``.

    Args:
        root: the log folder (or ``file://`` URL).
        flush_interval_s: journal cadence; a SIGKILL loses at most this much.
        roll_interval_s: Parquet cadence; rows become queryable within it.
        max_buffer_rows: converted rows kept in memory before spilling to disk.
        chunk_rows: most rows per Parquet file written from one segment.
        spill_dir: the journal/spill folder (local disk); default ``<root>/_journal``.
        recover: replay journal segments left by a process that died.
    """

    def __init__(
        self,
        root: Any,
        *,
        flush_interval_s: float = 1.0,
        roll_interval_s: float = 10.0,
        max_buffer_rows: int = 16_384,
        chunk_rows: int = 500_000,
        spill_dir: str | Path | None = None,
        recover: bool = True,
    ) -> None:
        for name, value in (("flush_interval_s", flush_interval_s), ("roll_interval_s", roll_interval_s)):
            if not value > 0:
                raise ValidationError(f"{name} must be > 0, got {value!r}", field=name, rule="positive")
        for name, value in (("max_buffer_rows", max_buffer_rows), ("chunk_rows", chunk_rows)):
            if not (isinstance(value, int) and value >= 1):
                raise ValidationError(f"{name} must be an integer >= 1, got {value!r}", field=name, rule="positive")
        self.root = resolve_root(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.journal_dir = Path(spill_dir) if spill_dir else self.root / "_journal"
        self.flush_interval_s = float(flush_interval_s)
        self.roll_interval_s = float(roll_interval_s)
        self.max_buffer_rows = max_buffer_rows
        self.chunk_rows = chunk_rows
        self._queue: deque[Any] = deque()
        self._first_at = 0.0
        self._kick_items = max(1024, max_buffer_rows // 4)
        self._queued_rows = 0  # rows of columnar batches since the last drain (a wake-up hint, not exact)
        self._synced_at = time.monotonic()
        self._wake = threading.Event()
        self._stopping = False
        self._closed = False
        self._jlock = threading.Lock()  # one journal pass at a time (thread vs flush())
        self._mlock = threading.Lock()  # memory accounting
        self._segment: JournalSegment | None = None
        self._commits: queue.Queue[JournalSegment | Path | None] = queue.Queue()
        self._mem_rows = 0
        self._stats = {"journaled_rows": 0, "committed_rows": 0, "spilled_rows": 0,
                       "recovered_rows": 0, "segments": 0, "errors": 0}
        if recover:
            for path in segment_paths(self.journal_dir):
                self._commits.put(path)
        self._journal_thread = threading.Thread(target=self._run_journal, name="loopml-predlog-journal", daemon=True)
        self._commit_thread = threading.Thread(target=self._run_commits, name="loopml-predlog-commit", daemon=True)
        self._journal_thread.start()
        self._commit_thread.start()
        _track(self)

    # ------------------------------------------------------------ request path

    def submit(self, records: Any) -> None:
        """Queue records (a list of records, one record, or a columnar dict); never blocks.

        The object is kept as is until the journal thread converts it, so the
        caller must not mutate it afterwards.
        """
        if self._closed:
            raise ServingError(f"prediction log at {self.root} is closed; records were not logged")
        q = self._queue
        if not q:
            self._first_at = time.monotonic()
        q.append(records)
        if len(q) > self._kick_items:  # a burst: convert now rather than at the next tick
            self._wake.set()

    def submit_batch(self, batch: Mapping[str, Any]) -> None:
        """Queue one columnar batch (serving's ``PredictionBatch``); never blocks.

        Same as :meth:`submit`; serving calls this name when a sink offers it, so
        it hands over a model batch in columns instead of a record per request.
        Past one journal block of queued rows the journal thread starts at once,
        so the queue holds about one block, not a flush interval of heavy traffic.
        """
        self.submit(batch)
        self._queued_rows += len(batch["request_id"])
        if self._queued_rows >= _BLOCK_ROWS:
            self._wake.set()

    # --------------------------------------------------------------- control

    def flush(self) -> None:
        """Make everything submitted so far durable *and* queryable (blocks until done)."""
        with self._jlock:
            self._journal_pending()
            self._rotate()
        self._commits.join()

    def close(self) -> None:
        """Drain the queue into Parquet and stop the threads (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        self._wake.set()
        self._journal_thread.join()
        self._commit_thread.join()
        _OPEN.discard(self)

    def reopener(self) -> Callable[[], PredictionLog]:
        """Opens this log again in another process (serving's shadow worker); picklable.

        The new handle writes its own journal segments, as each ``--workers`` process does, and does not
        replay this one's (``recover=False``): those are this process's to commit.
        """
        return functools.partial(
            PredictionLog, str(self.root), flush_interval_s=self.flush_interval_s, roll_interval_s=self.roll_interval_s,
            max_buffer_rows=self.max_buffer_rows, chunk_rows=self.chunk_rows, spill_dir=str(self.journal_dir),
            recover=False)

    def record_feedback(self, endpoint: str, labels: Any) -> Any:
        """Store true labels for ``endpoint`` beside this log (the server's ``POST .../feedback``).

        Same as :func:`loopml.predictions.record_feedback` on this log's folder; returns its ``FeedbackResult``.
        """
        from loopml.predictions._feedback import record_feedback

        return record_feedback(self.root, endpoint, labels)

    def lag_seconds(self) -> float:
        """Age of the oldest record not yet in the journal (serving shows it on /metrics)."""
        return max(0.0, time.monotonic() - self._first_at) if self._queue else 0.0

    def stats(self) -> dict[str, int]:
        """Counters: rows journaled, committed, spilled, recovered; segments; errors."""
        with self._mlock:
            return {**self._stats, "queued_items": len(self._queue), "memory_rows": self._mem_rows}

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ journal side

    def _run_journal(self) -> None:
        while True:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            final = self._stopping
            with self._jlock:
                self._journal_pending()
                seg = self._segment
                if seg is not None and (
                    final or seg.rows >= self.chunk_rows or time.monotonic() - seg.opened >= self.roll_interval_s
                ):
                    self._rotate()
                if final:
                    if self._segment is not None:  # opened but never written
                        self._segment.discard()
                        self._segment = None
                    self._commits.put(None)
                    return

    def _drain(self) -> list[Any]:
        self._queued_rows = 0
        items: list[Any] = []
        q = self._queue
        while True:
            try:
                items.append(q.popleft())
            except IndexError:
                return items

    def _journal_pending(self) -> None:
        items = self._drain()
        if not items:
            if self._segment is not None:
                self._segment.sync()
                self._synced_at = time.monotonic()
            return
        tables = list(self._convert(items))
        if not tables:
            return
        blocks = [part for table in _combine(tables) for part in _split(table, _BLOCK_ROWS)]
        done = 0
        try:
            if self._segment is None:
                self._segment = JournalSegment(self.journal_dir, chunk_rows=self.chunk_rows)
            seg = self._segment
            for table in blocks:
                seg.append(table)
                self._keep(seg, table)
                done += 1
                self._stats["journaled_rows"] += table.num_rows
            # Early passes (a full block queued) write at once but fsync once per flush interval:
            # the OS has the bytes (a SIGKILL loses none); a power cut loses at most the interval.
            if self._stopping or time.monotonic() - self._synced_at >= self.flush_interval_s:
                seg.sync()
                self._synced_at = time.monotonic()
            give_back_memory()
        except OSError:
            # Disk trouble: keep the unwritten rows queued (converted) and retry next tick.
            log.exception("prediction log: cannot write the journal in %s", self.journal_dir)
            self._stats["errors"] += 1
            for table in reversed(blocks[done:]):
                self._queue.appendleft(table)

    def _convert(self, items: list[Any]) -> Iterator[pa.Table]:
        """Arrow tables for the drained items: all record lists as one, columnar batches merged by shape.

        Serving hands over one columnar batch per model call; merging a pass's
        batches first makes the conversion one Arrow call per column per pass.
        """
        run: list[Any] = []
        groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
        for item in items:
            if isinstance(item, pa.Table):  # put back after a failed journal write
                yield item
            elif _is_columnar(item):
                try:
                    key = _signature(item)
                except Exception:  # an odd batch converts on its own (and falls back to JSON if it must)
                    yield from self._convert_one(item)
                    continue
                groups.setdefault(key, []).append(item)
            elif isinstance(item, (list, tuple)):
                run.extend(item)
            elif isinstance(item, Mapping) or item is not None:
                run.append(item)
        for batches in groups.values():
            for chunk in _by_rows(batches, _BLOCK_ROWS):  # bounded: a pass's copies are one block at a time
                try:
                    merged: list[Any] = [merge_columnar(chunk)]
                except Exception:  # shapes differ after all: one table per batch
                    merged = list(chunk)
                for batch in merged:
                    yield from self._convert_one(batch)
        yield from self._convert_one(run)

    def _convert_one(self, item: Any) -> Iterator[pa.Table]:
        if isinstance(item, list) and not item:
            return
        try:
            table = records_to_table(item)
        except Exception:  # a malformed record must not cost the batch: keep it as JSON
            log.warning("prediction log: a batch did not convert; storing it as JSON", exc_info=True)
            self._stats["errors"] += 1
            try:
                table = fallback_table(item)
            except Exception:
                log.exception("prediction log: dropping a batch that cannot be serialized at all")
                return
        if table is not None and table.num_rows:
            yield table

    def _keep(self, seg: JournalSegment, table: pa.Table) -> None:
        """Keep the block in memory while under the bound; past it, the segment spills."""
        with self._mlock:
            if seg.tables is not None and self._mem_rows + table.num_rows <= self.max_buffer_rows:
                seg.tables.append(table)
                self._mem_rows += table.num_rows
                return
            if seg.tables is not None:
                held = sum(t.num_rows for t in seg.tables)
                self._mem_rows -= held
                self._stats["spilled_rows"] += held
                seg.tables = None
            self._stats["spilled_rows"] += table.num_rows

    def _rotate(self) -> None:
        seg = self._segment
        if seg is None or seg.blocks == 0:
            return
        seg.sync()
        seg.done_writing()
        self._segment = None
        self._stats["segments"] += 1
        self._commits.put(seg)

    # ------------------------------------------------------------- commit side

    def _run_commits(self) -> None:
        while True:
            item = self._commits.get()
            try:
                if item is None:
                    return
                if isinstance(item, Path):
                    self._recover(item)
                else:
                    self._commit(item)
            except Exception:
                # The segment stays on disk; the next open of the log replays it.
                log.exception("prediction log: commit to %s failed; the journal keeps the rows", self.root)
                self._stats["errors"] += 1
            finally:
                self._commits.task_done()

    def _commit(self, seg: JournalSegment) -> None:
        tables = seg.tables

        def blocks() -> Iterable[pa.Table]:  # a fresh iterator per attempt: a retry reads the journal again
            # This process wrote the segment whole and still holds its lock: no CRC pass over bytes it
            # wrote itself (the check guards replay after a crash, which `_recover` still does, and a
            # segment where a write failed part-way).
            return tables if tables is not None else read_segment(seg.path, verify=seg.torn)[1]

        rows = _retry(lambda: commit_blocks(self.root, seg.id, seg.chunk_rows, blocks()))
        with self._mlock:
            if tables is not None:
                self._mem_rows -= sum(t.num_rows for t in tables)
            seg.tables = None
            self._stats["committed_rows"] += rows
        seg.discard()
        del tables
        give_back_memory()

    def _recover(self, path: Path) -> None:
        fd = lock_segment(path)
        if fd is None:  # a live writer owns it, or it is gone already
            return
        try:
            header, blocks = read_segment(path)
            rows = 0
            if header:
                rows = commit_blocks(self.root, header["id"], int(header.get("chunk_rows", self.chunk_rows)), blocks)
            os.unlink(path)
            with self._mlock:
                self._stats["recovered_rows"] += rows
                self._stats["committed_rows"] += rows
            if rows:
                log.info("prediction log: recovered %d rows from %s", rows, path.name)
        finally:
            os.close(fd)


#: Most rows per journal block: what a commit or a query holds in memory at once while
#: reading the journal back (about 6 MB with 30 float features).
_BLOCK_ROWS = 16_384


def _load_trim() -> Any:
    try:
        import ctypes
        import ctypes.util

        name = ctypes.util.find_library("c")
        trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return None
    if trim is not None:
        trim.argtypes = [ctypes.c_size_t]
    return trim


_MALLOC_TRIM = _load_trim() if sys.platform.startswith("linux") else None


def give_back_memory() -> None:
    """Return the pages a journal pass or a commit freed to the OS.

    Why: each pass allocates and frees a block's worth of arrays on the writer's
    threads; Arrow's allocator and glibc's per-thread arenas keep freed pages
    for reuse, so the server's resident memory would follow its busiest second
    rather than its current traffic (about 100 MB at 50k rows/s, measured).
    """
    pa.default_memory_pool().release_unused()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _by_rows(batches: list[Mapping[str, Any]], rows: int) -> Iterator[list[Mapping[str, Any]]]:
    """Consecutive runs of columnar batches holding about ``rows`` rows each."""
    run: list[Mapping[str, Any]] = []
    n = 0
    for batch in batches:
        run.append(batch)
        n += len(batch["request_id"])
        if n >= rows:
            yield run
            run, n = [], 0
    if run:
        yield run


def _split(table: pa.Table, rows: int) -> list[pa.Table]:
    """Zero-copy slices of at most ``rows`` rows."""
    if table.num_rows <= rows:
        return [table]
    return [table.slice(a, rows) for a in range(0, table.num_rows, rows)]


def _combine(tables: list[pa.Table]) -> list[pa.Table]:
    """One block per pass when the schemas agree (or promote); otherwise one per table."""
    if len(tables) == 1:
        return tables
    try:
        return [pa.concat_tables(tables, promote_options="permissive")]
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return tables


def commit_blocks(root: Path, stem: str, chunk_rows: int, blocks: Iterable[pa.Table]) -> int:
    """Write journal blocks as Parquet, at most ``chunk_rows`` per file; idempotent per segment.

    Streams: memory holds one block plus a row group per partition, never the
    segment. File names derive from the segment id and the block order only,
    so a replay after a crash mid-commit skips what was written and writes the rest.
    """
    writer = PartitionedWriter(root, stem, chunk_rows=chunk_rows)
    try:
        for table in blocks:
            writer.write(table)
        return writer.close()
    except BaseException:
        writer.abort()
        raise


def _retry(fn: Any, attempts: int = 3) -> Any:
    delay = 0.25
    for i in range(attempts):
        try:
            return fn()
        except OSError:
            if i == attempts - 1:
                raise
            time.sleep(delay)
            delay *= 4
    return None  # pragma: no cover


def open_prediction_log(ws: Any, **options: Any) -> PredictionLog:
    """The workspace's log (``settings.resolved_predictions_url``, serve flush interval)."""
    options.setdefault("flush_interval_s", ws.settings.serve.log_flush_interval_s)
    return PredictionLog(ws.settings.resolved_predictions_url, **options)


# ------------------------------------------------------------ process exit


def _track(plog: PredictionLog) -> None:
    global _ATEXIT_DONE
    with _ATEXIT_LOCK:
        _OPEN.add(plog)
        if not _ATEXIT_DONE:
            atexit.register(close_all_logs)
            _ATEXIT_DONE = True


def close_all_logs() -> None:
    """Close every open log in this process (atexit and the SIGTERM handler call this)."""
    for plog in list(_OPEN):
        try:
            plog.close()
        except Exception:  # one broken log must not stop the others from flushing
            log.exception("prediction log: close failed for %s", plog.root)


def install_sigterm_handler() -> bool:
    """On SIGTERM, close every open log, then do what SIGTERM did before.

    Servers with their own graceful shutdown (uvicorn) call ``close()``
    instead. Only possible from the main thread; returns whether installed.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    previous = signal.getsignal(signal.SIGTERM)

    def _on_term(signum: int, frame: Any) -> None:
        close_all_logs()
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_IGN:
            return
        else:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, _on_term)
    return True
