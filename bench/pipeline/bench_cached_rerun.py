"""Overhead of a fully cached re-run of a 7-step pipeline, in a fresh process.

Prints the median wall time of ``python -c pass`` (interpreter start-up), of a
fresh process that only opens the workspace, and of a fresh process that opens
the workspace and re-runs a 7-step pipeline whose steps are all cached. The
difference between the last two is what the runner adds; the difference
between the last and the first is the whole cost a user waits for.

    python bench/pipeline/bench_cached_rerun.py [--repeat 7] [--db-url URL]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

STEPS_MODULE = '''
from loopml.pipeline import Pipeline, step


@step
def raw(*, n: int = 1000) -> list[int]:
    return list(range(n))


@step
def clean(raw: list[int]) -> list[int]:
    return [x for x in raw if x % 7]


@step(outputs=("train", "test"))
def split(clean: list[int]) -> tuple[list[int], list[int]]:
    k = len(clean) * 3 // 4
    return clean[:k], clean[k:]


@step
def features(train: list[int]) -> list[float]:
    return [x / 10 for x in train]


@step
def model(features: list[float], *, alpha: float = 0.5) -> float:
    return sum(features) * alpha


@step
def evaluate(model: float, test: list[int]) -> dict[str, float]:
    return {"score": model / (1 + sum(test))}


@step
def report(evaluate: dict[str, float]) -> str:
    return f"score={evaluate['score']:.4f}"


PIPELINE = Pipeline([raw, clean, split, features, model, evaluate, report], name="bench7")
'''

OPEN_ONLY = """
from loopml.workspace import open_workspace
ws = open_workspace({root!r}, **{overrides!r})
"""

RERUN = """
import time
clock = time.{clock}
t0 = clock()
from loopml.workspace import open_workspace
ws = open_workspace({root!r}, **{overrides!r})
t1 = clock()
from loopml.runner import run_pipeline
from bench7_steps import PIPELINE
t2 = clock()
result = run_pipeline(ws, PIPELINE)
t3 = clock()
assert len(result.cache_hits) == 7, result.cache_hits
print(f"{{t1 - t0}} {{t2 - t1}} {{t3 - t2}}")
"""


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(
    code: str, cwd: Path, repeat: int, inner: list[list[float]] | None = None, cpu: bool = False
) -> list[float]:
    """Wall seconds per fresh process, or CPU seconds (user + sys) when ``cpu``."""
    times = []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), _cpu_children()
        out = subprocess.run([sys.executable, "-c", code], cwd=cwd, check=True, capture_output=True, text=True)
        times.append((_cpu_children() - c0) if cpu else (time.perf_counter() - t0))
        if inner is not None:
            inner.append([float(x) for x in out.stdout.split()])
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--db-url", default=None, help="metadata store (default: SQLite in the workspace)")
    parser.add_argument(
        "--cpu", action="store_true",
        help="report CPU time (user + sys) instead of wall time: stable on a busy machine",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "bench7_steps.py").write_text(textwrap.dedent(STEPS_MODULE))
        overrides = {"db_url": args.db_url} if args.db_url else {}
        setup = (
            "from loopml.workspace import init_workspace\n"
            f"init_workspace({str(root)!r}, **{overrides!r})\n"
            + RERUN.format(root=str(root), overrides=overrides, clock="perf_counter").replace(
                "assert len", "# first run: assert len"
            )
        )
        subprocess.run([sys.executable, "-c", setup], cwd=root, check=True, capture_output=True)  # fill the cache

        clock = "process_time" if args.cpu else "perf_counter"
        startup = _time("pass", root, args.repeat, cpu=args.cpu)
        opened = _time(OPEN_ONLY.format(root=str(root), overrides=overrides), root, args.repeat, cpu=args.cpu)
        inner: list[list[float]] = []
        rerun = _time(
            RERUN.format(root=str(root), overrides=overrides, clock=clock), root, args.repeat, inner, cpu=args.cpu
        )

    med = statistics.median
    print(f"{'CPU (user + sys)' if args.cpu else 'wall'} time, fresh process each")
    print(f"python start-up                         : {med(startup) * 1000:7.1f} ms (median of {args.repeat})")
    print(f"start-up + open workspace               : {med(opened) * 1000:7.1f} ms")
    print(f"start-up + open + cached 7-step re-run  : {med(rerun) * 1000:7.1f} ms")
    print(f"added over python start-up              : {(med(rerun) - med(startup)) * 1000:7.1f} ms")
    print(f"  of which the runner (re-run - open)   : {(med(rerun) - med(opened)) * 1000:7.1f} ms")
    ws_s, imp_s, run_s = (med(col) for col in zip(*inner, strict=True))
    print("measured inside the re-run process (medians):")
    print(f"  import loopml.workspace + open        : {ws_s * 1000:7.1f} ms")
    print(f"  import loopml.runner + the steps      : {imp_s * 1000:7.1f} ms")
    print(f"  run_pipeline (7 cache hits)           : {run_s * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
