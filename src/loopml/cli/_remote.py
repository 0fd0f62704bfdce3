"""One call, two homes: a service verb on the server when ``LOOPML_SERVER_URL`` is set, else on the workspace.

For the verbs whose :class:`~loopml.server.client.RemoteClient` method has the service function's name and
arguments (privacy, users): the result is the JSON shape either way (a record's ``to_dict()``, or a list).
:func:`wait_for_run` follows a run request on the server's scheduler, with a spinner.
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


def wait_for_run(client: Any, request: dict[str, Any], *, show: bool = True) -> dict[str, Any]:
    """Wait until the server's scheduler has run ``request``; the ended request (its ``result`` on success).

    Raises:
        PipelineError: the run failed (the message is the run's error).
    """
    import time

    started = time.monotonic()
    with err_console.status(f"run request {request['id']}: {request['status']}", spinner="dots") as status:
        if not show:
            status.stop()

        def on_poll(current: dict[str, Any]) -> None:
            waited = time.monotonic() - started
            note = ""
            if current["status"] == "pending" and waited > _NO_SCHEDULER_HINT_S:
                note = " (no scheduler has claimed it yet: is 'loopml scheduler' or 'loopml up' running by the server?)"
            status.update(f"run request {current['id']}: {current['status']}, {waited:.0f} s{note}")

        ended: dict[str, Any] = client.wait_run_request(request["id"], on_poll=on_poll)
    if ended["status"] == "failed":
        raise PipelineError(f"run request {ended['id']} failed: {ended['error']}")
    return ended
