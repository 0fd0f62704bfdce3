"""Starting, logging to and ending runs, with a small write-behind buffer per run.

Why a buffer: one transaction per metric point costs ~0.1-1 ms even on SQLite
in WAL mode; appending to a list costs ~1 µs. Params, metric points, tags and
artifact rows are kept in memory and written in one transaction when

- ``flush_max_points`` points are pending (size),
- the oldest pending item is ``flush_interval_s`` old (time: checked on every
  log call and by one daemon thread per process, so an idle run flushes too),
- the run ends, a read in this process needs the data, or the interpreter exits.

So a hard crash (SIGKILL, power loss of the process) loses at most what was
logged during the last flush interval; ``flush_interval_s=0`` writes every
call synchronously. Run start and end are never buffered: both are written and
audited (``run.start``, ``run.end``) before the call returns.
"""

from __future__ import annotations

import atexit
import contextvars
import math
import mimetypes
import operator
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from loopml.kernel.exceptions import NotFoundError, ValidationError
from loopml.kernel.types import check_name, new_id, utcnow
from loopml.tracking._git import git_info
from loopml.tracking._records import ArtifactRef
from loopml.tracking._write import (
    INSERT_RUN,
    Point,
    append_audit,
    execute,
    link,
    run_exists,
    write_connection,
    write_pending,
)

if TYPE_CHECKING:
    from loopml.tracking._records import RunRecord
    from loopml.workspace import Workspace

__all__ = [
    "FLUSH_INTERVAL_S",
    "FLUSH_MAX_POINTS",
    "ActiveRun",
    "active_run",
    "flush_all",
    "log_batch",
    "start_run",
]

#: Default upper bound, in seconds, on what a crash can lose.
FLUSH_INTERVAL_S = 1.0
#: Default number of pending metric points that triggers a flush.
FLUSH_MAX_POINTS = 1000

KINDS = ("manual", "pipeline", "step", "train", "trial", "evaluate", "search")
END_STATUSES = ("succeeded", "failed", "cached", "skipped")
_MAX_KEY = 250
_MAX_ERROR = 10_000

_ACTIVE: set[ActiveRun] = set()
_ACTIVE_LOCK = threading.Lock()
_FLUSHER: threading.Thread | None = None
_FLUSHER_TICK_S = 0.2
_ATEXIT_REGISTERED = False
_STACK: contextvars.ContextVar[tuple[ActiveRun, ...]] = contextvars.ContextVar("loopml_runs", default=())


def _bad_key(key: Any, what: str) -> ValidationError:
    return ValidationError(
        f"{what} key {key!r} is invalid: use a non-empty string of at most {_MAX_KEY} characters",
        field=what, rule="key",
    )


