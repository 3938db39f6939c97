#!/usr/bin/env bash
# The recipe of the shipped code models (models/code-mdm and its AR twin
# models/code-ar): TheAlgorithms/Python (1,385 files, MIT, commit
# f5988cc0 in ../shared/data/thealgorithms-python), split by file, a BPE
# tokenizer trained on the training files, then a full-attention
# masked-diffusion model and an autoregressive model of the same shape trained
# with the same compute (same steps, batch and context), then their validation
# loss and held-out infilling exact match. Run from anywhere; needs
# ../shared/data and a built ./build/dllm (DLLM=... to use another binary).
# Times are measured on 2 cores shared with other people's builds (see the
# README, "The shipped code models").
set -euo pipefail
cd "$(dirname "$0")/.."
DLLM=${DLLM:-./build/dllm}
THREADS=${THREADS:-1}
ARCHIVE=../shared/data/thealgorithms-python/thealgorithms-python-py.tar.gz
WORK=${WORK:-/tmp/dllm-code}
rm -rf "$WORK"
mkdir -p "$WORK/src" "$WORK/heldout" "$WORK/tok"
tar xzf "$ARCHIVE" -C "$WORK/src"

# The held-out split, by file: all *.py paths sorted bytewise (LC_ALL=C),
# every 20th one (1-based positions 20, 40, ...) held out: 69 files of 1,385.
# Held-out files are copied (with their folders) under $WORK/heldout for
# `dllm eval infill --files`.
(cd "$WORK/src" && find . -name '*.py' | LC_ALL=C sort) > "$WORK/all.txt"
awk 'NR % 20 != 0' "$WORK/all.txt" > "$WORK/train_files.txt"
awk 'NR % 20 == 0' "$WORK/all.txt" > "$WORK/heldout_files.txt"
(cd "$WORK/src" && xargs -d '\n' cp --parents -t "$WORK/heldout") \
  < "$WORK/heldout_files.txt"

# Corpus text: every file preceded by <|endoftext|> (the tokenizer splits the
# special token out, so each file starts with it in the token stream: the model
# learns where files begin, and infilling near a file's start can say so).
# The training files come first, the held-out ones last.
concat() {  # list -> text on stdout
  while IFS= read -r f; do
    printf '<|endoftext|>'
    cat "$WORK/src/$f"
  done < "$1"
}
concat "$WORK/train_files.txt" > "$WORK/train.txt"
concat "$WORK/heldout_files.txt" > "$WORK/val.txt"
cat "$WORK/train.txt" "$WORK/val.txt" > "$WORK/corpus.txt"

# The tokenizer sees only the training files (without the separators).
(cd "$WORK/src" && xargs -d '\n' cat) < "$WORK/train_files.txt" \
  > "$WORK/tok_train.txt"
$DLLM tokenizer train --vocab-size 4096 --special "<|endoftext|>,<|mask|>" \
  "$WORK/tok_train.txt" -o "$WORK/tok/tokenizer.json"

# `dllm data prepare` keeps as validation the text after the first line start
# at or after (1 - F) of the bytes. train.txt ends with a newline, so
# F = (val bytes + 0.5) / all bytes puts the cut exactly between the two
# parts: the validation split is exactly the held-out files.
TRAIN_BYTES=$(stat -c %s "$WORK/train.txt")
ALL_BYTES=$(stat -c %s "$WORK/corpus.txt")
FRAC=$(awk -v t="$TRAIN_BYTES" -v a="$ALL_BYTES" \
  'BEGIN { printf "%.12f", (a - t + 0.5) / a }')
$DLLM data prepare --tokenizer "$WORK/tok" "$WORK/corpus.txt" \
  --val-fraction "$FRAC" -o "$WORK/data"
grep -q "\"train_bytes\": $TRAIN_BYTES" "$WORK/data/meta.json" || {
  echo "data prepare did not cut at the held-out boundary" >&2
  exit 1
}

# Both models: the Shakespeare shape with a 4k vocabulary and 256-token
# windows, 3,000 steps of 8 x 256 tokens (6.1M tokens, 5.8 epochs). Only
# --objective differs. They train side by side, as measured: on 2 cores shared
# with nothing else, one thread each (THREADS=1): 38 min 3 s (mdm) and
# 38 min 53 s (ar). (600 steps left the diffusion model unable to infill.)
SHAPE="--layers 4 --d-model 256 --heads 4 --ffn 704 --context 256
       --batch ${BATCH:-8} --steps ${STEPS:-3000}
       --lr 2e-3 --min-lr 2e-4 --warmup 50 --eval-every 200 --eval-windows 16
       --ckpt-every 100 --seed 1 --save-dtype BF16 -t $THREADS"
nice -n 10 $DLLM train --data "$WORK/data" -o "$WORK/mdm" --objective mdm \
  $SHAPE > "$WORK/mdm.log" 2>&1 &
MDM_PID=$!
nice -n 10 $DLLM train --data "$WORK/data" -o "$WORK/ar" --objective ar \
  $SHAPE > "$WORK/ar.log" 2>&1 &
AR_PID=$!
wait "$MDM_PID"  # a failed run stops the script (set -e)
wait "$AR_PID"

# Final numbers on the whole validation split, in the same units (the
# diffusion estimate takes about 12 minutes here).
nice -n 10 $DLLM eval loss -m "$WORK/mdm" --data "$WORK/data" --context 256 \
  --windows 256 --grid 16 --draws 4 -t "$THREADS"
nice -n 10 $DLLM eval loss -m "$WORK/ar" --data "$WORK/data" --context 256 \
  --windows 256 -t "$THREADS"

for m in mdm ar; do
  mkdir -p models/code-$m
  cp "$WORK/$m"/{config.json,model.safetensors,tokenizer.json,train_log.csv} \
    models/code-$m/
  # The special tokens by name (no chat template: these are not chat models).
  printf '{\n  "eos_token": "<|endoftext|>",\n  "mask_token": "<|mask|>"\n}\n' \
    > models/code-$m/tokenizer_config.json
done
# Defaults for `dllm generate` (one token per step in a single block: the
# infilling setting the README measures).
cat > models/code-mdm/generation_config.json << 'EOF'
{
  "max_new_tokens": 32,
  "do_sample": false,
  "steps": 32
}
EOF
cat > models/code-ar/generation_config.json << 'EOF'
{
  "max_new_tokens": 64,
  "do_sample": false
}
EOF

# Held-out infilling: the same 500 lines for both models (the MDM sees the
# prefix and the suffix, the AR twin only the prefix), greedy; first with the
# true line's length (--span oracle), then with a fixed 32-token budget. The
# MDM took 2 min 48 s and 9 min 8 s here, the AR twin 22 s and 32 s.
for m in mdm ar; do
  nice -n 10 $DLLM eval infill -m models/code-$m --files "$WORK/heldout" \
    --lines 500 --temperature 0 -t "$THREADS" > "$WORK/infill-$m.json"
  nice -n 10 $DLLM eval infill -m models/code-$m --files "$WORK/heldout" \
    --lines 500 --span fixed --gen-length 32 --temperature 0 -t "$THREADS" \
    > "$WORK/infill-$m-fixed.json"
done
