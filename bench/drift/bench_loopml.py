#!/usr/bin/env python3
"""loopml.monitor.drift on the shared drift anchors (shared/bench/drift/gen_data.py data).

Same data, sizes and figure-line format as the peers' harnesses in
shared/bench/drift/, so the figures sit beside Evidently / alibi / NannyML.

Figures (median of --repeats, one process per size):
  profile_s        profile_frame(reference) -- done once at training time, NOT in the timed run
  profile_json_MB  size of the profile as JSON
  auto_s           DriftDetector().fit(profile).score(current)             (loopml defaults)
  evidently_s      DriftDetector(method="evidently").fit(profile).score(current)
  numpy_evcompat_s shared bench_numpy.py evcompat_vec on the same data, same process (the baseline)
  peak_rss_MB / peak_delta_MB, prec_recall[auto|evidently] vs the injected truth,
  agree[...] per-column verdict agreement with the stored peer results (results/*.json in shared/),
  agree_evidently_method/verdict, max_rel_score_diff: evidently mode vs Evidently's own output.
With --null it also runs the false-alarm simulation (no drift) per column type and sample size.
Each run stores the reference profile (results-local/profile_<size>_x<scale>.json); --monitor-only then
scores in a fresh process that loads only the current window and that profile, as a monitor run does
(the reference rows are never in its memory), and reports that process's peak RSS.

Usage:  PYTHONPATH=src python bench/drift/bench_loopml.py --size a [--scale 0.2] [--repeats 3] [--null]
Prints one line per figure:  loopml size=a ... figure=<name> value=<v>
Writes bench/drift/results/loopml_<size>_x<scale>.json (per-column method/score/verdict).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.abspath(os.path.join(HERE, "..", "..", "..", "shared", "bench", "drift"))
SHARED = os.environ.get("DRIFT_SHARED_DIR", SHARED if os.path.isdir(SHARED) else "/work/shared/bench/drift")
sys.path.insert(0, SHARED)
import bench_numpy as bn  # noqa: E402
import gen_data as g  # noqa: E402

from loopml.monitor.drift import DriftDetector, profile_frame  # noqa: E402
from loopml.monitor.drift._evidently import EVIDENTLY_NAMES  # noqa: E402

RESULTS = os.path.join(HERE, "results")
PEER_RESULTS = os.path.join(SHARED, "results")


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def frames(d: dict) -> tuple[dict, dict, dict]:
    """Column mappings over the cached arrays (no copy) and the type overrides."""
    m = d["meta"]
    ref = {n: d["ref_num"][i] for i, n in enumerate(m["num_names"])}
    cur = {n: d["cur_num"][i] for i, n in enumerate(m["num_names"])}
    ref.update({n: d["ref_cat"][i] for i, n in enumerate(m["cat_names"])})
    cur.update({n: d["cur_cat"][i] for i, n in enumerate(m["cat_names"])})
    return ref, cur, {n: "categorical" for n in m["cat_names"]}


def timed(fn, repeats: int):  # type: ignore[no-untyped-def]
    ts, out = [], None
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return out, ts


def null_simulation(emit, reps: int) -> None:  # type: ignore[no-untyped-def]
    """Per-feature false-alarm rate with no drift (no correction, so the rate is per test)."""
    import pandas as pd

    rng = np.random.default_rng(7)
    for n in (100, 1000, 10000):
        r = reps if n <= 1000 else max(reps // 4, 50)
        hits = {m: {} for m in ("auto", "evidently")}
        for _ in range(r):
            p3, p30 = rng.dirichlet(np.full(3, 5.0)), rng.dirichlet(np.full(30, 5.0))

            def draw() -> pd.DataFrame:
                return pd.DataFrame({
                    "normal": rng.normal(size=n), "lognormal": rng.lognormal(0, 0.8, n),
                    "cat3": rng.choice(3, n, p=p3).astype(str), "cat30": rng.choice(30, n, p=p30).astype(str),
                    "binary": rng.random(n) < 0.3,
                })

            ref, cur = draw(), draw()
            prof = profile_frame(ref)
            for m in hits:
                rep = DriftDetector(method=m, correction="none", min_effect=0.0, outliers=False).fit(prof).score(cur)
                for f in rep.per_feature:
                    hits[m][f.column] = hits[m].get(f.column, 0) + f.drifted
        for m, h in hits.items():
            for col, k in h.items():
                emit(f"null_fpr[{m},{col},n={n}]", f"{k / r:.3f}", f"reps={r}")


def _profile_path(a: argparse.Namespace) -> str:
    return os.path.join(HERE, "results-local", f"profile_{a.size}_x{a.scale:g}.json")  # not committed: up to 9 MB


def monitor_only(a: argparse.Namespace) -> None:
    """A monitor's memory: the current window and the stored profile, no reference rows."""
    path = g.path_for(a.size, a.scale, a.seed, g.DATA_DIR)
    with np.load(path) as z:  # an npz reads only the arrays asked for
        m = json.loads(str(z["meta"]))
        cur_num, cur_cat = z["cur_num"], z["cur_cat"]
    cur = {n: cur_num[i] for i, n in enumerate(m["num_names"])}
    cur.update({n: cur_cat[i] for i, n in enumerate(m["cat_names"])})
    with open(_profile_path(a)) as f:
        prof = json.load(f)
    tag = f"loopml size={a.size} n={m['n_ref']} p={m['p']} scale={a.scale:g} mode=monitor-only"
    base = rss_mb()
    print(f"{tag} figure=rss_before_run_MB value={base:.0f}", flush=True)
    _, ts = timed(lambda: DriftDetector().fit(prof).score(cur), a.repeats)
    print(f"{tag} figure=auto_s value={statistics.median(ts):.4f} runs=" + ",".join(f"{x:.3f}" for x in ts))
    print(f"{tag} figure=peak_rss_MB value={peak_mb():.0f}")
    print(f"{tag} figure=peak_delta_MB value={peak_mb() - base:.0f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="a")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-numpy", action="store_true", help="skip the in-process numpy baseline")
    ap.add_argument("--null", type=int, default=0, help="also run the no-drift simulation with this many reps")
    ap.add_argument("--monitor-only", action="store_true",
                    help="load only the current window and the stored profile (run the size once without it first)")
    a = ap.parse_args()
    if a.monitor_only:
        return monitor_only(a)

    d = g.load(a.size, a.scale, a.seed)
    meta = d["meta"]
    tag = f"loopml size={a.size} n={meta['n_ref']} p={meta['p']} scale={a.scale:g}"

    def emit(fig: str, val: object, extra: str = "") -> None:
        print(f"{tag} figure={fig} value={val}{(' ' + extra) if extra else ''}", flush=True)

    ref, cur, types = frames(d)
    base = rss_mb()
    emit("rss_before_run_MB", f"{base:.0f}")
    prof, ts = timed(lambda: profile_frame(ref, types=types), 1)
    emit("profile_s", f"{ts[0]:.4f}")
    emit("profile_json_MB", f"{len(json.dumps(prof)) / 2**20:.2f}")
    emit("profile_peak_delta_MB", f"{peak_mb() - base:.0f}")
    prof = json.loads(json.dumps(prof))  # what a monitor would read back from the store
    os.makedirs(os.path.dirname(_profile_path(a)), exist_ok=True)
    with open(_profile_path(a), "w") as f:
        json.dump(prof, f)
    base = rss_mb()
    auto, ts = timed(lambda: DriftDetector().fit(prof).score(cur), a.repeats)
    emit("auto_s", f"{statistics.median(ts):.4f}", "runs=" + ",".join(f"{x:.3f}" for x in ts))
    evm, ts = timed(lambda: DriftDetector(method="evidently").fit(prof).score(cur), a.repeats)
    emit("evidently_s", f"{statistics.median(ts):.4f}", "runs=" + ",".join(f"{x:.3f}" for x in ts))
    emit("peak_rss_MB", f"{peak_mb():.0f}")
    emit("peak_delta_MB", f"{peak_mb() - base:.0f}")
    if not a.no_numpy:
        _, ts = timed(lambda: bn.evcompat_vec(d), a.repeats)
        emit("numpy_evcompat_s", f"{statistics.median(ts):.4f}", "runs=" + ",".join(f"{x:.3f}" for x in ts))

    res = {}
    for key, rep in (("auto", auto), ("evidently", evm)):
        cols = {r.column: dict(type=r.type, method=r.method, score=(r.p_value if r.p_value is not None else
                               r.statistic), p_adjusted=r.p_adjusted, effect=r.effect, drift=r.drifted)
                for r in rep.per_feature}
        res[key] = cols
        fl = {c: v["drift"] for c, v in cols.items()}
        prec, rec, tp, fp, fn = g.precision_recall(fl, meta)
        emit(f"prec_recall[{key}]", f"{prec:.3f}/{rec:.3f}", f"tp={tp} fp={fp} fn={fn} cols={len(fl)}")
        emit(f"dataset_drift[{key}]", rep.dataset_drift, f"share={rep.drift_share:.3f}")
        emit(f"methods[{key}]", ",".join(sorted({v['method'] for v in cols.values()})))
    emit("outlier_share_rows[auto]", f"{auto.outlier_share:.4f}")
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"loopml_{a.size}_x{a.scale:g}.json"), "w") as f:
        json.dump(dict(tool="loopml", size=a.size, scale=a.scale, n=meta["n_ref"], p=meta["p"], results=res), f,
                  indent=1)

    # ---- agreement with Evidently's own output and the other peers' stored verdicts
    sfx = f"{a.size}_x{a.scale:g}"
    evp = os.path.join(PEER_RESULTS, f"evidently_{sfx}.json")
    if os.path.exists(evp):
        evj = json.load(open(evp))["columns"]
        ours = res["evidently"]
        mm = [c for c in ours if EVIDENTLY_NAMES[ours[c]["method"]] != evj[c]["method"]]
        vm = [c for c in ours if ours[c]["drift"] != evj[c]["drift"]]
        rel = max(abs(ours[c]["score"] - evj[c]["score"]) / max(abs(evj[c]["score"]), 1e-12) for c in ours)
        emit("agree_evidently_method", f"{len(ours) - len(mm)}/{len(ours)}", ",".join(mm))
        emit("agree_evidently_verdict", f"{len(ours) - len(vm)}/{len(ours)}", ",".join(vm))
        ab = max(abs(ours[c]["score"] - evj[c]["score"]) for c in ours)
        emit("agree_evidently_max_rel_score_diff", f"{rel:.2e}", f"max_abs_diff={ab:.2e}")
    peers: dict[str, dict[str, bool]] = {}
    if os.path.exists(evp):
        peers["evidently"] = {c: r["drift"] for c, r in json.load(open(evp))["columns"].items()}
    alp = os.path.join(PEER_RESULTS, f"alibi_{sfx}.json")
    if os.path.exists(alp):
        al = json.load(open(alp))
        peers["alibi_bonf"] = {c: p < al["bonferroni_threshold"][c] for c, p in al["p_val"].items()}
    nmp = os.path.join(PEER_RESULTS, f"nannyml_default_{sfx}.json")
    if os.path.exists(nmp):
        nm = json.load(open(nmp))
        peers["nannyml_majority"] = {c: 2 * r["n_alert_chunks"] >= nm["n_chunks"] for c, r in nm["columns"].items()}
    peers["truth"] = g.truth(meta)
    for key in ("auto", "evidently"):
        ours_v = {c: v["drift"] for c, v in res[key].items()}
        for peer, pv in peers.items():
            cols = sorted(set(ours_v) & set(pv))
            diff = [c for c in cols if ours_v[c] != pv[c]]
            emit(f"agree[loopml_{key}~{peer}]", f"{len(cols) - len(diff)}/{len(cols)}", ",".join(diff))
    if a.null:
        null_simulation(emit, a.null)


if __name__ == "__main__":
    main()