class ActiveRun:
    """A run being logged to; use it as a context manager (see :func:`start_run`)."""

    def __init__(
        self,
        ws: Workspace,
        run_id: str,
        name: str,
        experiment: str,
        kind: str,
        parent_id: str | None,
        *,
        flush_interval_s: float = FLUSH_INTERVAL_S,
        flush_max_points: int = FLUSH_MAX_POINTS,
    ) -> None:
        self.ws = ws
        self.id = run_id
        self.name = name
        self.experiment = experiment
        self.kind = kind
        self.parent_id = parent_id
        self.status = "running"
        self.flush_interval_s = flush_interval_s
        self.flush_max_points = max(1, flush_max_points)
        self._lock = threading.Lock()  # guards the buffers below
        self._flush_lock = threading.Lock()  # one flush of this run at a time
        self._points: list[Point] = []
        self._params: dict[str, str] = {}
        self._tags: dict[str, str] = {}
        self._artifacts: dict[str, ArtifactRef] = {}
        self._logged_params: dict[str, str] = {}
        self._pending_since: float | None = None
        self._ended = False
        self._tokens: list[contextvars.Token[tuple[ActiveRun, ...]]] = []
        self.last_flush_error: BaseException | None = None

    def __repr__(self) -> str:
        return f"ActiveRun(id={self.id!r}, name={self.name!r}, status={self.status!r})"

    # ------------------------------------------------------------ context manager
    def __enter__(self) -> ActiveRun:
        self._tokens.append(_STACK.set((*_STACK.get(), self)))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if self._tokens:
            _STACK.reset(self._tokens.pop())
        if exc is None:
            self.end("succeeded")
        else:
            self.end("failed", error=f"{type(exc).__name__}: {exc}")
        return False

    # ------------------------------------------------------------ logging
    def _check_open(self) -> None:
        if self._ended:
            raise ValidationError(
                f"run {self.id} has already ended ({self.status}); start a new run to log more",
                field="run", rule="active",
            )

    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        """Record one point of ``key`` (buffered; see the module docstring for when it is written)."""
        if self._ended:
            self._check_open()
        if type(key) is not str or not 0 < len(key) <= _MAX_KEY:
            raise _bad_key(key, "metric")
        point = (key, _as_value(key, value), _as_step(step), time.time())
        with self._lock:
            self._points.append(point)
            n = len(self._points)
            if self._pending_since is None:
                self._pending_since = time.monotonic()
                since = self._pending_since
            else:
                since = self._pending_since
        if n >= self.flush_max_points or time.monotonic() - since >= self.flush_interval_s:
            self.flush()

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Record several metrics at the same step."""
        self._check_open()
        step = _as_step(step)
        ts = time.time()
        points: list[Point] = []
        for key, value in metrics.items():
            if type(key) is not str or not 0 < len(key) <= _MAX_KEY:
                raise _bad_key(key, "metric")
            points.append((key, _as_value(key, value), step, ts))
        with self._lock:
            self._points.extend(points)
            n = len(self._points)
            if self._pending_since is None:
                self._pending_since = time.monotonic()
            since = self._pending_since
        if n >= self.flush_max_points or time.monotonic() - since >= self.flush_interval_s:
            self.flush()

    def log_param(self, key: str, value: Any) -> None:
        """Record one parameter; params are write-once (same value again is a no-op)."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record parameters (stored as strings).

        Raises:
            ValidationError: a key is invalid, or a param already logged in this run
                gets a different value.
        """
        self._check_open()
        clean: dict[str, str] = {}
        for key, value in params.items():
            if type(key) is not str or not 0 < len(key) <= _MAX_KEY:
                raise _bad_key(key, "param")
            text = _param_text(value)
            old = self._logged_params.get(key, clean.get(key))
            if old is not None and old != text:
                raise ValidationError(
                    f"param {key!r} of run {self.id} is already {old!r}; params are write-once, "
                    f"cannot change it to {text!r}",
                    field=key, rule="immutable",
                )
            clean[key] = text
        self._buffer(params=clean)

    def set_tag(self, key: str, value: Any) -> None:
        """Set one tag (tags, unlike params, may change)."""
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set several tags at once."""
        self._check_open()
        self._buffer(tags=_clean_tags(tags))

    def log_artifact(
        self, name: str, data: bytes | str | os.PathLike[str], media_type: str | None = None
    ) -> str:
        """Store ``data`` in the artifact store and attach it to the run as ``name``.

        ``bytes`` are stored as is, a ``str`` is stored as UTF-8 *text*, and an
        ``os.PathLike`` (e.g. ``pathlib.Path``) is read as a file. Returns the sha256 digest;
        logging the same name again points it at the new content.
        """
        self._check_open()
        name = _check_artifact_name(name)
        store = self.ws.artifacts
        if isinstance(data, bytes):
            info = store.put_bytes(data, media_type=media_type or "application/octet-stream")
        elif isinstance(data, str):
            info = store.put_bytes(data.encode(), media_type=media_type or "text/plain; charset=utf-8")
        elif isinstance(data, os.PathLike):
            path = Path(data)
            if not path.is_file():
                raise ValidationError(
                    f"artifact {name!r}: {path} is not a file", field="data", rule="file"
                )
            guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            info = store.put_file(path, media_type=media_type or guessed)
        else:
            raise ValidationError(
                f"artifact {name!r}: data must be bytes, str or a path, got {type(data).__name__}",
                field="data", rule="type",
            )
        ref = ArtifactRef(name=name, digest=info.digest, size=info.size, media_type=info.media_type)
        self._buffer(artifacts={name: ref})
        return info.digest

    def attach_artifacts(self, refs: Iterable[ArtifactRef]) -> None:
        """Attach artifacts that are already in the artifact store, by digest (no bytes are read).

        Buffered like params: written with the next flush, at the latest in the same
        transaction as :meth:`end`, so an ended run always lists them.
        """
        self._check_open()
        arts = {_check_artifact_name(r.name): r for r in refs}
        if arts:
            self._buffer(artifacts=arts)

    def _buffer(
        self,
        *,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        artifacts: dict[str, ArtifactRef] | None = None,
    ) -> None:
        with self._lock:
            if params:
                self._params.update(params)
                self._logged_params.update(params)
            if tags:
                self._tags.update(tags)
            if artifacts:
                self._artifacts.update(artifacts)
            if self._pending_since is None:
                self._pending_since = time.monotonic()
            since = self._pending_since
        if time.monotonic() - since >= self.flush_interval_s:
            self.flush()

    # ------------------------------------------------------------ writing
    @property
    def pending(self) -> bool:
        """Whether anything logged is not yet in the metadata store."""
        return self._pending_since is not None

    def flush(self, *, _finish: dict[str, Any] | None = None) -> None:
        """Write everything buffered in one transaction (and, when ending, the end state)."""
        with self._flush_lock:
            with self._lock:
                points, self._points = self._points, []
                params, self._params = self._params, {}
                tags, self._tags = self._tags, {}
                arts, self._artifacts = self._artifacts, {}
                self._pending_since = None
            if not (points or params or tags or arts or _finish):
                return
            try:
                with write_connection(self.ws.store) as conn:
                    write_pending(
                        conn, self.id, params=params, points=points, tags=tags,
                        artifacts=arts.values(), finish=_finish,
                    )
                    if _finish is not None:
                        append_audit(
                            conn, self.ws.actor, "run.end", "run", self.id,
                            before={"status": "running"},
                            after={"status": _finish["status"], "error": _finish["error"]},
                        )
            except BaseException as exc:
                # Keep what could not be written: the next flush retries it, in order.
                with self._lock:
                    self._points[:0] = points
                    self._params = {**params, **self._params}
                    self._tags = {**tags, **self._tags}
                    self._artifacts = {**arts, **self._artifacts}
                    if self._pending_since is None and (points or params or tags or arts):
                        self._pending_since = time.monotonic()
                self.last_flush_error = exc
                raise
            self.last_flush_error = None

    def end(self, status: str = "succeeded", error: str | None = None) -> None:
        """Flush, then record the end state and audit ``run.end`` (idempotent once ended).

        Raises:
            ValidationError: ``status`` is not one of succeeded, failed, cached, skipped.
        """
        if self._ended:
            return
        if status not in END_STATUSES:
            raise ValidationError(
                f"run status {status!r} is invalid: use one of {', '.join(END_STATUSES)}",
                field="status", rule="choice",
            )
        if error is not None:
            error = str(error)[:_MAX_ERROR]
        self.flush(_finish={"status": status, "error": error, "ended_at": utcnow()})
        self._ended = True
        self.status = status
        with _ACTIVE_LOCK:
            _ACTIVE.discard(self)

    def record(self) -> RunRecord:
        """The run as stored now (flushes first)."""
        from loopml.tracking._query import get_run

        return get_run(self.ws, self.id)


