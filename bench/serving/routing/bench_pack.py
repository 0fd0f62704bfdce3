"""What the server pays per request to hand a shadow window to the worker: packing and pickling it.

Usage: python bench_pack.py [--reps 200]

Windows like the routing bench's (1-row requests of 30 floats): 225 requests in batches of 8 (about 100 ms at
2,200 req/s) and 1,370 in batches of 64 (100 ms at 13,700 req/s). Prints µs per window and per request, and the
bytes written to the pipe. The pipe write itself (one copy into the kernel) is not timed.
"""

from __future__ import annotations

import argparse
import pickle
import time

import numpy as np

from loopml.serve._jobs import Job
from loopml.serve._shadow import Copy
from loopml.serve._shadow_worker import _pack
from loopml.serve._validation import Frame


class _Version:
    def __init__(self, version: int) -> None:
        self.name, self.version = "bc", version
        self.contract = type("Contract", (), {"names": [f"f{i}" for i in range(30)]})()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=200)
    reps = p.parse_args().reps
    shadow, answered = _Version(2), _Version(1)
    rng = np.random.default_rng(0)
    for requests, per_batch in ((225, 8), (1370, 64)):
        copies = []
        for b in range(-(-requests // per_batch)):
            n = min(per_batch, requests - b * per_batch)
            jobs = [Job(answered, Frame(1, matrix=rng.random((1, 30))), f"{b:08d}-{i:04d}-request-id-like-a-uuid",
                        time.perf_counter(), time.time(), None) for i in range(n)]  # type: ignore[arg-type]
            copies.append(Copy((shadow,), jobs, time.perf_counter(), n, 0.0))  # type: ignore[arg-type]
        t = time.perf_counter()
        for _ in range(reps):
            data = pickle.dumps(_pack(copies), protocol=5)
        took = (time.perf_counter() - t) / reps
        print(f"{requests:>5} requests: {took * 1e6:8.0f} µs a window, {took / requests * 1e6:5.2f} µs a request, "
              f"{len(data):>7} bytes")


if __name__ == "__main__":
    main()
