#!/usr/bin/env bash
# Routing + shadow overhead vs a plain model at the same load, with the serving anchor's harness (wrk, bench.sh).
#   ANCHOR=/work/shared/bench/serving ROOT=/tmp/loopml-bench/routing DURATION=5s REPS=3 ./run_routing.sh
#   (ROWS=100 CELLS=8: the serving benchmark's 100-row requests, body bodies/oip_v2_100.json)
#   (PACE_MS=N: each connection pauses N ms before each request (paced_json.lua), so every config gets the same
#    offered load, about c * 1000 / N req/s, below saturation; server CPU from /proc/PID/stat, with its children
#    (cpu ms/req) and alone ("main cpu": the process that answers; the shadow worker is a child); PACE_DIST=exp draws
#    each pause from an exponential distribution with mean N, so connections do not move in waves)
# One server per config runs side by side (plain bc/1, ep-single, ep-canary 90/10 with batch-aligned draws,
# canary_perreq = the same endpoint drawing per request, ep-shadow, shadow10 = ep-shadow10 with
# shadow_fraction=0.1 (whole batches sampled), shadow10rate = ep-shadow with the server-wide per-request
# shadow_sample_rate=0.1, shadow_thread = ep-shadow scored on the server's thread (serve.shadow_process=false;
# the other shadow configs score in a worker process, whose CPU counts in the server's), shadow_discard /
# shadow_pack = ep-shadow whose windows are collected (and packed) but never sent to a worker, plain_b = a second
# plain server (an A/A check: how far two servers of the same config differ in one run), ab = ep-ab, a sticky 50/50 split keyed by request id, slow = ep-slow, a 90/10 canary of a
# model about five times slower per call); cells are interleaved config by
# config within each rep, so every ratio compares runs from the same minutes. Prints medians and ratios vs plain (RAW lines in $ROOT/raw.txt).
# The shadow lane's window comes from the workspace settings: LOOPML_SERVE__SHADOW_WINDOW_MS=0 for the lane without one.
# OLD_SRC=DIR: configs named NAME_old (canary_old, shadow_old, ab_old, ...) serve NAME's endpoint with the loopml
#   package under DIR (e.g. `git archive REV src/loopml | tar -x -C DIR`, then OLD_SRC=DIR/src): before and after
#   in the same minutes.
# Without wrk: shadow_inproc.py (same apps, in-process, CPU per request; RESULTS.md, fourth pass).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ANCHOR=${ANCHOR:-/work/shared/bench/serving}; ROOT=${ROOT:-/tmp/loopml-bench/routing}
DURATION=${DURATION:-5s}; REPS=${REPS:-3}; CELLS=${CELLS:-"1 8 64"}; ROWS=${ROWS:-1}; CONFIGS=${CONFIGS:-"plain single canary canary_perreq shadow shadow10 shadow10rate"}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
rm -rf "$ROOT"; mkdir -p "$ROOT/logs"
python "$HERE/routing_server.py" setup "$ROOT/ws"
declare -A PORT=([plain]=9201 [single]=9202 [canary]=9203 [shadow]=9204 [shadow10]=9205 [canary_perreq]=9206
                [shadow10rate]=9207 [ab]=9208 [slow]=9209 [shadow_thread]=9210)
declare -A TARGET=([plain]=bc/1 [single]=ep-single [canary]=ep-canary [shadow]=ep-shadow [shadow10]=ep-shadow10
                  [canary_perreq]=ep-canary [shadow10rate]=ep-shadow [ab]=ep-ab [slow]=ep-slow
                  [shadow_thread]=ep-shadow)
declare -A RATE=([plain]=1 [single]=1 [canary]=1 [shadow]=1 [shadow10]=1 [canary_perreq]=1 [shadow10rate]=0.1 [ab]=1 [slow]=1
                [shadow_thread]=1)
declare -A PERREQ=([plain]=0 [single]=0 [canary]=0 [shadow]=0 [shadow10]=0 [canary_perreq]=1 [shadow10rate]=0 [ab]=0 [slow]=0
                  [shadow_thread]=0)
