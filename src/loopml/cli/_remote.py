"""One call, two homes: a service verb on the server when ``LOOPML_SERVER_URL`` is set, else on the workspace.

For the verbs whose :class:`~loopml.server.client.RemoteClient` method has the service function's name and
arguments (privacy, users): the result is the JSON shape either way (a record's ``to_dict()``, or a list).
:func:`wait_for_run` follows a run request on the server's scheduler, showing its steps as a local run does.
"""

from __future__ import annotations

import importlib
from typing import Any

from loopml.cli._common import err_console, remote, workspace
from loopml.kernel.exceptions import PipelineError

__all__ = ["call", "wait_for_run"]

#: After this long pending, say that a scheduler has to claim the request.
_NO_SCHEDULER_HINT_S = 15.0


def call(service: str, verb: str, *args: Any, **kwargs: Any) -> Any:
    """``verb(*args, **kwargs)`` over HTTP, or ``service.verb(ws, *args, **kwargs)`` with its records as dicts."""
    client = remote()
    if client is not None:
        with client:
            return getattr(client, verb)(*args, **kwargs)
    found = getattr(importlib.import_module(service), verb)(workspace(), *args, **kwargs)
    return [r.to_dict() for r in found] if isinstance(found, list) else found.to_dict()


def wait_for_run(client: Any, request: dict[str, Any], *, show: bool = True, pipeline: Any = None) -> dict[str, Any]:
    """Wait until the server's scheduler has run ``request``; the ended request (its ``result`` on success).

    Shows the run's steps as a local run does when the ``pipeline`` is known (the scheduler keeps each
    step's events on the request), else a status line.

    Raises:
        PipelineError: the run failed (the message is the run's error).
    """
    import time
    from contextlib import nullcontext

    from loopml.runner import NullReporter, RichReporter

    started = time.monotonic()
    steps: Any = RichReporter(pipeline, console=err_console) if show and pipeline is not None else NullReporter()
    status: Any = err_console.status(f"run request {request['id']}: {request['status']}", spinner="dots") \
        if show and pipeline is None else nullcontext()
    replayed, hinted = 0, False
    with steps, status:

        def on_poll(current: dict[str, Any]) -> None:
            nonlocal replayed, hinted
            events = (current.get("progress") or {}).get("events", [])
            for name, outcome, seconds in events[replayed:]:
                if outcome == "running":
                    steps.step_started(name)
                else:
                    steps.step_finished(name, outcome, seconds)
            replayed = len(events)
            waited = time.monotonic() - started
            if hasattr(status, "update"):
                status.update(f"run request {current['id']}: {current['status']}, {waited:.0f} s")
            if show and not hinted and current["status"] == "pending" and waited > _NO_SCHEDULER_HINT_S:
                hinted = True
                err_console.print(f"run request {current['id']} is still pending: no scheduler has claimed it "
                                  "(is 'loopml scheduler' or 'loopml up' running by the server?)")

        ended: dict[str, Any] = client.wait_run_request(request["id"], on_poll=on_poll)
    if ended["status"] == "failed":
        raise PipelineError(f"run request {ended['id']} failed: {ended['error']}")
    return ended
