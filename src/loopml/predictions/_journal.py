"""The write-ahead journal: what the writer has taken off the queue but not yet in Parquet.

A segment is one append-only local file::

    b"LPJS" u32 len  JSON header {"id", "chunk_rows", "created"}
    b"LPJB" u32 crc32 u64 len  Arrow IPC stream (one block per writer pass)
    ...

Blocks go to the OS with one ``write`` each (so a SIGKILL of the process
keeps them) and are fsynced once per flush interval (so a power cut loses at
most one interval). A torn or corrupt tail block is ignored on replay. The
owner holds an exclusive ``flock`` on the segment until it is committed to
Parquet and unlinked; recovery in another process skips locked segments.
"""

from __future__ import annotations

import json
import os
import struct
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process guard
    fcntl = None  # type: ignore[assignment]

__all__ = ["JournalSegment", "lock_segment", "read_segment", "segment_paths"]

_SEG = b"LPJS"
_BLK = b"LPJB"
_BLK_HEAD = struct.Struct("<4sIQ")
_SEG_HEAD = struct.Struct("<4sI")
SUFFIX = ".wal"


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _writev_all(fd: int, head: bytes, payload: pa.Buffer) -> None:
    """Header and payload in one system call when the OS takes it all (the usual case)."""
    n = os.writev(fd, [head, payload])
    if n < len(head):
        _write_all(fd, head[n:])
        n = len(head)
    if n - len(head) < payload.size:
        _write_all(fd, memoryview(payload)[n - len(head):])


def _lock(fd: int, *, block: bool) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


class JournalSegment:
    """One open segment, written by the writer thread only."""

    def __init__(self, folder: Path, *, chunk_rows: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.id = uuid.uuid4().hex
        self.chunk_rows = chunk_rows
        self.path = folder / f"seg-{time.time_ns():020d}-{self.id}{SUFFIX}"
        self.rows = 0
        self.blocks = 0
        self.opened = time.monotonic()
        #: A write failed part-way: the file may hold a partial block (read it back with CRC checks).
        self.torn = False
        self._scratch: pa.Buffer | None = None  # the serialization buffer, reused block after block
        #: In-memory copies of the blocks; None once the segment spilled (disk only).
        self.tables: list[pa.Table] | None = []
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        _lock(self._fd, block=True)
        header = json.dumps({"id": self.id, "chunk_rows": chunk_rows, "created": time.time()}).encode()
        _write_all(self._fd, _SEG_HEAD.pack(_SEG, len(header)) + header)
        self._dirty = True

    def append(self, table: pa.Table) -> int:
        """Write one block (one ``writev`` call); returns its size in bytes.

        The block is serialized once into a buffer of its exact size (measured
        first, which costs no copy) and handed to the OS as is: no growing
        buffer, no bytes copies, so a block costs its size once in memory. The
        buffer is kept for the segment's next block: a fresh one per block cost
        page faults on every block once freed memory went back to the OS.
        """
        mock = pa.MockOutputStream()
        with pa.ipc.new_stream(mock, table.schema) as writer:
            writer.write_table(table)
        size = mock.size()
        if self._scratch is None or self._scratch.size < size:
            self._scratch = pa.allocate_buffer(size)
        with pa.ipc.new_stream(pa.FixedSizeBufferWriter(self._scratch), table.schema) as writer:
            writer.write_table(table)
        payload = self._scratch.slice(0, size)
        head = _BLK_HEAD.pack(_BLK, zlib.crc32(payload), payload.size)
        try:
            _writev_all(self._fd, head, payload)
        except BaseException:
            self.torn = True  # a partial block may sit mid-file now: reading back must check CRCs
            raise
        self.rows += table.num_rows
        self.blocks += 1
        self._dirty = True
        return len(head) + payload.size

    def sync(self) -> None:
        """fsync what was appended since the last sync (one call per flush interval)."""
        if self._dirty:
            os.fsync(self._fd)
            self._dirty = False

    def done_writing(self) -> None:
        """No more blocks: let go of the serialization buffer (the segment waits for its commit)."""
        self._scratch = None

    def discard(self) -> None:
        """The segment is in Parquet now: unlink it, then let go of the lock."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self._scratch = None
        os.close(self._fd)


def segment_paths(folder: Path) -> list[Path]:
    """Segments in the order they were opened."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.startswith("seg-") and p.suffix == SUFFIX)


def lock_segment(path: Path) -> int | None:
    """An fd holding the segment's lock, or None when a live writer still owns it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    if not _lock(fd, block=False):
        os.close(fd)
        return None
    if not path.exists():  # committed and unlinked while we waited
        os.close(fd)
        return None
    return fd


def read_segment(path: Path | BinaryIO, *, verify: bool = True) -> tuple[dict[str, Any], Iterator[pa.Table]]:
    """The header and the intact blocks of a segment (a torn tail is skipped).

    ``path`` may be a file already open for reading (a reader that must keep
    the segment's bytes even if the writer unlinks it meanwhile); it is closed.
    ``verify=False`` skips the CRC check: only for the process that wrote the
    segment and still holds its lock (its blocks were written whole, one
    ``write`` each, by this process). Replay of a segment left by another
    process and readers of live segments always verify.
    """
    fh = open(path, "rb") if isinstance(path, Path) else path  # noqa: SIM115 - closed by the generator
    head = fh.read(_SEG_HEAD.size)
    if len(head) < _SEG_HEAD.size or head[:4] != _SEG:
        fh.close()
        return {}, iter(())
    (_, size) = _SEG_HEAD.unpack(head)
    raw = fh.read(size)
    try:
        header = json.loads(raw)
    except ValueError:
        fh.close()
        return {}, iter(())

    def blocks() -> Iterator[pa.Table]:
        with fh:
            while True:
                head = fh.read(_BLK_HEAD.size)
                if len(head) < _BLK_HEAD.size:
                    return
                magic, crc, size = _BLK_HEAD.unpack(head)
                if magic != _BLK:
                    return
                payload = fh.read(size)
                if len(payload) < size or (verify and zlib.crc32(payload) != crc):
                    return  # torn tail: the process died mid-write
                yield pa.ipc.open_stream(pa.py_buffer(payload)).read_all()

    return header, blocks()
