#!/usr/bin/env bash
# Checks that dllm and llama.cpp compute the same logits from the same GGUF
# files: random F32 models of every layout we write (LLaDA with GQA, tied,
# Dream with biases, and the causal twins as llama / qwen2) converted by
# `dllm convert`, plus the gguf-py fixture, run by both. Prints the largest
# difference per model and fails above TOL (default 1e-4; F32 agrees to
# about 1e-5). Quantized files are compared too, with a looser bound, since
# both engines quantize activations their own way.
#   LLAMA_CPP=../peers/llama.cpp bash scripts/gguf/check_llama_cpp.sh
# QTYPES (default "q8_0 q4_0 q6_k") picks the quantized files; QTYPES= skips
# them, for a llama.cpp whose native build takes its AMX kernels on a host
# that does not let a process use AMX (they die of SIGILL on such a VM).
# Needs a llama.cpp build (LLAMA_CPP/build/bin/libllama.so) and numpy
# (/usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
LLAMA_CPP="${LLAMA_CPP:-../peers/llama.cpp}"
DLLM="${DLLM:-build/dllm}"
TOL="${TOL:-1e-4}"
QTOL="${QTOL:-0.5}"
LIB="$LLAMA_CPP/build/bin"
[ -f "$LIB/libllama.so" ] || { echo "no llama.cpp build in $LIB" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
c++ -O2 -std=c++17 scripts/gguf/llama_cpp_logits.cc -I"$LLAMA_CPP/include" \
  -I"$LLAMA_CPP/ggml/include" -L"$LIB" -lllama -lggml -lggml-base \
  -Wl,-rpath,"$(cd "$LIB" && pwd)" -o "$work/logits"
IDS="1 2 3 260 281 5 6 7 8 100"
fail=0
compare() {  # name model.gguf tolerance
  "$work/logits" "$2" "$work/l.bin" $IDS 2>/dev/null
  "$DLLM" forward -m "$2" --ids "$IDS" --dump-logits "$work/d.bin" >/dev/null 2>&1
  /usr/bin/python3 - "$1" "$3" "$work/l.bin" "$work/d.bin" <<'PY' || fail=1
import sys, numpy as np
name, tol, a, b = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
a, b = np.fromfile(a, np.float32), np.fromfile(b, np.float32)
d = float(np.abs(a - b).max())
print(f"{name:28s} max |llama.cpp - dllm| = {d:.3g} (logits up to {np.abs(a).max():.3g})")
sys.exit(0 if d <= tol else 1)
PY
}
for spec in "llada-gqa:--kv-heads 2" "llada-tied:--tied" "dream:--arch dream --kv-heads 2" \
            "llama:--causal --kv-heads 2" "qwen2:--arch dream --causal --kv-heads 2"; do
  name="${spec%%:*}"
  "$DLLM" init -o "$work/$name" --layers 2 --d-model 256 --heads 4 --ffn 512 \
    --vocab 2048 --std 0.05 ${spec#*:} >/dev/null 2>&1
  cp models/shakespeare-ar/tokenizer.json "$work/$name/"
  "$DLLM" convert -q "$work/$name" "$work/$name.gguf" --outtype f32 2>/dev/null
  compare "$name f32" "$work/$name.gguf" "$TOL"
  for t in ${QTYPES-q8_0 q4_0 q6_k}; do
    "$DLLM" quantize -q "$work/$name.gguf" "$work/$name-$t.gguf" "$t" 2>/dev/null
    compare "$name $t" "$work/$name-$t.gguf" "$QTOL"
  done
done
compare "fixture llada_f16 (gguf-py)" tests/fixtures/gguf/llada_f16.gguf 1e-2
exit "$fail"