declare -A SHADOW_PROCESS=([shadow_thread]=false)  # the rest: the default (shadows in a worker process)
declare -A SHIP=([shadow_discard]=discard [shadow_pack]=pack)  # routing_server.py's SHADOW_SHIP
PORT+=([shadow_discard]=9211 [shadow_pack]=9212 [plain_b]=9213)
TARGET+=([shadow_discard]=ep-shadow [shadow_pack]=ep-shadow [plain_b]=bc/1)
RATE+=([shadow_discard]=1 [shadow_pack]=1 [plain_b]=1); PERREQ+=([shadow_discard]=0 [shadow_pack]=0 [plain_b]=0)
declare -A SRC=()
for cfg in $CONFIGS; do
  [[ $cfg == *_old ]] || continue
  base=${cfg%_old}; [[ -n ${OLD_SRC:-} ]] || { echo "$cfg needs OLD_SRC" >&2; exit 2; }
  PORT[$cfg]=$((PORT[$base] + 100)); TARGET[$cfg]=${TARGET[$base]}; RATE[$cfg]=${RATE[$base]}
  PERREQ[$cfg]=${PERREQ[$base]}; SRC[$cfg]=$OLD_SRC; SHADOW_PROCESS[$cfg]=${SHADOW_PROCESS[$base]:-}
done
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
for cfg in $CONFIGS; do
  (cd "$ROOT/ws" && PYTHONPATH="${SRC[$cfg]:-${PYTHONPATH:-}}" SHADOW_SAMPLE_RATE="${RATE[$cfg]}" \
     LOOPML_SERVE__SHADOW_PROCESS="${SHADOW_PROCESS[$cfg]:-true}" SHADOW_SHIP="${SHIP[$cfg]:-}" \
     PER_REQUEST_DRAW="${PERREQ[$cfg]}" exec setsid python "$HERE/routing_server.py" serve "$ROOT/ws" "${TARGET[$cfg]}" "${PORT[$cfg]}" \
     >"$ROOT/logs/$cfg.log" 2>&1 </dev/null) & pids+=($!); echo "$!" > "$ROOT/logs/$cfg.pid"
done
for cfg in $CONFIGS; do
  for _ in $(seq 1 120); do curl -fs -o /dev/null "http://127.0.0.1:${PORT[$cfg]}/v2/health/ready" && break; sleep 0.5; done
done
RAW="$ROOT/raw.txt"; : > "$RAW"
echo "start $(date -u +%FT%TZ) loadavg $(cut -d' ' -f1-3 /proc/loadavg) cpus $(getconf _NPROCESSORS_ONLN)"
cd "$ANCHOR"
HZ=$(getconf CLK_TCK)
own_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }  # the server process alone
cpu_ticks() {  # utime+stime summed over the server and its children (the shadow worker), as bench.sh does
  local t c; t=$(awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0)
  for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do t=$((t + $(cpu_ticks "$c"))); done
  echo "$t"
}
paced() {  # cfg c rep: one paced wrk run, appended to $RAW in bench.sh's format
  local cfg=$1 c=$2 rep=$3 pid t0 t1 line n
  pid=$(cat "$ROOT/logs/$cfg.pid"); t0=$(cpu_ticks "$pid"); m0=$(own_ticks "$pid")
  line=$(BODY_FILE="$ANCHOR/bodies/oip_v2_$ROWS.json" PACE_MS="$PACE_MS" PACE_DIST="${PACE_DIST:-fixed}" wrk -t1 -c"$c" -d"$DURATION" --latency \
         -s "$HERE/paced_json.lua" "http://127.0.0.1:${PORT[$cfg]}/v2/models/bc/infer" | grep '^WRK_SUMMARY')
  t1=$(cpu_ticks "$pid"); m1=$(own_ticks "$pid"); n=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<< "$line")
  echo "ts=$(date +%s) load1=$(cut -d' ' -f1 /proc/loadavg) label=$cfg pace_ms=$PACE_MS pace_dist=${PACE_DIST:-fixed} rows=$ROWS c=$c rep=$rep" \
       "${line#WRK_SUMMARY } server_cpu_ms_per_req=$(awk -v d=$((t1 - t0)) -v n="$n" -v hz="$HZ" 'BEGIN{printf "%.4f", d*1000/hz/n}')" \
       "main_cpu_ms_per_req=$(awk -v d=$((m1 - m0)) -v n="$n" -v hz="$HZ" 'BEGIN{printf "%.4f", d*1000/hz/n}')" >> "$RAW"
}
if [[ -n ${PACE_MS:-} ]]; then  # bench.sh warms each server up; paced runs do it here
  for cfg in $CONFIGS; do
    BODY_FILE="$ANCHOR/bodies/oip_v2_$ROWS.json" wrk -t1 -c8 -d2s -s "$HERE/paced_json.lua" \
      "http://127.0.0.1:${PORT[$cfg]}/v2/models/bc/infer" > /dev/null
  done
