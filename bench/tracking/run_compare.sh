#!/usr/bin/env bash
# Tracking/registry benchmark, side by side: MLflow 3 (sqlite backend, no server) vs loopml
# (embedded SQLite workspace), same workloads (bench_mlflow.py), then the ratios.
#
# Usage:  bash bench/tracking/run_compare.sh               # both, default workloads
#         ONLY=a,b,c REPEATS=3 bash bench/tracking/run_compare.sh
#         SKIP_MLFLOW=1 bash bench/tracking/run_compare.sh  # reuse the last MLflow JSON
# MLflow lives in its own venv (slow to install, done once): /tmp/loopml-bench/mlflow.
# loopml runs with the interpreter on PATH (`python`, where loopml is installed).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=/tmp/loopml-bench
OUT=${OUT:-$ROOT/tracking/results}
VENV=$ROOT/mlflow
ONLY=${ONLY:-a,b,c,d}
REPEATS=${REPEATS:-3}
INFER=${INFER:-1}  # MLflow's default log_model spawns a ~3.5 s subprocess per call
mkdir -p "$OUT" "$ROOT/tracking"
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true

if [[ "${SKIP_MLFLOW:-0}" != 1 ]]; then
  if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c "import mlflow" 2>/dev/null; then
    echo "# installing mlflow into $VENV (once)"
    python -m venv "$VENV"
    "$VENV/bin/pip" install -q mlflow
  fi
  echo "# mlflow $("$VENV/bin/python" -c 'import mlflow; print(mlflow.__version__)') (sqlite backend)"
  (cd "$ROOT/tracking" && "$VENV/bin/python" "$HERE/bench_mlflow.py" --backend sqlite \
      --only "$ONLY" --repeats "$REPEATS" --infer-calls "$INFER" --json "$OUT/mlflow-sqlite.json") \
    | tee "$OUT/mlflow-sqlite.log"
fi

echo "# loopml $(python -c 'import loopml, importlib.metadata as m; print(m.version("loopml"))')"
(cd "$ROOT/tracking" && python "$HERE/bench_loopml.py" --only "$ONLY" --repeats "$REPEATS" \
    --infer-calls "$INFER" --json "$OUT/loopml.json") | tee "$OUT/loopml.log"

echo
echo "# side by side (ratio column: loopml / MLflow; below 1 means loopml is faster)"
python "$HERE/summarize.py" "$OUT/mlflow-sqlite.json" "$OUT/loopml.json" | tee "$OUT/summary.md"
python - "$OUT/mlflow-sqlite.json" "$OUT/loopml.json" <<'PY'
import json, sys
ref, new = ({r["figure"]: r for r in json.load(open(p))["figures"]} for p in sys.argv[1:3])
print("\n# speed-up of loopml over MLflow (MLflow ms/op / loopml ms/op), wall and CPU")
for k in ref:
    if k in new and new[k]["per_op_ms"]:
        w = ref[k]["per_op_ms"] / new[k]["per_op_ms"]
        c = (ref[k]["cpu_per_op_ms"] or 0) / new[k]["cpu_per_op_ms"] if new[k].get("cpu_per_op_ms") else None
        print(f"{k:<30} wall {w:8.1f}x" + (f"   cpu {c:8.1f}x" if c else ""))
PY
