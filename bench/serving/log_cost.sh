#!/usr/bin/env bash
# What the prediction log costs over HTTP: the same loopml server with the log ON and OFF
# (validation ON in both), cells interleaved so both sides share the same minutes.
#   ANCHOR=/work/shared/bench/serving  ROOT=/tmp/loopml-bench/serving  DURATION=5s REPS=3 ./log_cost.sh [hgb|lr]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ANCHOR=${ANCHOR:-/work/shared/bench/serving}; ROOT=${ROOT:-/tmp/loopml-bench/serving}
MODEL=${1:-hgb}; DURATION=${DURATION:-5s}; REPS=${REPS:-3}; BATCH=${BATCH:-1024}; WAIT_MS=${WAIT_MS:-2}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
[[ -f $ROOT/models/$MODEL.joblib ]] || python "$ANCHOR/make_model.py" "$ROOT/models"
mkdir -p "$ROOT/logs"
start() {  # name port args...
  local name=$1 port=$2; shift 2
  (exec setsid python "$HERE/loopml_bench_server.py" "$ROOT/models" "$MODEL" "$port" \
     --max-batch-size "$BATCH" --max-batch-wait-ms "$WAIT_MS" "$@" >"$ROOT/logs/$name.log" 2>&1 < /dev/null) &
  echo $! > "$ROOT/logs/$name.pid"
  for _ in $(seq 1 120); do curl -fs -o /dev/null "http://127.0.0.1:$port/v2/health/ready" && break; sleep 0.5; done
}
stop() { local pid; pid=$(cat "$ROOT/logs/$1.pid"); kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done; kill -KILL -- "-$pid" 2>/dev/null || true; }
trap 'stop log-on; stop log-off' EXIT
start log-on 9010
start log-off 9011 --no-log
ON=$(cat "$ROOT/logs/log-on.pid"); OFF=$(cat "$ROOT/logs/log-off.pid")
cd "$ANCHOR"
for rep in $(seq 1 "$REPS"); do
  for cell in "1 64" "100 8"; do
    set -- $cell; rows=$1; c=$2
    common=(env CONCURRENCY=$c DURATION=$DURATION REPS=1 WARMUP=1s REP_LABEL=$rep)
    "${common[@]}" LABEL=log-on CPU_PID=$ON ./bench.sh http://127.0.0.1:9010 /v2/models/$MODEL/infer bodies/oip_v2_$rows.json $rows
    "${common[@]}" LABEL=log-off CPU_PID=$OFF ./bench.sh http://127.0.0.1:9011 /v2/models/$MODEL/infer bodies/oip_v2_$rows.json $rows
  done
done
for p in 9010 9011; do curl -s http://127.0.0.1:$p/metrics | grep -E '^process_resident_memory_bytes' | sed "s/^/port $p: /"; done
