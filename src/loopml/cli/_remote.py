"""One call, two homes: a service verb on the server when ``LOOPML_SERVER_URL`` is set, else on the workspace.

For the verbs whose :class:`~loopml.server.client.RemoteClient` method has the service function's name and
arguments (privacy, users): the result is the JSON shape either way (a record's ``to_dict()``, or a list).
"""

from __future__ import annotations

import importlib
from typing import Any

from loopml.cli._common import remote, workspace

__all__ = ["call"]


def call(service: str, verb: str, *args: Any, **kwargs: Any) -> Any:
    """``verb(*args, **kwargs)`` over HTTP, or ``service.verb(ws, *args, **kwargs)`` with its records as dicts."""
    client = remote()
    if client is not None:
        with client:
            return getattr(client, verb)(*args, **kwargs)
    found = getattr(importlib.import_module(service), verb)(workspace(), *args, **kwargs)
    return [r.to_dict() for r in found] if isinstance(found, list) else found.to_dict()