fi
for rep in $(seq 1 "$REPS"); do
  for c in $CELLS; do
    for cfg in $CONFIGS; do
      if [[ -n ${PACE_MS:-} ]]; then paced "$cfg" "$c" "$rep"; continue; fi
      env CONCURRENCY="$c" DURATION="$DURATION" REPS=1 WARMUP=1s REP_LABEL="$rep" RAW="$RAW" LABEL="$cfg" \
        CPU_PID="$(cat "$ROOT/logs/$cfg.pid")" ./bench.sh "http://127.0.0.1:${PORT[$cfg]}" /v2/models/bc/infer \
        "bodies/oip_v2_$ROWS.json" "$ROWS" > /dev/null
    done
  done
done
for cfg in $CONFIGS; do
  echo "# $cfg"; curl -s "http://127.0.0.1:${PORT[$cfg]}/metrics" \
    | grep -E '^loopml_serve_(requests_total|shadow_dropped_total|batch_requests_(sum|count))' || true
done
echo "end $(date -u +%FT%TZ) loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
python - "$RAW" <<'PY'
import re, statistics, sys
rows = [dict(kv.split("=", 1) for kv in line.split() if "=" in kv) for line in open(sys.argv[1])]
cells = sorted({int(r["c"]) for r in rows})
def med(cfg, c, key):
    vals = [float(r[key]) for r in rows if r["label"] == cfg and int(r["c"]) == c and key in r]
    return statistics.median(vals) if vals else float("nan")
keys = ["rps", "p50_ms", *(["p95_ms"] if any("p95_ms" in r for r in rows) else []), "p99_ms",
        "server_cpu_ms_per_req", *(["main_cpu_ms_per_req"] if any("main_cpu_ms_per_req" in r for r in rows) else [])]
heads = ["req/s", "p50 ms", *(["p95 ms"] if "p95_ms" in keys else []), "p99 ms", "cpu ms/req",
         *(["main cpu"] if "main_cpu_ms_per_req" in keys else [])]
print(f"{'c':>3} {'config':<13} " + " ".join(f"{h:>10}" for h in heads) + "   ratios vs plain, same order")
for c in cells:
    base = {k: med("plain", c, k) for k in keys}
    for cfg in ["plain", *sorted({r["label"] for r in rows} - {"plain"})]:
        m = {k: med(cfg, c, k) for k in keys}
        print(f"{c:>3} {cfg:<13} " + " ".join(f"{m[k]:>10.3f}" for k in keys) + "   "
              + " ".join(f"{m[k] / base[k]:.3f}" for k in keys))
# Paired: each rep's ratio to plain's cell of the same rep (run minutes apart at most), then the median and range
# of those ratios. A slow phase of the machine then moves both sides of a ratio, not one config's median.
def cell(cfg, c, rep, key):
    return next((float(r[key]) for r in rows if r["label"] == cfg and int(r["c"]) == c and r["rep"] == rep
                 and key in r), float("nan"))
print(f"\npaired per-rep ratios vs plain: median [min-max] of {', '.join(heads)}")
for c in cells:
    reps = sorted({r["rep"] for r in rows if int(r["c"]) == c})
    for cfg in sorted({r["label"] for r in rows} - {"plain"}):
        out = []
        for k in keys:
            ratios = sorted(cell(cfg, c, rep, k) / cell("plain", c, rep, k) for rep in reps)
            out.append(f"{statistics.median(ratios):.2f} [{ratios[0]:.2f}-{ratios[-1]:.2f}]")
        print(f"{c:>3} {cfg:<13} " + "  ".join(out))
PY
