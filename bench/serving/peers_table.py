"""Medians and ratios of one run_with_peers.sh run, as a Markdown table (stdlib only).

Usage: python peers_table.py OUT_DIR   (reads progress.txt, inproc.jsonl, rss.txt)
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

LINE = re.compile(r"rep=(\d+) rows=(\d+) load=(\S+) (\S+) c=(\d+) rps=(\S+) rows_per_s=(\d+) p50_ms=(\S+) p99_ms=(\S+)"
                  r".*?server_cpu_ms_per_req=(\S+)")


def main(out: Path) -> None:
    cells: dict[tuple[int, int, str], list[dict[str, float]]] = defaultdict(list)
    loads: list[float] = []
    for m in LINE.finditer((out / "progress.txt").read_text()):
        rep, rows, load, name, c, rps, rws, p50, p99, cpu = m.groups()
        loads.append(float(load))
        cells[(int(rows), int(c), name)].append(
            {"rep": int(rep), "rps": float(rps), "rows": float(rws), "p99": float(p99), "cpu": float(cpu)})
    limit = {}
    for line in (out / "inproc.jsonl").read_text().splitlines():
        d = json.loads(line)
        if d.get("kind") == "json+predict_proba" and d["model"] == "hgb" and d["batch"] == 100:
            limit[d["rep"]] = d["rows_per_s"]
    med = {k: {f: statistics.median(r[f] for r in v) for f in ("rps", "rows", "p99", "cpu")} for k, v in cells.items()}
    print(f"load average during the cells: {min(loads):.1f}-{max(loads):.1f}\n")
    print("| rows | c | target | req/s per rep | median rows/s | median p99 ms | server CPU ms/req |")
    print("|---:|---:|---|---|--:|--:|--:|")
    for (rows, c, name), v in sorted(cells.items()):
        reps = " / ".join(f"{r['rps']:,.0f}" for r in sorted(v, key=lambda r: r["rep"]))
        m = med[(rows, c, name)]
        print(f"| {rows} | {c} | {name} | {reps} | {m['rows']:,.0f} | {m['p99']:.0f} | {m['cpu']:.3f} |")
    print()
    for rows, c in sorted({(k[0], k[1]) for k in cells}):
        mine = {k[2]: v for k, v in med.items() if k[:2] == (rows, c)}
        best_bento = max(mine.get("bento", {"rows": 0})["rows"], mine.get("bentobatch", {"rows": 0})["rows"])
        for who in ("loopml-oip", "loopml-inputs"):
            if who not in mine:
                continue
            line = (f"- {rows} row(s), c={c}, {who}: {mine[who]['rows'] / mine['mlflow']['rows']:.1f}x MLflow, "
                    f"{mine[who]['rows'] / best_bento:.1f}x BentoML's best; p99 {mine[who]['p99']:.0f} ms vs "
                    f"{mine['mlflow']['p99']:.0f} (MLflow), {min(mine['bento']['p99'], mine['bentobatch']['p99']):.0f} "
                    "(BentoML's lower)")
            if rows == 100 and limit:
                per_rep = [r["rows"] / limit[r["rep"]] for r in cells[(rows, c, who)] if r["rep"] in limit]
                line += ("; vs the in-process JSON+predict limit of the same rep: "
                         + " / ".join(f"{x:.2f}" for x in per_rep)
                         + f" (limit {' / '.join(f'{limit[k]:,.0f}' for k in sorted(limit))} rows/s)")
            print(line)
    rss = (out / "rss.txt").read_text() if (out / "rss.txt").exists() else ""
    print("\nPeak RSS (MiB, process tree): " + "; ".join(
        f"{m.group(1)} {m.group(2)}" for m in re.finditer(r"^(\S+).*?peak_rss_sum_MiB=(\d+)", rss, re.M)))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