# --------------------------------------------------------------------------- values
def _as_value(key: str, value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValidationError(
            f"metric {key!r}: value {value!r} is not a number", field=key, rule="number"
        ) from None
    return None if math.isnan(v) else v  # NULL stands for NaN (SQLite cannot store NaN)


def _as_step(step: Any) -> int:
    try:
        s = operator.index(step)
    except TypeError:
        raise ValidationError(f"metric step {step!r} is not an integer", field="step", rule="int") from None
    if not -(2**31) <= s < 2**31:
        raise ValidationError(f"metric step {s} is out of range (32-bit)", field="step", rule="range")
    return s


def _param_text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)


def _clean_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (tags or {}).items():
        if type(key) is not str or not 0 < len(key) <= _MAX_KEY:
            raise _bad_key(key, "tag")
        out[key] = value if isinstance(value, str) else str(value)
    return out


def _check_artifact_name(name: Any) -> str:
    if (
        not isinstance(name, str) or not 0 < len(name) <= _MAX_KEY or name.startswith("/")
        or "\\" in name or any(part in ("", ".", "..") for part in name.split("/"))
    ):
        raise ValidationError(
            f"artifact name {name!r} is invalid: use 1-{_MAX_KEY} characters, '/'-separated parts, "
            "no leading '/', no '.' or '..' parts",
            field="name", rule="artifact_name",
        )
    return name


