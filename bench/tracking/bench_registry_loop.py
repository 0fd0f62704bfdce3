"""The registry's per-call cost, finer than the harness: register 50 versions, move an alias 50 times,
load by alias 50 times (model cache cleared); median and min CPU (process_time) per call and SQL
statements per call (BEGIN included). Pass any argument to also print a cProfile of 50 register+alias.

Usage: python bench/tracking/bench_registry_loop.py [profile]
A/B:   PYTHONPATH=/tmp/before/src python bench/tracking/bench_registry_loop.py
"""
import os
import statistics
import sys
import tempfile
import time

from sklearn.linear_model import LogisticRegression
import numpy as np
from loopml import tracking, register
from loopml.workspace import init_workspace
from sqlalchemy import event

d = tempfile.mkdtemp()
ws = init_workspace(os.path.join(d, "ws"), actor="bench")
X = np.random.rand(100, 5); y = (X[:, 0] > .5).astype(int)
model = LogisticRegression().fit(X, y)
run = tracking.start_run(ws, experiment="e")
n_stmt = [0]
@event.listens_for(ws.store.engine, "before_cursor_execute")
def _c(*a): n_stmt[0] += 1
def timeit(fn, n=50):
    ts = []; s0 = n_stmt[0]
    for i in range(n):
        t = time.process_time_ns(); fn(i); ts.append((time.process_time_ns() - t) / 1e6)
    return statistics.median(ts), min(ts), (n_stmt[0] - s0) / n
register.register_model(ws, "warm", model, run_id=run.id)
register.set_alias(ws, "warm", "a", 1); register.load_model(ws, "warm@a")
versions = []
r = timeit(lambda i: versions.append(register.register_model(ws, "m", model, run_id=run.id).version))
print(f"register  median {r[0]:.2f} min {r[1]:.2f} ms cpu, {r[2]:.1f} stmts/op")
r = timeit(lambda i: register.set_alias(ws, "m", "champion", versions[i]))
print(f"set_alias median {r[0]:.2f} min {r[1]:.2f} ms cpu, {r[2]:.1f} stmts/op")
def ld(i):
    register.clear_model_cache(); register.load_model(ws, "m@champion")
r = timeit(ld)
print(f"load      median {r[0]:.2f} min {r[1]:.2f} ms cpu, {r[2]:.1f} stmts/op")
if len(sys.argv) > 1:
    import cProfile, pstats
    pr = cProfile.Profile(); pr.enable()
    for i in range(50):
        v = register.register_model(ws, "m2", model, run_id=run.id).version
        register.set_alias(ws, "m2", "champion", v)
    pr.disable(); pstats.Stats(pr).sort_stats("tottime").print_stats(35)
