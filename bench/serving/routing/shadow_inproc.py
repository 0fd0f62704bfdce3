"""Shadow overhead without HTTP: CPU per request of a plain model vs a shadowed endpoint, in one process.

Usage: python shadow_inproc.py ROOT [--requests 3000] [--cells 1 8 64] [--reps 3] [--windows 0 100] [--label L]

ROOT holds the workspace of ``routing_server.py setup`` (made if missing). For each rep, each
concurrency and each config (``plain`` = bc/1 without a policy; ``win<W>`` = ep-shadow, v2 shadowing
every request, ``shadow_window_ms=W``), a fresh app (validation ON, prediction log ON, max_batch_size
256, max_batch_wait_ms 2, as routing_server.py) is driven through its ASGI callable with the anchor's
``oip_v2_1.json`` body by closed-loop clients (bench_inproc_app.drive). Process CPU (every thread) is
counted from the first request until the app has shut down, so the shadow copies still waiting
and the log's last write are included for every config. Prints one JSON line per run and a table of
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


async def one_run(ws, target: str, window: float, c: int, requests: int) -> dict:  # type: ignore[no-untyped-def]
    from bench_inproc_app import drive

    from loopml.predictions import open_prediction_log
    from loopml.serve import create_app

    from dataclasses import fields

    from loopml.serve import ServeConfig

    settings = {**ws.settings.serve.model_dump(), "max_batch_size": 256, "max_batch_wait_ms": 2}
    if any(f.name == "shadow_window_ms" for f in fields(ServeConfig)):  # else: loopml before the window
        settings["shadow_window_ms"] = window
    app = create_app({"bc": target}, workspace=ws, sink=open_prediction_log(ws), settings=settings)
    body = BODY.read_bytes()
    path = "/v2/models/bc/infer"
    lifespan = app._lifespan(app)
    await lifespan.__aenter__()
    await drive(app, path, body, c, 300)  # warm-up
    c0, t0 = time.process_time(), time.perf_counter()
    bad = await drive(app, path, body, c, requests)
    t1 = time.perf_counter()
    batcher = app.endpoints["bc"].batcher
    dropped = batcher.shadow_dropped
    await lifespan.__aexit__(None, None, None)  # shadows still waiting are scored, the log closes
    cpu = time.process_time() - c0
    return {"c": c, "errors": bad, "cpu_ms_per_req": round(cpu / requests * 1000, 4),
            "wall_req_per_s": round(requests / (t1 - t0)), "shadow_dropped": dropped,
            "loadavg": round(os.getloadavg()[0], 2)}


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("root")
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--cells", type=int, nargs="+", default=[1, 8, 64])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--windows", type=float, nargs="+", default=[0.0, 100.0])
    p.add_argument("--label", default="", help="prefix for the shadow configs' names (e.g. 'old-' for HEAD's code)")
    a = p.parse_args(argv)
    root = Path(a.root)
    if not (root / ".loopml").is_dir():
        from routing_server import setup

        setup(root)
    from loopml.workspace import open_workspace

    ws = open_workspace(root)
    configs = [("plain", "bc/1", 100.0)] + [(f"{a.label}win{w:g}", "ep-shadow", w) for w in a.windows]
    print(f"# start {time.strftime('%FT%TZ', time.gmtime())} loadavg {os.getloadavg()}", flush=True)
    rows = []
    for rep in range(a.reps):
        for c in a.cells:
            for name, target, window in configs:
                r = {"rep": rep, "config": name, **asyncio.run(one_run(ws, target, window, c, a.requests))}
                rows.append(r)
                print(json.dumps(r), flush=True)
    print(f"# end {time.strftime('%FT%TZ', time.gmtime())} loadavg {os.getloadavg()}", flush=True)
    print(f"{'c':>3} {'config':<8} {'cpu ms/req':>10} {'req/s':>7} {'vs plain cpu':>12} {'vs plain req/s':>14}"
          "  per-rep cpu ms/req")
    for c in a.cells:
        def med(name: str, key: str, c: int = c) -> float:
            return statistics.median(r[key] for r in rows if r["config"] == name and r["c"] == c)

        for name, _, _ in configs:
            reps = "/".join(f"{r['cpu_ms_per_req']:.3f}" for r in rows if r["config"] == name and r["c"] == c)
            print(f"{c:>3} {name:<8} {med(name, 'cpu_ms_per_req'):>10.3f} {med(name, 'wall_req_per_s'):>7.0f} "
                  f"{med(name, 'cpu_ms_per_req') / med('plain', 'cpu_ms_per_req'):>12.2f} "
                  f"{med(name, 'wall_req_per_s') / med('plain', 'wall_req_per_s'):>14.2f}  {reps}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    main(sys.argv[1:])
