#!/usr/bin/env bash
# Data-parallel training on one machine: tokens/s of 1 process x 2 threads
# against 2 processes x 1 thread (mpirun), with and without overlapping the
# gradient all-reduce with the backward pass, and the share of the step spent
# communicating. The shipped models' shape (4 layers, d 256) on tiny
# Shakespeare. Needs ../shared/data and a build with MPI.
#   STEPS=30 OBJECTIVES="mdm ar" bash scripts/bench_ddp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DLLM=${DLLM:-./build/dllm}
STEPS=${STEPS:-30}
OBJECTIVES=${OBJECTIVES:-"mdm ar"}
WORK=${WORK:-/tmp/dllm-bench-ddp}
CORPUS=../shared/data/tinyshakespeare/input.txt
[ -f "$CORPUS" ] || { echo "bench_ddp: $CORPUS not found" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "bench_ddp: mpirun not found (openmpi-bin)" >&2; exit 1; }
MPIRUN="mpirun --oversubscribe"
[ "$(id -u)" -eq 0 ] && MPIRUN+=" --allow-run-as-root"
mkdir -p "$WORK"
[ -f "$WORK/data/meta.json" ] ||
  $DLLM data prepare --tokenizer models/shakespeare-ar "$CORPUS" -o "$WORK/data" >/dev/null
SHAPE="--layers 4 --d-model 256 --heads 4 --ffn 704 --batch 32 --context 128 --steps $STEPS
       --warmup 10 --eval-every 0 --ckpt-every 0 --log-every 1000"

# Tokens/s over the steps after the first three (warm-up): all their tokens
# over all their time, from the log's ms and tokens_per_s columns.
tps() { awk -F, 'NR > 4 { tok += $6 * $5 / 1000; t += $5 / 1000 } END { printf "%.0f", tok / t }' "$1/train_log.csv"; }
comm() { grep -o 'communication took [0-9.]*%' "$1" | grep -o '[0-9.]*%' || echo "-"; }

printf "%-5s %-24s %10s %8s\n" objective layout tokens/s comm
for obj in $OBJECTIVES; do
  run() {  # name, launcher, dllm options
    local name=$1 launcher=$2; shift 2
    rm -rf "$WORK/$obj-$name"
    $launcher $DLLM train --data "$WORK/data" --objective "$obj" $SHAPE "$@" \
      -o "$WORK/$obj-$name" > "$WORK/$obj-$name.txt" 2>&1
    printf "%-9s %-24s %10s %8s\n" "$obj" "$name" "$(tps "$WORK/$obj-$name")" \
      "$(comm "$WORK/$obj-$name.txt")"
  }
  run "1 x 2 threads" "" -t 2
  run "2 x 1 thread" "$MPIRUN -np 2" -t 1
  run "2 x 1 thread, no overlap" "$MPIRUN -np 2" -t 1 --bucket-mb 0
done
