#!/usr/bin/env bash
# Plots train_log.csv files (from `dllm train`) into one PNG: training loss
# per step and validation loss (nats/token) where it was measured.
#   scripts/plot_loss.sh out.png RUN_DIR [RUN_DIR ...]
# Needs gnuplot (Debian: apt-get install gnuplot-nox).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OUT.png RUN_DIR [RUN_DIR ...]" >&2; exit 2; }
command -v gnuplot >/dev/null || { echo "plot: gnuplot is not installed (apt-get install gnuplot-nox)" >&2; exit 1; }
out=$1; shift
plots=""
for d in "$@"; do
  [ -f "$d/train_log.csv" ] || { echo "plot: $d/train_log.csv not found" >&2; exit 1; }
  name=$(basename "$d")
  plots+="'$d/train_log.csv' using 1:2 with lines lw 1 title '$name train', "
  plots+="'$d/train_log.csv' using 1:(\$7 > 0 ? \$7 : 1/0) with linespoints lw 2 pt 7 title '$name validation', "
done
gnuplot <<GP
set terminal png size 900,500
set output '$out'
set datafile separator ','
set key top right
set xlabel 'step'
set ylabel 'nats per token (diffusion: NELBO bound)'
set grid
plot ${plots%, }
GP
echo "plot: wrote $out"
