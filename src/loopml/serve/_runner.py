"""Run the app under uvicorn: one process, or K worker processes on one socket.

With ``workers > 1`` the parent binds the socket, then starts K spawned
processes that each build the app (each loads the model) and serve on the
shared socket; the kernel spreads connections. SIGTERM/SIGINT to the parent
is forwarded, and each worker drains its in-flight requests (uvicorn's
graceful shutdown) before exiting.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
from collections.abc import Callable
from typing import Any

__all__ = ["run_server"]

AppFactory = Callable[[], Any]


def _uvicorn_config(app: Any, host: str, port: int, log_level: str, graceful_timeout_s: float) -> Any:
    import uvicorn

    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level, access_log=False, lifespan="on",
        timeout_graceful_shutdown=graceful_timeout_s, loop="auto", http="auto",
        timeout_keep_alive=30, backlog=2048,
    )


def _worker(factory: AppFactory, sock: socket.socket, host: str, port: int, log_level: str,
            graceful_timeout_s: float) -> None:
    import uvicorn

    server = uvicorn.Server(_uvicorn_config(factory(), host, port, log_level, graceful_timeout_s))
    server.run(sockets=[sock])


def run_server(
    factory: AppFactory,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    log_level: str = "warning",
    graceful_timeout_s: float = 30.0,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Serve ``factory()`` until SIGTERM/SIGINT; ``factory`` must be picklable when ``workers > 1``."""
    import uvicorn

    if workers <= 1:
        server = uvicorn.Server(_uvicorn_config(factory(), host, port, log_level, graceful_timeout_s))
        if on_ready is not None:
            on_ready()
        server.run()
        return
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(factory, sock, host, port, log_level, graceful_timeout_s),
                         name=f"loopml-serve-{i}") for i in range(workers)]
    for p in procs:
        p.start()

    def forward(signum: int, frame: Any) -> None:
        for p in procs:
            if p.is_alive() and p.pid is not None:
                try:
                    import os

                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    if on_ready is not None:
        on_ready()
    for p in procs:
        p.join()
    sock.close()
