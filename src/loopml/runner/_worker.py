"""Run one ``StepTask`` wherever the executor put it: load inputs, call, store outputs.

The worker never raises for a step's own failure: the error, its traceback and
whatever the step printed come back in the ``StepResult``. It reads inputs
from and writes outputs to the artifact store only; it never touches the
metadata store.

Logs: ``sys.stdout``, ``sys.stderr`` and records of the ``logging`` root
logger (INFO and up) are captured into one buffer, in order, while the step
runs. The root logger's level is lowered to INFO for that time if it was
higher. Output written by child processes or C extensions straight to the
file descriptors is not captured.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pickle
import socket
import threading
import traceback
from collections.abc import Iterator
from typing import Any

from loopml.artifacts import ArtifactStore
from loopml.kernel.exceptions import PipelineError
from loopml.kernel.types import utcnow
from loopml.runner import _serialize
from loopml.runner._task import StepResult, StepTask

__all__ = ["execute", "execute_portable", "store_for"]

_STORES: dict[str, ArtifactStore] = {}
_STORES_LOCK = threading.Lock()
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def store_for(url: str) -> ArtifactStore:
    """One ``ArtifactStore`` per URL per process."""
    with _STORES_LOCK:
        store = _STORES.get(url)
        if store is None:
            store = _STORES[url] = ArtifactStore(url)
        return store


def load_value(store: ArtifactStore, digest: str) -> Any:
    """Read one stored step output back into a Python value."""
    info = store.info(digest)
    return _serialize.loads(store.get_bytes(digest), info.meta)


@contextlib.contextmanager
def _capture() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    if root.level > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            yield buf
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def execute(task: StepTask, store: ArtifactStore | None = None) -> StepResult:
    """Run ``task`` here and now; every failure comes back in the result."""
    store = store or store_for(task.artifacts_url)
    started = utcnow()
    logs = ""
    digests: dict[str, str] = {}
    info: dict[str, dict[str, Any]] = {}
    try:
        step = task.step.load()
        kwargs: dict[str, Any] = {name: load_value(store, d) for name, d in task.input_digests.items()}
        kwargs.update(task.params)
        if step.wants_context:
            from loopml.runner._context import StepContext

            if task.workspace is None:
                raise PipelineError(f"step '{task.step_name}' takes a context but the task carries no workspace")
            kwargs["context"] = StepContext(task.workspace, task.run_id)
        with _capture() as buf:
            try:
                value = step.func(**kwargs)
            finally:
                logs = buf.getvalue()
        for name, out in step.split_outputs(value).items():
            data, media_type, meta = _serialize.dumps(out)
            stored = store.put_bytes(data, media_type=media_type, meta=meta)
            digests[name] = stored.digest
            info[name] = {"size": stored.size, "media_type": media_type, **meta}
    except Exception as exc:
        return StepResult(
            step_name=task.step_name,
            started_at=started,
            ended_at=utcnow(),
            logs=logs,
            pid=os.getpid(),
            host=socket.gethostname(),
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
            exception=exc,
        )
    return StepResult(
        step_name=task.step_name,
        started_at=started,
        ended_at=utcnow(),
        output_digests=digests,
        output_info=info,
        logs=logs,
        pid=os.getpid(),
        host=socket.gethostname(),
    )


def execute_portable(task: StepTask) -> StepResult:
    """``execute`` for another process: drop an exception that cannot be pickled back."""
    result = execute(task)
    if result.exception is not None:
        try:
            pickle.loads(pickle.dumps(result.exception))  # noqa: S301 - round-trip check only
        except Exception:
            from dataclasses import replace

            result = replace(result, exception=None)
    return result
