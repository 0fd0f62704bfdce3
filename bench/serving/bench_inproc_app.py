"""loopml's serving path without HTTP: drive the ASGI app in-process, measure CPU per request.

Usage: python bench_inproc_app.py MODELS_DIR BODY_FILE [--rows 100] [--concurrency 8] [--requests 3000]
       [--max-batch-size 256] [--no-log] [--no-validate] [--endpoint invocations|oip] [--profile OUT.pstats]

Builds the same app as ``loopml_bench_server.py`` (validation ON, prediction log ON unless told),
then runs ``--concurrency`` closed-loop clients that each send the body through the ASGI callable
(no sockets, no uvicorn). Reports process CPU (user+sys, every thread: the model thread and the
log writer included) per request and rows per CPU-second, which is robust to other load on the
machine, plus the wall rate. Compare with ``inproc_limit.py``'s ``json+predict_proba`` line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user+sys) per thread group, from /proc (Linux; empty elsewhere).

    Groups: ``log`` (the prediction log's journal and commit threads), ``model`` (the
    batcher's model thread), ``main`` (the event loop), ``other``.
    """
    import threading

    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tids:
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(tid), "")
        key = ("main" if name == "MainThread" else "log" if name.startswith("loopml-predlog")
               else "model" if name.startswith("loopml-model") else "other")
        out[key] = out.get(key, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


async def drive(app, path: str, body: bytes, concurrency: int, requests: int) -> int:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    left = [requests]
    bad = [0]

    async def client() -> None:
        while left[0] > 0:
            left[0] -= 1
            sent = False

            async def receive():
                nonlocal sent
                if sent:
                    await asyncio.sleep(3600)
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            status = []

            async def send(msg):
                if msg["type"] == "http.response.start":
                    status.append(msg["status"])

            await app({"type": "http", "method": "POST", "path": path, "headers": headers}, receive, send)
            if status[0] != 200:
                bad[0] += 1

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return bad[0]


async def main_async(a: argparse.Namespace) -> dict:
    from loopml_bench_server import build

    app = build(a.models_dir, "hgb", not a.no_validate, not a.no_log,
                {"max_batch_size": a.max_batch_size, "max_batch_wait_ms": 2.0, "max_queue": 256})
    body = Path(a.body).read_bytes()
    path = "/invocations" if a.endpoint == "invocations" else "/v2/models/hgb/infer"
    async with app._lifespan(app):
        await drive(app, path, body, a.concurrency, 200)  # warm-up
        prof = None
        if a.profile:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        th0 = thread_cpu()
        c0, t0 = time.process_time(), time.perf_counter()
        bad = await drive(app, path, body, a.concurrency, a.requests)
        # the log writer works behind the requests: count the CPU it spends on them too
        if app.sink is not None and hasattr(app.sink, "flush"):
            await asyncio.to_thread(app.sink.flush)
        c1, t1 = time.process_time(), time.perf_counter()
        th1 = thread_cpu()
        if prof is not None:
            prof.disable()
            prof.dump_stats(a.profile)
        batches = app.m_batch_reqs
    cpu = c1 - c0
    return {"endpoint": a.endpoint, "rows": a.rows, "c": a.concurrency, "requests": a.requests, "errors": bad,
            "log": not a.no_log, "validate": not a.no_validate, "max_batch_size": a.max_batch_size,
            "cpu_ms_per_req": round(cpu / a.requests * 1000, 3),
            "rows_per_cpu_s": round(a.requests * a.rows / cpu), "wall_rows_per_s": round(a.requests * a.rows / (t1 - t0)),
            # per thread group: main (event loop), model (model thread), log (journal + commit), other
            "thread_cpu_ms_per_req": {k: round((v - th0.get(k, 0.0)) / a.requests * 1000, 3) for k, v in th1.items()},
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "loadavg": os.getloadavg()[0]}


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("models_dir")
    p.add_argument("body")
    p.add_argument("--rows", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--max-batch-size", type=int, default=256)
    p.add_argument("--no-log", action="store_true")
    p.add_argument("--no-validate", action="store_true")
    p.add_argument("--endpoint", default="invocations", choices=["invocations", "oip"])
    p.add_argument("--profile")
    a = p.parse_args(argv)
    print(json.dumps(asyncio.run(main_async(a))), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main(sys.argv[1:])
