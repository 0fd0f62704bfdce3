#!/usr/bin/env bash
# Ray vs in-process on this machine: 10M-row batch score and a 40-trial search, each way.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=bench/ray/results.jsonl
: > "$OUT"
for mode in inprocess ray; do
  python bench/ray/bench_ray.py score --rows "${ROWS:-10000000}" --mode "$mode" | tee -a "$OUT"
done
for mode in inprocess ray; do
  python bench/ray/bench_ray.py search --trials "${TRIALS:-40}" --mode "$mode" | tee -a "$OUT"
done