# --------------------------------------------------------------------------- start
def start_run(
    ws: Workspace,
    name: str | None = None,
    *,
    experiment: str = "default",
    kind: str = "manual",
    parent_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    trigger: Mapping[str, Any] | str | None = None,
    cache_key: str | None = None,
    flush_interval_s: float = FLUSH_INTERVAL_S,
    flush_max_points: int = FLUSH_MAX_POINTS,
) -> ActiveRun:
    """Create a run (status ``running``), audit ``run.start`` and return it for logging.

    Use it as a context manager: the run ends ``succeeded`` on normal exit and
    ``failed`` (with the error text) when the block raises.

    Raises:
        ValidationError: a bad experiment, kind, name, tag, trigger or cache key.
        NotFoundError: ``parent_id`` names no run.
    """
    check_name(experiment, "experiment")
    if kind not in KINDS:
        raise ValidationError(
            f"run kind {kind!r} is invalid: use one of {', '.join(KINDS)}", field="kind", rule="choice"
        )
    run_id = new_id()
    if name is None:
        name = f"{kind}-{run_id[-8:]}"
    elif not isinstance(name, str) or not 0 < len(name) <= 256:
        raise ValidationError(f"run name {name!r} is invalid: use 1-256 characters", field="name", rule="length")
    if cache_key is not None and (not isinstance(cache_key, str) or not 0 < len(cache_key) <= 64):
        raise ValidationError(
            f"cache_key {cache_key!r} is invalid: use 1-64 characters", field="cache_key", rule="length"
        )
    trig: dict[str, Any] | None
    if trigger is None:
        trig = None
    elif isinstance(trigger, str):
        trig = {"type": trigger}
    elif isinstance(trigger, Mapping):
        trig = dict(trigger)
    else:
        raise ValidationError(
            f"trigger {trigger!r} is invalid: pass a mapping such as {{'type': 'schedule'}} or a type name",
            field="trigger", rule="type",
        )
    if flush_interval_s < 0:
        raise ValidationError("flush_interval_s must be >= 0", field="flush_interval_s", rule="range")
    clean_tags = _clean_tags(tags)
    commit, dirty = git_info(ws.root)
    started = utcnow()
    with write_connection(ws.store) as conn:
        if parent_id is not None and not run_exists(conn, parent_id):
            raise NotFoundError(f"parent run {parent_id!r} not found")
        execute(
            conn,
            INSERT_RUN,
            {"id": run_id, "name": name, "experiment": experiment, "kind": kind,
             "parent_id": parent_id, "status": "running", "started_at": started, "tags": clean_tags,
             "git_commit": commit, "git_dirty": dirty, "cache_key": cache_key, "trigger": trig,
             "created_by": ws.actor},
        )
        append_audit(
            conn, ws.actor, "run.start", "run", run_id,
            after={"name": name, "experiment": experiment, "kind": kind, "parent_id": parent_id,
                   "cache_key": cache_key, "trigger": trig, "git_commit": commit},
        )
        if parent_id is not None:
            link(conn, ("run", parent_id), "contains", ("run", run_id))
    run = ActiveRun(
        ws, run_id, name, experiment, kind, parent_id,
        flush_interval_s=flush_interval_s, flush_max_points=flush_max_points,
    )
    _register(run)
    return run


