#!/usr/bin/env bash
# dllm beside llama.cpp on the same GGUF files, in one run (issue 10's
# side-by-side). Prints one JSON line per case: both engines' wall time for
# the whole generation (model load excluded), forward passes, time per pass,
# their ratio, and whether the two produced the same tokens.
#
# Needs a dllm build (build/dllm) and a llama.cpp build with the targets
# llama-diffusion-cli and llama-bench (see README "Beside llama.cpp"), and
# ../shared/data for the corpus the 32k tokenizer is trained on.
#
#   LLAMA_CPP=../peers/llama.cpp scripts/bench_llamacpp.sh [diffusion|ar|all]
#
# Environment: THREADS (2), GEN (128 generated tokens), MODELS ("4x256
# 12x768"), PROMPTS ("short long": 32 and 384 tokens), SCHEDULES ("one block32"),
# DTYPES ("f16"; add q8_0), WORK (/tmp/dllm-vs-llamacpp).
#
# The like-for-like settings: greedy with top-k 1 on both sides. llama.cpp's
# diffusion sampler always ends in a random draw (its `dist` sampler), so
# top-k 1 is what makes it deterministic; every position then has confidence
# 1 and both engines commit the leftmost masked positions first (llama.cpp
# breaks ties by position, dllm's maskgit-plus does the same). llama.cpp
# counts its blocks over the whole canvas, prompt included (blocks start at
# the prompt's end and the ones past the canvas cost one forward pass each
# before it notices they are empty): its steps are sized so that each real
# block gets the same number of steps as dllm's, and both times are reported.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DLLM=${DLLM:-$ROOT/build/dllm}
LLAMA_CPP=${LLAMA_CPP:-$ROOT/../peers/llama.cpp}
# Absolute paths: the script runs in $WORK.
[ -d "$LLAMA_CPP" ] && LLAMA_CPP=$(cd "$LLAMA_CPP" && pwd)
LLAMA_BIN=$LLAMA_CPP/build/bin
DATA=${DATA:-$ROOT/../shared/data}
WORK=${WORK:-/tmp/dllm-vs-llamacpp}
THREADS=${THREADS:-2}
GEN=${GEN:-128}
MODELS=${MODELS:-"4x256 12x768"}
PROMPTS=${PROMPTS:-"short long"}
SCHEDULES=${SCHEDULES:-"one block32"}
DTYPES=${DTYPES:-"f16"}
WHAT=${1:-all}
PY=/usr/bin/python3

die() {
  echo "bench_llamacpp: $*" >&2
  exit 1
}
[ -x "$DLLM" ] && DLLM=$(cd "$(dirname "$DLLM")" && pwd)/$(basename "$DLLM")
[ -x "$DLLM" ] || die "no dllm at $DLLM (build it: scripts/build.sh)"
[ -x "$LLAMA_BIN/llama-diffusion-cli" ] ||
  die "no llama-diffusion-cli in $LLAMA_BIN (set LLAMA_CPP to a llama.cpp checkout built as README 'Beside llama.cpp' says)"
[ -f "$DATA/tinyshakespeare/input.txt" ] || die "no $DATA/tinyshakespeare/input.txt"
mkdir -p "$WORK"
cd "$WORK"

