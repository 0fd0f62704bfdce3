"""Overhead of a cached re-run of the quickstart recipe over Python start-up (issue 2 target: < 0.5 s).

Usage: python bench/pipeline/bench_cli_rerun.py [--repeats 7] [--dir /tmp/rr] [--keep-dir]

Sets up ``loopml quickstart --no-loop`` in ``--dir`` and runs the recipe twice (so every one of
the 7 steps is cached), then alternates ``python -c pass`` and ``loopml run quickstart.yaml --json``
(all steps cached, checked) ``--repeats`` times and reports CPU time (user+sys of the child, from
``getrusage``) and wall time, medians and the overhead = loopml - python. Runs in two bytecode
modes: ``pyc`` (compiled modules cached under PYTHONPYCACHEPREFIX, as in a normal install) and
``nopyc`` (PYTHONDONTWRITEBYTECODE=1 as this dev machine sets it: every module compiles each run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, bytes]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=True).stdout
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--dir", default="/tmp/rr")
    p.add_argument("--keep-dir", action="store_true", help="reuse an existing quickstart folder")
    p.add_argument("--modes", default="pyc,nopyc")
    a = p.parse_args()
    here = Path(a.dir)
    script = Path(sys.executable).parent / "loopml"
    loopml = [str(script)] if script.exists() else [sys.executable, "-m", "loopml.cli.main"]
    base_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if not (a.keep_dir and (here / "quickstart.yaml").exists()):
        shutil.rmtree(here, ignore_errors=True)
        here.mkdir(parents=True)
        subprocess.run(loopml + ["quickstart", "--no-loop"], cwd=here, env=base_env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(2):
            subprocess.run(loopml + ["run", "quickstart.yaml"], cwd=here, env=base_env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for mode in a.modes.split(","):
        env = dict(base_env)
        if mode == "pyc":
            env["PYTHONPYCACHEPREFIX"] = "/tmp/loopml-bench-pyc"
        else:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        timed(loopml + ["run", "quickstart.yaml", "--json"], here, env)  # warm the caches (pyc, page cache)
        rows: dict[str, list[tuple[float, float]]] = {"python": [], "loopml": []}
        for _ in range(a.repeats):
            cpu, wall, _ = timed([sys.executable, "-c", "pass"], here, env)
            rows["python"].append((cpu, wall))
            cpu, wall, out = timed(loopml + ["run", "quickstart.yaml", "--json"], here, env)
            steps = json.loads(out)["steps"]
            assert [s["status"] for s in steps] == ["cached"] * 7, [s["status"] for s in steps]
            rows["loopml"].append((cpu, wall))
        med = {k: (statistics.median(c for c, _ in v), statistics.median(w for _, w in v)) for k, v in rows.items()}
        print(json.dumps({
            "mode": mode, "repeats": a.repeats, "loadavg": os.getloadavg()[0],
            "python_cpu_s": round(med["python"][0], 3), "python_wall_s": round(med["python"][1], 3),
            "loopml_cpu_s": round(med["loopml"][0], 3), "loopml_wall_s": round(med["loopml"][1], 3),
            "overhead_cpu_s": round(med["loopml"][0] - med["python"][0], 3),
            "overhead_wall_s": round(med["loopml"][1] - med["python"][1], 3),
            "loopml_cpu_all": [round(c, 3) for c, _ in rows["loopml"]],
        }), flush=True)


if __name__ == "__main__":
    main()
