#!/usr/bin/env bash
# Issue 11's data-constrained study: validation loss against training FLOPs
# for a masked-diffusion model and its AR twin trained on the same repeated
# data (tiny Shakespeare, 317,882 training tokens), written to
# docs/data_constrained.{csv,png}. Both have the shipped shape (4.26M
# parameters) and batch (32 x 128 tokens a step), so a step costs the same
# for both: FLOPs = 6 x parameters x tokens (forward and backward; attention
# at context 128 adds under 5%).
#
#   scripts/plot_data_constrained.sh MDM_RUN_DIR [AR_RUN_DIR]
#
# The MDM run of the README: `dllm train --objective mdm` with the recipe of
# scripts/train_shipped.sh (the shipped tokenizer's data) and --steps 4500
# at -t 1, stopped at step 1,755 and resumed with --steps 3000 -t 2 (the
# cosine re-fitted to end at 3,000 = 39 epochs, so that the run ended inside
# one session); the AR run is the shipped twin's log (models/shakespeare-ar,
# 1,500 steps). Needs gnuplot.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 MDM_RUN_DIR [AR_RUN_DIR]" >&2; exit 2; }
command -v gnuplot >/dev/null || { echo "plot: gnuplot is not installed (apt-get install gnuplot-nox)" >&2; exit 1; }
MDM=$1/train_log.csv
AR=${2:-models/shakespeare-ar}/train_log.csv
SHIPPED=models/shakespeare-mdm/train_log.csv  # the same objective, 1,500 steps
for f in "$MDM" "$AR" "$SHIPPED"; do [ -f "$f" ] || { echo "plot: $f not found" >&2; exit 1; }; done
PARAMS=4262144
TOKENS=4096  # 32 x 128 per step
TRAIN_TOKENS=317882
CSV=docs/data_constrained.csv
# One row per validation point: step, epochs, FLOPs, and each model's loss.
echo "step,epochs,train_flops,ar_val_nats,mdm_val_nelbo,shipped_mdm_val_nelbo" >"$CSV"
awk -F, -v p=$PARAMS -v t=$TOKENS -v n=$TRAIN_TOKENS '
  FNR == 1 { file++; next }
  $7 != "" { v[file, $1] = $7; steps[$1] = 1 }
  END {
    for (s in steps)
      printf "%d,%.1f,%.4e,%s,%s,%s\n", s, s * t / n, 6 * p * t * s, v[1, s],
             v[2, s], v[3, s]
  }' "$AR" "$MDM" "$SHIPPED" | sort -t, -k1,1n >>"$CSV"
best=$(awk -F, 'NR > 1 && $4 != "" && (b == "" || $4 < b) { b = $4 } END { print b }' "$CSV")
gnuplot <<GP
set terminal png size 900,520
set output 'docs/data_constrained.png'
set datafile separator ','
set key top right
set logscale x
set xlabel 'training FLOPs (6 x 4.26M parameters x tokens)'
set ylabel 'validation nats per token (diffusion: NELBO bound)'
set xrange [1e13:1e15]
set x2range [1e13:1e15]
set logscale x2
set x2tics ('1 epoch' 6*$PARAMS*$TRAIN_TOKENS, '10 epochs' 6*$PARAMS*$TRAIN_TOKENS*10, '50 epochs' 6*$PARAMS*$TRAIN_TOKENS*50)
set grid
plot '$CSV' using 3:(\$4 > 0 ? \$4 : 1/0) with linespoints lw 2 pt 7 title 'AR twin', \
     '$CSV' using 3:(\$5 > 0 ? \$5 : 1/0) with linespoints lw 2 pt 5 title 'masked diffusion', \
     '$CSV' using 3:(\$6 > 0 ? \$6 : 1/0) with linespoints lw 1 pt 4 title 'masked diffusion, shipped (1,500-step schedule)', \
     $best with lines dt 2 lc rgb 'gray' title 'AR best ($best)'
GP
echo "plot: wrote $CSV and docs/data_constrained.png"