def log_batch(
    ws: Workspace,
    run_id: str,
    *,
    metrics: Iterable[Sequence[Any]] = (),
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
) -> None:
    """Write metric points, params and tags to any run by id, in one transaction, now.

    ``metrics`` holds ``(key, value, step)`` or ``(key, value, step, unix_ts)``
    tuples. Unlike :class:`ActiveRun`, nothing is buffered: when this returns,
    the data is committed. A param already stored keeps its first value.

    Raises:
        NotFoundError: no run has this id.
        ValidationError: a bad key, value or step.
    """
    now = time.time()
    points: list[Point] = []
    for item in metrics:
        if not 3 <= len(item) <= 4:
            raise ValidationError(
                f"metric point {item!r} is invalid: use (key, value, step) or (key, value, step, ts)",
                field="metrics", rule="shape",
            )
        key = item[0]
        if type(key) is not str or not 0 < len(key) <= _MAX_KEY:
            raise _bad_key(key, "metric")
        ts = float(item[3]) if len(item) == 4 else now
        points.append((key, _as_value(key, item[1]), _as_step(item[2]), ts))
    clean_params: dict[str, str] = {}
    for key, value in (params or {}).items():
        if type(key) is not str or not 0 < len(key) <= _MAX_KEY:
            raise _bad_key(key, "param")
        clean_params[key] = _param_text(value)
    clean_tags = _clean_tags(tags)
    with write_connection(ws.store) as conn:
        if not run_exists(conn, run_id):
            raise NotFoundError(f"run {run_id!r} not found")
        write_pending(conn, run_id, params=clean_params, points=points, tags=clean_tags)


def active_run() -> ActiveRun | None:
    """The innermost run entered with ``with start_run(...)`` in this thread/task."""
    stack = _STACK.get()
    return stack[-1] if stack else None


# --------------------------------------------------------------------------- process-wide
def _register(run: ActiveRun) -> None:
    global _FLUSHER, _ATEXIT_REGISTERED
    with _ACTIVE_LOCK:
        _ACTIVE.add(run)
        if not _ATEXIT_REGISTERED:
            atexit.register(_at_exit)
            _ATEXIT_REGISTERED = True
        if _FLUSHER is None or not _FLUSHER.is_alive():
            _FLUSHER = threading.Thread(target=_flush_loop, name="loopml-tracking-flush", daemon=True)
            _FLUSHER.start()


def _flush_loop() -> None:
    """Flush runs whose oldest pending item is one interval old, even if they log nothing more."""
    while True:
        time.sleep(_FLUSHER_TICK_S)
        with _ACTIVE_LOCK:
            runs = list(_ACTIVE)
        now = time.monotonic()
        for run in runs:
            since = run._pending_since
            if since is not None and now - since >= run.flush_interval_s:
                try:
                    run.flush()
                except Exception:  # noqa: BLE001 - kept in the buffer; the next flush retries
                    pass


def flush_all(ws: Workspace | None = None) -> None:
    """Write the pending buffers of every open run of this process (of ``ws`` only, if given).

    Reads call this first, so a process always reads what it logged.
    """
    with _ACTIVE_LOCK:
        runs = [r for r in _ACTIVE if ws is None or r.ws.store is ws.store]
    for run in runs:
        if run.pending:
            run.flush()


def _at_exit() -> None:
    # The process is going away with runs still open: keep their data, and say
    # honestly that they did not end normally.
    with _ACTIVE_LOCK:
        runs = list(_ACTIVE)
    for run in runs:
        try:
            run.end("failed", error="the process exited before the run was ended")
        except Exception:  # noqa: BLE001 - nothing left to report to at exit
            pass


def _after_fork_in_child() -> None:
    # A forked child must not flush or end its parent's runs (that would write them twice).
    global _FLUSHER, _ACTIVE_LOCK
    _ACTIVE.clear()
    _ACTIVE_LOCK = threading.Lock()
    _FLUSHER = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
