"""Where a cached ``loopml run`` spends its CPU: process_time per phase, in one process.

Run in a quickstart workspace (``bench_cli_rerun.py`` sets one up), e.g.
``cd /tmp/rr_me && python /work/main/bench/pipeline/phases_cached_run.py``. Imports run with the
cyclic GC paused and are then frozen, as the CLI does (``loopml.cli._common.quiet_gc``).
"""
import sys, time, os
import gc; gc.disable()
T = [("start", time.process_time())]
def mark(n): T.append((n, time.process_time()))
sys.argv = ["loopml", "run", "quickstart.yaml", "--json"]
import loopml.cli.main as M; mark("cli.main (typer, _common, config)")
import loopml.cli.pipeline; mark("mount pipeline")
import loopml.kernel.config as C; s = C.get_settings(); mark("get_settings")
import sqlalchemy.orm; mark("sqlalchemy.orm")
import loopml.metadata._orm; mark("ORM models")
import loopml.recipes; mark("recipes (+workspace, store, pipeline, yaml, pydantic spec)")
import loopml.runner._engine, loopml.runner._records; mark("runner (+tracking)")
gc.freeze(); gc.enable()
from loopml.recipes import load_spec, run_recipe
from loopml.workspace import open_workspace
spec = load_spec("quickstart.yaml"); mark("load_spec")
ws = open_workspace(); mark("open_workspace")
r = run_recipe(ws, spec, executor=None, progress=False); mark("run_recipe")
import json
from loopml.cli._common import print_json
sys.stdout = open(os.devnull, "w"); print_json(r); mark("print_json")
prev = T[0][1]
for n, t in T[1:]:
    print(f"{t - prev:7.3f}  {n}", file=sys.stderr); prev = t
print(f"{T[-1][1] - T[0][1]:7.3f}  total in-process", file=sys.stderr)
