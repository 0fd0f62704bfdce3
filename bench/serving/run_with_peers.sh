#!/usr/bin/env bash
# loopml next to its peers in ONE run: MLflow (`mlflow models serve`) and BentoML (the anchor's
# bento_service, /predict and /predict_batched) started by the anchor's servers.sh, loopml (log ON,
# validation ON) started as in run_loopml.sh, and the anchor's inproc_limit.py once per rep.
# Cells are interleaved and the target order rotates every rep, so background load hits all alike.
#   ANCHOR=/work/shared/bench/serving ROOT=/tmp/loopml-bench/serving OUT=<dir>
#   DURATION=5s REPS=3 CELLS="1:64 100:8" BATCH=1024 WAIT_MS=2 ./run_with_peers.sh [hgb|lr]
# Output: $OUT/progress.txt (one bench.sh line per cell), raw.txt, inproc.jsonl, rss.txt.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ANCHOR=${ANCHOR:-/work/shared/bench/serving}; export ROOT=${ROOT:-/tmp/loopml-bench/serving}
MODEL=${1:-hgb}; DURATION=${DURATION:-5s}; REPS=${REPS:-3}; CELLS=${CELLS:-"1:64 100:8"}
BATCH=${BATCH:-1024}; WAIT_MS=${WAIT_MS:-2}
OUT=${OUT:-$ROOT/results/peers-$(date +%Y%m%d-%H%M%S)}; mkdir -p "$OUT" "$ROOT/logs"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
B="$ANCHOR/bodies"
stop_loopml() { local f=$ROOT/logs/loopml-peers.pid; [[ -f $f ]] || return 0; local pid; pid=$(cat "$f")
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -KILL -- "-$pid" 2>/dev/null || true; rm -f "$f"; }
cleanup() { "$ANCHOR/servers.sh" stop "mlflow-$MODEL" "bento-$MODEL" >/dev/null 2>&1 || true; stop_loopml; }
trap cleanup EXIT

"$ANCHOR/servers.sh" start "mlflow-$MODEL" "bento-$MODEL" | tee "$OUT/startup.txt"
(exec setsid python "$HERE/loopml_bench_server.py" "$ROOT/models" "$MODEL" 9000 \
   --max-batch-size "$BATCH" --max-batch-wait-ms "$WAIT_MS" >"$ROOT/logs/loopml-peers.log" 2>&1 < /dev/null) &
echo $! > "$ROOT/logs/loopml-peers.pid"
for _ in $(seq 1 120); do curl -fs -o /dev/null http://127.0.0.1:9000/v2/health/ready && break; sleep 0.5; done
LPID=$(cat "$ROOT/logs/loopml-peers.pid")
echo "loopml-$MODEL up on :9000 pid $LPID" | tee -a "$OUT/startup.txt"

# name port path body-prefix pid-file-name
TARGETS=("mlflow 8201 /invocations inputs mlflow-$MODEL"
         "bento 8301 /predict inputs bento-$MODEL"
         "bentobatch 8301 /predict_batched inputs bento-$MODEL"
         "loopml-oip 9000 /v2/models/$MODEL/infer oip_v2 loopml"
         "loopml-inputs 9000 /invocations inputs loopml")
port_for() { [[ $MODEL == lr && $1 != 9000 ]] && echo $(($1 + 1)) || echo "$1"; }
pid_for() { [[ $1 == loopml ]] && echo "$LPID" || cat "$ROOT/pids/$1.pid"; }

for t in "${TARGETS[@]}"; do read -r name port path pfx _ <<< "$t"; port=$(port_for "$port")
  for rows in 1 100; do BODY_FILE="$B/${pfx}_$rows.json" wrk -t1 -c8 -d2s -s "$ANCHOR/post_json.lua" "http://127.0.0.1:$port$path" > /dev/null; done
done

n=${#TARGETS[@]}
cd "$ANCHOR"
for rep in $(seq 1 "$REPS"); do
  echo "== rep $rep $(date -Is) load: $(cat /proc/loadavg)"
  INPROC_THREADS=1 "$ROOT/venv-base/bin/python" "$ANCHOR/inproc_limit.py" "$ROOT/models" "$B" 3 \
    | sed "s/^{/{\"rep\": $rep, /" >> "$OUT/inproc.jsonl"
  for cell in $CELLS; do rows=${cell%%:*}; c=${cell##*:}
    for i in $(seq 0 $((n - 1))); do
      read -r name port path pfx pidname <<< "${TARGETS[$(( (i + rep - 1) % n ))]}"; port=$(port_for "$port")
      line=$(REP_LABEL=$rep CONCURRENCY=$c DURATION=$DURATION REPS=1 WARMUP=1s LABEL=$name RAW="$OUT/raw.txt" \
             CPU_PID=$(pid_for "$pidname") ./bench.sh "http://127.0.0.1:$port" "$path" "$B/${pfx}_$rows.json" "$rows" \
             || echo "$name FAILED")
      echo "rep=$rep rows=$rows load=$(cut -d' ' -f1 /proc/loadavg) $line"
    done
  done
done | tee "$OUT/progress.txt"

{ "$ANCHOR/servers.sh" rss "mlflow-$MODEL" "bento-$MODEL"
  hwm=0; for p in $LPID $(cat /proc/"$LPID"/task/*/children 2>/dev/null); do
    hwm=$((hwm + $(awk '/VmHWM/{print $2}' /proc/"$p"/status 2>/dev/null || echo 0))); done
  echo "loopml-$MODEL peak_rss_sum_MiB=$((hwm / 1024))"
  curl -s http://127.0.0.1:9000/metrics | grep -E '^loopml_serve_prediction_log_lag|^process_resident'
} | tee "$OUT/rss.txt"
echo "done: $OUT"
