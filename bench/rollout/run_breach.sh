#!/usr/bin/env bash
# Breach -> rollback seconds, interleaved: for each rep, every config once (same minutes, same box).
#   REPS=3 MODES="start mid" ./run_breach.sh > out.txt
# mode mid holds the step for 120 s (min_seconds), so the breach (20 s after traffic starts) falls well inside
# the step under every config (with the 30 s default it can coincide with the end of the hold). Mode healthy:
# the candidate never fails; 60 s of traffic, and any rollback is a false one.
# Configs: new = today's defaults (rollout thread every 1 s, interval_s 1, early_alpha 0.001), prediction log on
# its library defaults; new_roll1 = the same with the log rolling every 1 s (rows readable within ~1-2 s, the
# target of the prediction-log work); old = the previous cadence (main tick only, every 5 s; interval_s 10;
# no early breach), log defaults.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPS=${REPS:-3}; MODES=${MODES:-"start mid"}; CONFIGS=${CONFIGS:-"new new_roll1 old"}
declare -A ARGS=(
  [new]=""
  [new_roll1]="--roll-s 1"
  [old]="--rollout-tick 0 --set interval_s=10 --set early_alpha=0"
)
declare -A MODE_ARGS=([start]="" [mid]="--set min_seconds=120" [healthy]="--set min_seconds=600 --healthy-s 60")
for rep in $(seq 1 "$REPS"); do
  for mode in $MODES; do
    for cfg in $CONFIGS; do
      # shellcheck disable=SC2086
      python "$HERE/breach_bench.py" --runs 1 --mode "$mode" ${MODE_ARGS[$mode]} ${ARGS[$cfg]} \
        | sed -e "s/^run 1: /RESULT rep=$rep mode=$mode config=$cfg /" | grep -E '^(RESULT|#)'
    done
  done
done
