#!/usr/bin/env python3
"""Ingest + profile of a wide CSV (default 1,000,000 rows x 50 columns), loopml vs pandas.

Each contender runs in a fresh subprocess so its peak RSS is its own:

- loopml:  ``loopml.ingest.ingest(ws, csv, name)`` (read, normalise, content digest,
  profile, canonical Parquet into the CAS, one metadata transaction);
- pandas:  ``pd.read_csv`` + ``df.describe(include="all")`` + ``df.to_parquet`` (what a
  user would otherwise write by hand; it computes far less than the loopml profile);
- validate: ``validate_frame`` of a 1-row frame against the inferred contract
  (median per call, after warm-up).

Usage:  python bench/data/bench_ingest.py [--rows 1000000] [--cols 50]
Prints ``bench name=... seconds=... peak_rss_mb=... data_mb=...`` lines and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, resource, sys, time
mode, csv, root = sys.argv[1], sys.argv[2], sys.argv[3]
import numpy, pandas, pyarrow, pyarrow.csv, pyarrow.parquet  # imports are not timed
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = {}
if mode == "loopml":
    from loopml.workspace import init_workspace
    from loopml.ingest import ingest
    ws = init_workspace(root, actor="bench")
    t = time.perf_counter()
    rec = ingest(ws, csv, "bench")
    out["seconds"] = time.perf_counter() - t
    out["profile_json_kb"] = len(json.dumps(rec.profile)) / 1024
    out["n_duplicate_rows"] = rec.profile["n_duplicate_rows"]
    # The same call again: the content digest finds the existing version.
    t = time.perf_counter()
    again = ingest(ws, csv, "bench")
    out["reingest_seconds"] = time.perf_counter() - t
    assert again.version == rec.version and not again.new
elif mode == "pandas":
    t = time.perf_counter()
    df = pandas.read_csv(csv)
    df.describe(include="all")
    df.to_parquet(root + "/pandas.parquet")
    out["seconds"] = time.perf_counter() - t
elif mode == "validate":
    from loopml.workspace import init_workspace
    from loopml.ingest import ingest, load_frame
    from loopml.validate import get_contract, validate_frame
    ws = init_workspace(root, actor="bench")
    rec = ingest(ws, csv, "bench")
    contract = get_contract(ws, "bench")
    row = load_frame(ws, rec).head(1)
    for _ in range(200):
        validate_frame(row, contract)
    times = []
    for _ in range(2000):
        t = time.perf_counter(); validate_frame(row, contract); times.append(time.perf_counter() - t)
    times.sort()
    out["seconds"] = times[len(times) // 2]
    out["p99_seconds"] = times[int(len(times) * 0.99)]
    big = load_frame(ws, rec)
    t = time.perf_counter(); validate_frame(big, contract); out["full_frame_seconds"] = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out["peak_rss_mb"] = peak / 1024
out["rss_growth_mb"] = (peak - base) / 1024
print(json.dumps(out))
"""


def make_csv(path: str, rows: int, cols: int) -> float:
    """Write a mixed-type CSV; returns the Arrow in-memory size of the data in MB."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(0)
    data = {}
    for i in range(cols):
        kind = i % 10
        if kind < 7:
            x = rng.normal(i, 1 + i % 3, rows)
            if kind == 0:
                x[rng.random(rows) < 0.02] = np.nan
            data[f"f{i}"] = x
        elif kind < 9:
            data[f"i{i}"] = rng.integers(0, 1000, rows)
        else:
            data[f"c{i}"] = pa.array(np.array(["alpha", "beta", "gamma", "delta", "eps"])[rng.integers(0, 5, rows)])
    table = pa.table(data)
    pcsv.write_csv(table, path)
    return table.nbytes / 2**20


def run(mode: str, csv: str) -> dict:
    with tempfile.TemporaryDirectory() as root:
        proc = subprocess.run([sys.executable, "-c", CHILD, mode, csv, root], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{mode} failed:\n{proc.stderr}")
        return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--cols", type=int, default=50)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv = os.path.join(tmp, "wide.csv")
        t = time.perf_counter()
        data_mb = make_csv(csv, a.rows, a.cols)
        print(f"# generated {a.rows} x {a.cols} CSV ({os.path.getsize(csv) / 2**20:.0f} MB on disk, "
              f"{data_mb:.0f} MB in Arrow) in {time.perf_counter() - t:.1f}s; cpus={os.cpu_count()}")
        results = {m: run(m, csv) for m in ("loopml", "pandas", "validate")}
    lo, pd_ = results["loopml"], results["pandas"]
    print(f"bench name=loopml_ingest_profile rows={a.rows} cols={a.cols} seconds={lo['seconds']:.2f} "
          f"peak_rss_mb={lo['peak_rss_mb']:.0f} rss_growth_mb={lo['rss_growth_mb']:.0f} data_mb={data_mb:.0f} "
          f"mem_ratio={lo['rss_growth_mb'] / data_mb:.2f} reingest_seconds={lo['reingest_seconds']:.2f} "
          f"profile_json_kb={lo['profile_json_kb']:.0f}")
    print(f"bench name=pandas_read_describe_parquet seconds={pd_['seconds']:.2f} "
          f"peak_rss_mb={pd_['peak_rss_mb']:.0f} rss_growth_mb={pd_['rss_growth_mb']:.0f} "
          f"mem_ratio={pd_['rss_growth_mb'] / data_mb:.2f}")
    v = results["validate"]
    print(f"bench name=validate_frame_1row median_us={v['seconds'] * 1e6:.0f} p99_us={v['p99_seconds'] * 1e6:.0f} "
          f"full_frame_seconds={v['full_frame_seconds']:.2f}")
    print(f"ratio loopml/pandas time={lo['seconds'] / pd_['seconds']:.2f} "
          f"memory={lo['rss_growth_mb'] / max(pd_['rss_growth_mb'], 1):.2f}")


if __name__ == "__main__":
    main()