# A 32k byte-level BPE, so that the head is the size of LLaDA-class
# benchmarks' (32k vocabulary); ids 0 and 1 are EOS and [MASK].
if [ ! -f tok32k.json ]; then
  cat "$DATA/tinyshakespeare/input.txt" >corpus.txt
  code=$(ls "$DATA"/thealgorithms-python/*.tar.gz 2>/dev/null | head -1 || true)
  if [ -n "$code" ]; then
    mkdir -p code && tar xzf "$code" -C code
    find code -name '*.py' | sort | xargs cat >>corpus.txt
  fi
  "$DLLM" tokenizer train --vocab-size 32000 --special "<|endoftext|>,<|mask|>" \
    corpus.txt -o tok32k.json >&2
fi

# A chat template that prints the message as is: llama-diffusion-cli always
# applies the model's template (chatml when the file has none), so this makes
# its prompt the same bytes as dllm's --prompt.
plain_template='{% for m in messages %}{{ m["content"] }}{% endfor %}'

# make_model NAME INIT_ARGS...: a random-weight F16 model folder and its GGUFs.
make_model() {
  local name=$1
  shift
  if [ ! -f "$name/model.safetensors" ]; then
    "$DLLM" init -o "$name" "$@" --vocab 32000 --mask-id 1 --eos-id 0 \
      --dtype F16 --force >&2
    cp tok32k.json "$name/tokenizer.json"
    $PY -c 'import json,sys; json.dump({"chat_template": sys.argv[1], "eos_token": "<|endoftext|>"}, open(sys.argv[2], "w"))' \
      "$plain_template" "$name/tokenizer_config.json"
  fi
  for dt in $DTYPES; do
    [ -f "$name-$dt.gguf" ] || "$DLLM" convert "$name" "$name-$dt.gguf" --outtype "$dt" >&2
  done
}

# Prompts of exactly 32 and 384 tokens of Shakespeare.
make_prompts() {
  [ -f long.txt ] && return
  head -c 4000 "$DATA/tinyshakespeare/input.txt" >p.txt
  for pair in short:32 long:384; do
    local ids
    ids=$("$DLLM" tokenize -m tok32k.json --file p.txt |
      awk -v n="${pair#*:}" '{for (i = 1; i <= n && i <= NF; i++) printf "%s ", $i}')
    "$DLLM" detokenize -m tok32k.json --ids "$ids" >"${pair%%:*}.txt"
  done
}

# llama_diffusion GGUF PROMPT_FILE CANVAS BLOCK STEPS -> "ms passes text" JSON
llama_diffusion() {
  local out
  out=$("$LLAMA_BIN/llama-diffusion-cli" -m "$1" -p "$(cat "$2")" -ub "$3" -b "$3" -c "$3" \
    --diffusion-block-length "$4" --diffusion-steps "$5" --diffusion-algorithm 4 \
    --temp 0 --top-k 1 --seed 0 -t "$THREADS" 2>&1) ||
    die "llama-diffusion-cli failed: $(echo "$out" | tail -5)"
  # Its stderr: progress, "total time: ...", one log-prefix line, then the
  # generated text followed by one newline of its own.
  echo "$out" | $PY -c '
import json, re, sys
s = sys.stdin.read()
m = re.search(r"total time: ([0-9.]+)ms, time per step: ([0-9.]+)ms", s)
rest = s[m.end():].split("\n", 2)[2] if m else ""  # $(...) dropped the trailing newlines
print(json.dumps({"ms": float(m.group(1)) if m else -1, "text": rest[:-1] if rest.endswith("\n") else rest}))'
}

# dllm_generate GGUF PROMPT_FILE BLOCK STEPS EXTRA... -> JSON
dllm_generate() {
  local gguf=$1 prompt=$2 block=$3 steps=$4
  shift 4
  "$DLLM" generate -m "$gguf" --prompt "$(cat "$prompt")" --gen-length "$GEN" \
    --block-length "$block" --steps "$steps" --sampler maskgit-plus --top-k 1 \
    --schedule blocks --no-early-stop -t "$THREADS" --json "$@" 2>/dev/null |
    $PY -c 'import json,sys; j=json.load(sys.stdin); print(json.dumps({"ms": 1000*j["seconds"], "passes": j["forward_passes"], "text": j["text"]}))'
}

run_diffusion() {
  for shape in $MODELS; do
    local L=${shape%x*} D=${shape#*x}
    make_model "llada-$shape" --layers "$L" --d-model "$D" --heads $((D / 64)) --ffn $((D * 8 / 3 / 64 * 64))
  done
  make_prompts
  for shape in $MODELS; do
    for dt in $DTYPES; do
      local gguf="$WORK/llada-$shape-$dt.gguf"
      for p in $PROMPTS; do
        local P
        P=$("$DLLM" tokenize -m tok32k.json --file "$p.txt" --count)
        local canvas=$((P + GEN))
        for sched in $SCHEDULES; do
          local block lblock lsteps
          if [ "$sched" = one ]; then
            block=$GEN lblock=$canvas lsteps=$GEN
          else
            block=${sched#block}
            lblock=$block
            lsteps=$((canvas / block * block))  # block steps per block, as dllm
          fi
          # llama.cpp's forward passes: its real blocks' steps, then one pass
          # for each block past the canvas's end (empty: it stops there).
          local nblocks=$((canvas / lblock)) real=$(((GEN + lblock - 1) / lblock))
          local lforwards=$((real * lsteps / nblocks + nblocks - real))
          local l d c t
          l=$(llama_diffusion "$gguf" "$p.txt" "$canvas" "$lblock" "$lsteps")
          d=$(dllm_generate "$gguf" "$p.txt" "$block" "$GEN")
          c=$(dllm_generate "$gguf" "$p.txt" "$block" "$GEN" --cache prefix)
          $PY - "$l" "$d" "$c" "$shape" "$dt" "$p" "$P" "$sched" "$lforwards" <<'EOF'
import json, sys
l, d, c = (json.loads(a) for a in sys.argv[1:4])
shape, dt, p, P, sched, lforwards = sys.argv[4:10]
out = {"bench": "llamacpp-diffusion", "model": "llada-" + shape, "dtype": dt,
       "prompt": p, "prompt_tokens": int(P), "schedule": sched,
       "llama_ms": round(l["ms"], 1), "llama_forwards": int(lforwards),
       "dllm_ms": round(d["ms"], 1), "dllm_forwards": d["passes"],
       "speedup": round(l["ms"] / d["ms"], 2),
       "same_text": l["text"].rstrip("\n") == d["text"].rstrip("\n"),
       # Where they part, when they do (characters into the text).
       **({} if l["text"].rstrip("\n") == d["text"].rstrip("\n") else
          {"same_prefix_chars": next((i for i, (a, b) in enumerate(zip(l["text"], d["text"])) if a != b),
                                     min(len(l["text"]), len(d["text"]))),
           "text_chars": len(d["text"])}),
       "dllm_prefix_cache_ms": round(c["ms"], 1),
       "speedup_prefix_cache": round(l["ms"] / c["ms"], 2)}
print(json.dumps(out), flush=True)
EOF
        done
      done
    done
  done
}

run_ar() {
  make_model ar-12x768 --preset small --causal
  make_prompts
  for dt in $DTYPES; do
    local gguf="$WORK/ar-12x768-$dt.gguf"
    local l d
    l=$("$LLAMA_BIN/llama-bench" -m "$gguf" -p 0 -n "$GEN" -t "$THREADS" -r 3 -o json 2>/dev/null |
      $PY -c 'import json,sys; r=json.load(sys.stdin)[0]; print(r["avg_ts"])')
    d=$("$DLLM" generate -m "$gguf" --prompt "$(cat short.txt)" --gen-length "$GEN" \
      --no-early-stop -t "$THREADS" --json 2>/dev/null |
      $PY -c 'import json,sys; j=json.load(sys.stdin); print(j["forward_passes"] / j["seconds"])')
    $PY -c 'import json,sys; l,d=float(sys.argv[1]),float(sys.argv[2]); print(json.dumps({"bench":"llamacpp-ar","model":"ar-12x768","dtype":sys.argv[3],"llama_tokens_per_s":round(l,1),"dllm_tokens_per_s":round(d,1),"ratio":round(d/l,2)}))' \
      "$l" "$d" "$dt"
  done
}

case "$WHAT" in
  diffusion) run_diffusion ;;
  ar) run_ar ;;
  all) run_diffusion && run_ar ;;
  *) die "unknown part '$WHAT' (diffusion, ar or all)" ;;
esac
