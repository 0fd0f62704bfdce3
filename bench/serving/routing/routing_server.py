"""Routing and shadow overhead: the same model served plain, by a one-route policy, a 90/10 canary, and with a shadow.

Usage:
    python routing_server.py setup ROOT            a workspace with bc/1, bc/2 and three endpoints
    python routing_server.py serve ROOT TARGET PORT

TARGET is ``bc/1`` (plain: a fixed version, no policy), ``ep-single`` (a policy
routing 100% to v1), ``ep-canary`` (90% v1 / 10% v2), ``ep-shadow`` (100% v1,
v2 scoring a copy of every batch after the answer) or ``ep-shadow10`` (the same
with ``shadow_fraction=0.1``: a tenth of the batches copied) or ``ep-ab`` (a sticky
50/50 A/B split; with no ``X-Request-Key`` each request's id is its key) or ``ep-slow`` (a 90/10 canary of
``bc/3``, a model about five times slower per call: does the baseline's 90% wait for it?). Every server runs
with validation ON (30-float contract) and the prediction log ON, one worker,
the serving defaults (uvloop + httptools when installed), as in ../RESULTS.md.

Env: ``SHADOW_SAMPLE_RATE`` (the server-wide per-request ``shadow_sample_rate``); ``SHADOW_SHIP=discard``
(the shadow lane collects each window and throws it away: no worker) or ``pack`` (packs and pickles it first),
to split a shadow's cost between the server's side and the worker's; ``LOG_ROLL_S`` (the prediction log's
``roll_interval_s``: 3600 keeps Parquet commits out of a run);
``PER_REQUEST_DRAW=1`` turns off the router's batch-aligned draws (a canary then
draws per request, as before), for a same-run before/after comparison.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def setup(root: Path) -> None:
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import HistGradientBoostingClassifier

    from loopml.deploy import deploy
    from loopml.register import register_model
    from loopml.workspace import init_workspace

    ws = init_workspace(root, actor="bench")
    data = load_breast_cancer()
    x, y = data.data, data.target
    lo, hi = x.min(axis=0), x.max(axis=0)
    span = hi - lo
    names = [n.replace(" ", "_") for n in data.feature_names]
    signature = {"version": 1, "columns": {
        n: {"type": "float", "nullable": False, "min": float(lo[j] - 0.5 * span[j]),
            "max": float(hi[j] + 0.5 * span[j])} for j, n in enumerate(names)}}
    for seed in (0, 1):  # two versions with the same cost: a split or a shadow is one more model call
        est = HistGradientBoostingClassifier(random_state=seed).fit(np.ascontiguousarray(x), y)
        register_model(ws, "bc", est, signature=signature, task="classification", gates_passed=True)
    slow = HistGradientBoostingClassifier(max_iter=500, max_leaf_nodes=63, early_stopping=False, random_state=2)
    register_model(ws, "bc", slow.fit(np.ascontiguousarray(x), y), signature=signature, task="classification",
                   gates_passed=True)  # bc/3
    for ep in ("ep-single", "ep-canary", "ep-shadow", "ep-shadow10", "ep-ab", "ep-slow"):
        deploy(ws, ep, "bc/1")
    deploy(ws, "ep-canary", "bc/2", strategy="canary", steps=[0.1, 1.0], auto=False)
    deploy(ws, "ep-shadow", "bc/2", strategy="shadow")
    deploy(ws, "ep-shadow10", "bc/2", strategy="shadow", shadow_fraction=0.1)
    deploy(ws, "ep-ab", "bc/2", strategy="ab", split=0.5)
    deploy(ws, "ep-slow", "bc/3", strategy="canary", steps=[0.1, 1.0], auto=False)
    print(f"workspace ready at {root}")


def serve(root: Path, target: str, port: int) -> None:
    from loopml.predictions import open_prediction_log
    from loopml.serve import create_app, run_server
    from loopml.workspace import open_workspace

    if os.environ.get("GC_PROBE") == "1":  # print every full (gen-2) collection: when, how long, how many objects
        import gc
        import time

        began = [0.0]

        def probe(phase, info):  # type: ignore[no-untyped-def]
            if info["generation"] != 2:
                return
            if phase == "start":
                began[0] = time.perf_counter()
            else:
                print(f"GC2 t={time.time():.2f} ms={(time.perf_counter() - began[0]) * 1000:.1f} "
                      f"collected={info['collected']} objects={len(gc.get_objects(2))}", file=sys.stderr, flush=True)

        gc.callbacks.append(probe)
    ship = os.environ.get("SHADOW_SHIP")  # where a shadow's cost goes: collect copies only, or collect and pack
    if ship in ("discard", "pack"):
        import pickle

        from loopml.serve._shadow_worker import ShadowWorker, _pack

        def discard(self, copies):  # type: ignore[no-untyped-def]
            if ship == "pack":
                pickle.dumps(_pack(copies), protocol=5)
            return True

        ShadowWorker.ship = discard  # type: ignore[method-assign]
    if os.environ.get("PER_REQUEST_DRAW") == "1":  # the router as it was: one draw per request
        from loopml.serve._policy import PolicyRouter

        PolicyRouter.next_batch = lambda self: None  # type: ignore[method-assign]

    def factory():  # type: ignore[no-untyped-def]
        ws = open_workspace(root)
        settings = {**ws.settings.serve.model_dump(), "max_batch_size": 256, "max_batch_wait_ms": 2,
                    "shadow_sample_rate": float(os.environ.get("SHADOW_SAMPLE_RATE", "1"))}
        roll = os.environ.get("LOG_ROLL_S")  # e.g. 3600: no Parquet commit during a run (the journal still syncs)
        log = open_prediction_log(ws, **({"roll_interval_s": float(roll)} if roll else {}))
        return create_app({"bc": target}, workspace=ws, sink=log, settings=settings)

    run_server(factory, port=port)


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup(Path(sys.argv[2]))
    else:
        serve(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
