#!/usr/bin/env bash
# The speed/quality trade-off of the main decoding schedules on the shipped
# Shakespeare models: tokens/s against generative quality (the AR twin's NLL
# of the samples, lower is better; and their unigram entropy, so that
# repetitive text cannot look good), for fixed step counts, threshold values
# and caches, written to docs/speed_quality.{csv,png}. Run it on a quiet
# machine: the speeds are wall-clock. Needs ../shared/data and gnuplot.
#   N_PROMPTS=16 bash scripts/plot_speed_quality.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DLLM=${DLLM:-./build/dllm}
N=${N_PROMPTS:-16}
TEXT=../shared/data/tinyshakespeare/input.txt
[ -f "$TEXT" ] || { echo "plot: $TEXT not found" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "plot: gnuplot is not installed (apt-get install gnuplot-nox)" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# The 32 most frequent speaker lines of the play as prompts.
grep -E "^[A-Z][A-Z ]+:$" "$TEXT" | sort | uniq -c | sort -rn | head -32 |
  awk '{$1=""; print substr($0,2)}' > "$WORK/names.txt"
CSV=docs/speed_quality.csv
# PLOT_ONLY=1 redraws the PNG from an existing CSV.
if [ -z "${PLOT_ONLY:-}" ]; then
echo "model,setting,tokens_per_s,judge_nll,unigram_entropy_nats,tokens_per_forward" > "$CSV"

# One bench run; appends its summaries as rows labelled $2 (+ preset).
bench() {
  local model=$1 label=$2; shift 2
  $DLLM bench generate -m "models/$model" --ar-model models/shakespeare-ar \
    --prompts "$WORK/names.txt" --n-prompts "$N" --gen-length 64 --temperature 0.7 \
    --reference-text "$TEXT" "$@" 2>/dev/null |
    /usr/bin/python3 -c '
import json, sys
model, label = sys.argv[1], sys.argv[2]
for line in sys.stdin:
    j = json.loads(line)
    if j.get("what") != "summary":
        continue
    suffix = {"dual": " + dual cache", "threshold-dual": " + dual cache",
              "prefix": " + prefix cache"}.get(j["preset"], "")
    if model == "shakespeare-bd":
        suffix = ""  # its dual cache is exact: the plain way to run it
    name = label + suffix
    print("%s,%s,%.2f,%.4f,%.4f,%.3f" % (model, name, j.get("tokens_per_s", 0),
          j["judge_nll"], j["unigram_entropy_nats"], j.get("tokens_per_forward", 0)))
' "$model" "$label" >> "$CSV"
}

# Full attention (shakespeare-mdm, blocks of 8): steps, caches, thresholds.
for steps in 64 32 16; do
  bench shakespeare-mdm "mdm $steps steps" --block-length 8 --steps "$steps" --presets uncached,dual
done
for tau in 0.9 0.7 0.5; do
  bench shakespeare-mdm "mdm threshold $tau" --block-length 8 --threshold "$tau" --presets threshold,threshold-dual
done
# Block diffusion (shakespeare-bd, blocks of 4): the dual cache is exact for
# it (finished blocks' keys and values; later blocks are invisible).
for steps in 64 32 16; do
  bench shakespeare-bd "bd $steps steps" --steps "$steps" --presets dual
done
for tau in 0.9 0.7 0.5; do
  bench shakespeare-bd "bd threshold $tau" --threshold "$tau" --presets threshold-dual
done
# The AR twin with its KV cache, and real text (quality only).
bench shakespeare-bd "ar" --presets ar
bench shakespeare-bd "real text" --presets real
fi
cat "$CSV"

real=$(awk -F, '$2 == "real text" { print $4 }' "$CSV")
gnuplot <<GP
set terminal png size 1100,650
set output 'docs/speed_quality.png'
set datafile separator ','
set key bottom left box opaque
set xlabel 'tokens per second (2 threads)'
set ylabel 'NLL of the samples under the AR twin (nats/token, lower = likelier)'
set logscale x
set grid
set title 'Speed against quality: the shipped Shakespeare models, 64 tokens at T 0.7'
set xrange [100:10000]
# The full-attention model is never confident enough for a threshold to
# commit more than one token a step: those points sit on the 64-step ones,
# unlabelled (the CSV has them).
plot '$CSV' every ::1 using (\$3 > 0 ? \$3 : 1/0):4:(strstrt(strcol(2), 'mdm threshold') ? '' : strcol(2)) \
       with labels left offset 0.8,0 font ',8' notitle, \
     '' every ::1 using (strcol(1) eq 'shakespeare-mdm' && \$3 > 0 ? \$3 : 1/0):4 with points pt 7 ps 1.4 title 'shakespeare-mdm (full attention)', \
     '' every ::1 using (strcol(1) eq 'shakespeare-bd' && strstrt(strcol(2), 'bd') == 1 ? \$3 : 1/0):4 with points pt 5 ps 1.4 title 'shakespeare-bd (block diffusion)', \
     '' every ::1 using (strcol(2) eq 'ar' ? \$3 : 1/0):4 with points pt 9 ps 2 title 'AR twin (KV cache)', \
     $real with lines dt 2 title 'real text'
GP
echo "plot: wrote docs/speed_quality.png and $CSV"
