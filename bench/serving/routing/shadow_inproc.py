"""Shadow overhead without HTTP: CPU per request of a plain model vs a shadowed endpoint, in one process.

Usage: python shadow_inproc.py ROOT [--requests 3000] [--cells 1 8 64] [--reps 3] [--windows 0 100] [--label L]
                                    [--worker]

ROOT holds the workspace of ``routing_server.py setup`` (made if missing). For each rep, each
concurrency and each config (``plain`` = bc/1 without a policy; ``win<W>`` = ep-shadow, v2 shadowing
every request, ``shadow_window_ms=W``, scored on the server's shadow thread; with ``--worker`` also
``worker<W>``: the same scored by the shadow worker process, and ``pack<W>``: only the server's side of the
worker, each window packed and pickled, then thrown away), a fresh app (validation ON, prediction log ON, max_batch_size
256, max_batch_wait_ms 2, as routing_server.py) is driven through its ASGI callable with the anchor's
``oip_v2_1.json`` body by closed-loop clients (bench_inproc_app.drive). Process CPU (every thread) is
counted from the first request until the app has shut down, so the shadow copies still waiting
and the log's last write are included for every config; ``cpu_ms_per_req`` is this process's (the server's),
``with_worker_ms_per_req`` adds the worker's over the same requests (the worker is started and warmed first;
its start is not counted, nor its last window's at shutdown). Prints one JSON line per run and a table of
medians with ratios vs plain. Run with ``PYTHONPATH`` at an older ``src`` (no ``shadow_window_ms``
setting) and ``--windows 0 --label old-`` for a before/after comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

BODY = Path(os.environ.get("ANCHOR", "/work/shared/bench/serving")) / "bodies" / "oip_v2_1.json"


async def one_run(ws, target: str, window: float, c: int, requests: int,  # type: ignore[no-untyped-def]
                  worker: bool | str = False) -> dict:
    from bench_inproc_app import drive

    from loopml.predictions import open_prediction_log
    from loopml.serve import create_app

    from dataclasses import fields

    from loopml.serve import ServeConfig

    settings = {**ws.settings.serve.model_dump(), "max_batch_size": 256, "max_batch_wait_ms": 2}
    if any(f.name == "shadow_window_ms" for f in fields(ServeConfig)):  # else: loopml before the window
        settings["shadow_window_ms"] = window
    if any(f.name == "shadow_process" for f in fields(ServeConfig)):  # else: loopml before the worker
        settings["shadow_process"] = bool(worker)
    app = create_app({"bc": target}, workspace=ws, sink=open_prediction_log(ws), settings=settings)
    body = BODY.read_bytes()
    path = "/v2/models/bc/infer"
    lifespan = app._lifespan(app)
    await lifespan.__aenter__()
    if worker == "pack-only":  # the server's side of the worker (pack + pickle each window), no worker at all
        import pickle

        from loopml.serve._shadow_worker import _pack

        app.endpoints["bc"].batcher.shadow_lane._ship = lambda copies: bool(pickle.dumps(_pack(copies), protocol=5))
    await drive(app, path, body, c, 300)  # warm-up
    batcher = app.endpoints["bc"].batcher
    worker_pid = _started_worker(batcher)
    if worker_pid is not None:  # its start (imports, ~2 s of CPU) is not what is measured
        await asyncio.sleep(4)
        await drive(app, path, body, c, 300)
    c0, t0, w0 = time.process_time(), time.perf_counter(), _ticks(worker_pid)
    bad = await drive(app, path, body, c, requests)
    t1 = time.perf_counter()
    dropped = batcher.shadow_dropped
    await asyncio.sleep(0.3)  # the worker scores the last full window
    worker_cpu = _ticks(worker_pid) - w0
    await lifespan.__aexit__(None, None, None)  # shadows still waiting are scored, the log closes
    cpu = time.process_time() - c0
    return {"c": c, "errors": bad, "cpu_ms_per_req": round(cpu / requests * 1000, 4),
            "with_worker_ms_per_req": round((cpu + worker_cpu) / requests * 1000, 4),
            "wall_req_per_s": round(requests / (t1 - t0)), "shadow_dropped": dropped,
            "loadavg": round(os.getloadavg()[0], 2)}


def _started_worker(batcher) -> int | None:  # type: ignore[no-untyped-def]
    worker = getattr(batcher, "shadow_worker", None)
    if worker is None:
        return None
    deadline = time.monotonic() + 10
    while worker.pid is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return worker.pid


def _ticks(pid: int | None) -> float:
    """CPU seconds of a live process (0 for none)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("root")
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--cells", type=int, nargs="+", default=[1, 8, 64])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--windows", type=float, nargs="+", default=[0.0, 100.0])
    p.add_argument("--label", default="", help="prefix for the shadow configs' names (e.g. 'old-' for HEAD's code)")
    p.add_argument("--worker", action="store_true", help="also run each window with the shadow worker process")
    a = p.parse_args(argv)
    root = Path(a.root)
    if not (root / ".loopml").is_dir():
        from routing_server import setup

        setup(root)
    from loopml.workspace import open_workspace

    ws = open_workspace(root)
    configs = [("plain", "bc/1", 100.0, False)] + [(f"{a.label}win{w:g}", "ep-shadow", w, False) for w in a.windows]
    if a.worker:
        configs += [(f"{a.label}worker{w:g}", "ep-shadow", w, True) for w in a.windows]
        configs += [(f"{a.label}pack{w:g}", "ep-shadow", w, "pack-only") for w in a.windows]
    print(f"# start {time.strftime('%FT%TZ', time.gmtime())} loadavg {os.getloadavg()}", flush=True)
    rows = []
    for rep in range(a.reps):
        for c in a.cells:
            for name, target, window, worker in configs:
                r = {"rep": rep, "config": name, **asyncio.run(one_run(ws, target, window, c, a.requests, worker))}
                rows.append(r)
                print(json.dumps(r), flush=True)
    print(f"# end {time.strftime('%FT%TZ', time.gmtime())} loadavg {os.getloadavg()}", flush=True)
    print(f"{'c':>3} {'config':<10} {'cpu ms/req':>10} {'+worker':>8} {'req/s':>7} {'vs plain cpu':>12} "
          f"{'+worker':>8} {'vs plain req/s':>14}  per-rep cpu ms/req")
    for c in a.cells:
        def med(name: str, key: str, c: int = c) -> float:
            return statistics.median(r[key] for r in rows if r["config"] == name and r["c"] == c)

        for name, *_ in configs:
            reps = "/".join(f"{r['cpu_ms_per_req']:.3f}" for r in rows if r["config"] == name and r["c"] == c)
            cpu, total = med(name, "cpu_ms_per_req"), med(name, "with_worker_ms_per_req")
            print(f"{c:>3} {name:<10} {cpu:>10.3f} {total:>8.3f} {med(name, 'wall_req_per_s'):>7.0f} "
                  f"{cpu / med('plain', 'cpu_ms_per_req'):>12.2f} {total / med('plain', 'cpu_ms_per_req'):>8.2f} "
                  f"{med(name, 'wall_req_per_s') / med('plain', 'wall_req_per_s'):>14.2f}  {reps}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    main(sys.argv[1:])
