#!/usr/bin/env bash
# The one script a GPU machine runs (DESIGN.md "Performance method"): builds
# the CUDA backend, checks it against the CPU (build-cuda/dllm_cuda_tests),
# then times a LLaDA-8B-shaped BF16 forward on the GPU. Everything goes to
# stdout and to ${OUT:-/tmp/device_check}/log.txt. Exit status: 0 when all
# passed, 1 when the tests failed, 2 when configuring or building failed, 3
# when only a benchmark failed.
#
# Knobs (environment):
#   BENCH_LAYERS  transformer blocks of the 8B-shaped model (default 32, the
#                 issue's model: `dllm init` fills its 8e9 random weights on
#                 every core and writes 16 GB). A smaller count (e.g. 4) saves
#                 minutes when the disk is slow: every block has the 8B shapes
#                 (d_model 4096, ffn 12288, vocab 126464), so the ratio to the
#                 memory roofline means the same.
#   MODEL_DIR     where the model goes (default /tmp/llada8b-L$BENCH_LAYERS,
#                 /tmp/llada8b for 32); reused when already there.
#   SKIP_BENCH=1  build and test only.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT_DIR="${OUT:-/tmp/device_check}"
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/log.txt"
: >"$LOG"
exec > >(tee -a "$LOG") 2>&1

BUILD=build-cuda
JOBS="$(nproc)"
BENCH_LAYERS="${BENCH_LAYERS:-32}"
if [ "$BENCH_LAYERS" = 32 ]; then
  MODEL_DIR="${MODEL_DIR:-/tmp/llada8b}"
else
  MODEL_DIR="${MODEL_DIR:-/tmp/llada8b-L$BENCH_LAYERS}"
fi
T0=$(date +%s)
step() { echo; echo "=== $* [$(( $(date +%s) - T0 )) s]"; }
finish() {
  step "done: exit $1"
  sleep 0.2  # let tee drain
  exit "$1"
}

step "machine"
uname -a
nproc
free -g | head -2
df -h /tmp | tail -1
if command -v nvidia-smi >/dev/null; then
  nvidia-smi
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem \
    --format=csv
else
  echo "nvidia-smi: not found"
fi
/usr/local/cuda/bin/nvcc --version | tail -2

# Build tools: scripts/setup.sh installs what is missing (needs apt and a
# network; skipped when cmake and ninja are already there).
if ! command -v cmake >/dev/null || ! command -v ninja >/dev/null; then
  step "installing build packages (scripts/setup.sh)"
  bash scripts/setup.sh || echo "setup.sh failed; trying to build anyway"
fi

step "configure $BUILD"
cmake -S . -B "$BUILD" -G Ninja -DDLLM_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
  -DDLLM_MPI=OFF -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc ||
  finish 2

step "build dllm_cli dllm_cuda_tests (-j$JOBS)"
cmake --build "$BUILD" -j "$JOBS" --target dllm_cli dllm_cuda_tests ||
  finish 2

step "dllm_cuda_tests"
timeout 300 "$BUILD/dllm_cuda_tests" --gtest_color=no \
  --gtest_output="xml:$OUT_DIR/dllm_cuda_tests.xml"
TEST_RC=$?
echo "dllm_cuda_tests: exit $TEST_RC"

# Generation on the device against the CPU: the shipped models, greedy, every
# cache; the same text is expected (F32 weights: the logits agree to ~1e-5,
# so only a near-tie could part them, and the line says where).
step "generate: device vs CPU, token for token"
GEN_RC=0
for m in shakespeare-bd shakespeare-mdm shakespeare-ar; do
  for cache in none prefix dual; do
    [ "$m" = shakespeare-ar ] && [ "$cache" != none ] && continue
    args=(-m "models/$m" -p "ROMEO:" --gen-length 64 --block-length 16
      --steps 64 --temperature 0 --json)
    [ "$m" = shakespeare-ar ] || args+=(--cache "$cache")
    cpu=$(timeout 120 "$BUILD/dllm" generate "${args[@]}" 2>/dev/null)
    gpu=$(timeout 120 "$BUILD/dllm" generate "${args[@]}" --device cuda \
      2>/dev/null)
    if [ -n "$gpu" ] && [ "$(echo "$cpu" | grep -o '"text":"[^"]*"')" = \
      "$(echo "$gpu" | grep -o '"text":"[^"]*"')" ]; then
      echo "$m cache=$cache: same text"
    else
      echo "$m cache=$cache: DIFFERENT"
      echo "  cpu: $cpu"
      echo "  gpu: $gpu"
      GEN_RC=1
    fi
  done
done

BENCH_RC=0
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  if [ -f "$MODEL_DIR/config.json" ] && [ -f "$MODEL_DIR/model.safetensors" ]; then
    step "model: reusing $MODEL_DIR"
  else
    step "dllm init $MODEL_DIR (llada-8b shape, $BENCH_LAYERS layers, BF16)"
    LAYER_ARGS=()
    [ "$BENCH_LAYERS" = 32 ] || LAYER_ARGS=(--layers "$BENCH_LAYERS")
    time timeout 400 "$BUILD/dllm" init -o "$MODEL_DIR" --preset llada-8b \
      --dtype BF16 "${LAYER_ARGS[@]}" --force || BENCH_RC=3
  fi
  ls -la "$MODEL_DIR" || true

  if [ "$BENCH_RC" = 0 ]; then
    step "bench forward: a 32-token block over a 512-token cached prefix"
    timeout 240 "$BUILD/dllm" bench forward -m "$MODEL_DIR" --device cuda \
      --tokens 32 --prefix 512 --reps 20 || BENCH_RC=3

    step "bench forward: the same with our own matmul kernels (DLLM_CUDA_GEMM=kernel)"
    DLLM_CUDA_GEMM=kernel timeout 240 "$BUILD/dllm" bench forward \
      -m "$MODEL_DIR" --device cuda --tokens 32 --prefix 512 --reps 20 ||
      BENCH_RC=3

    step "bench forward: 32 tokens, no cache"
    timeout 120 "$BUILD/dllm" bench forward -m "$MODEL_DIR" --device cuda \
      --tokens 32 --reps 20 || BENCH_RC=3

  fi
fi

if [ "${SKIP_BENCH:-0}" != 1 ]; then
  step "bench generate on the device (shipped models, uncached and caches)"
  timeout 300 "$BUILD/dllm" bench generate -m models/shakespeare-mdm \
    --ar-model models/shakespeare-ar --device cuda --n-prompts 4 \
    --gen-length 64 --block-length 16 --steps 64 \
    --presets uncached,prefix,dual,ar || BENCH_RC=3
fi

if [ "$TEST_RC" != 0 ] || [ "$GEN_RC" != 0 ]; then finish 1; fi
finish "$BENCH_RC"
