#!/usr/bin/env bash
# loopml's side of the serving anchor (../../../shared/bench/serving): serve the same model
# files with loopml (log ON, validation ON) and measure them with the same bench.sh, interleaved
# with the hand-written baseline so the ratios come from the same minutes on the same machine.
#   ANCHOR=/work/shared/bench/serving  ROOT=/tmp/loopml-bench/serving
#   DURATION=5s REPS=2 BATCH=1024 WAIT_MS=2 ./run_loopml.sh [hgb|lr]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ANCHOR=${ANCHOR:-/work/shared/bench/serving}; ROOT=${ROOT:-/tmp/loopml-bench/serving}
MODEL=${1:-hgb}; DURATION=${DURATION:-5s}; REPS=${REPS:-2}; BATCH=${BATCH:-1024}; WAIT_MS=${WAIT_MS:-2}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
[[ -f $ROOT/models/$MODEL.joblib ]] || python "$ANCHOR/make_model.py" "$ROOT/models"
mkdir -p "$ROOT/logs"
start() {  # name port cmd... -> pid in $ROOT/logs/name.pid
  local name=$1 port=$2; shift 2
  (exec setsid "$@" >"$ROOT/logs/$name.log" 2>&1 < /dev/null) & echo $! > "$ROOT/logs/$name.pid"
  for _ in $(seq 1 120); do curl -fs -o /dev/null "http://127.0.0.1:$port/$3" 2>/dev/null && break
    curl -fs -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.5; done
}
stop() { local pid; pid=$(cat "$ROOT/logs/$1.pid"); kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done; kill -KILL -- "-$pid" 2>/dev/null || true; }
trap 'stop loopml-$MODEL; stop base1-$MODEL' EXIT
start base1-$MODEL 8101 env MODEL_PATH="$ROOT/models/$MODEL.joblib" uvicorn baseline_server:app --app-dir "$ANCHOR" \
  --host 127.0.0.1 --port 8101 --workers 1 --loop uvloop --http httptools --no-access-log --log-level warning
start loopml-$MODEL 9000 python "$HERE/loopml_bench_server.py" "$ROOT/models" "$MODEL" 9000 \
  --max-batch-size "$BATCH" --max-batch-wait-ms "$WAIT_MS"
BPID=$(cat "$ROOT/logs/base1-$MODEL.pid"); LPID=$(cat "$ROOT/logs/loopml-$MODEL.pid")
cd "$ANCHOR"
for rep in $(seq 1 "$REPS"); do
  for cell in "1 1" "1 8" "1 64" "100 8"; do
    set -- $cell; rows=$1; c=$2
    common=(env CONCURRENCY=$c DURATION=$DURATION REPS=1 WARMUP=1s REP_LABEL=$rep)
    "${common[@]}" LABEL=base1-$MODEL CPU_PID=$BPID ./bench.sh http://127.0.0.1:8101 /predict bodies/inputs_$rows.json $rows
    "${common[@]}" LABEL=loopml-$MODEL-oip CPU_PID=$LPID ./bench.sh http://127.0.0.1:9000 /v2/models/$MODEL/infer bodies/oip_v2_$rows.json $rows
    "${common[@]}" LABEL=loopml-$MODEL-mlflow-inputs CPU_PID=$LPID ./bench.sh http://127.0.0.1:9000 /invocations bodies/inputs_$rows.json $rows
  done
done
curl -s http://127.0.0.1:9000/metrics | grep -E '^loopml_serve_(batch_rows|batch_requests)_(sum|count)|^loopml_serve_requests_total|^loopml_serve_prediction_log_lag|^process_resident'
