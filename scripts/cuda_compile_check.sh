#!/usr/bin/env bash
# Compiles the CUDA backend on a machine without a GPU, so that it cannot rot
# (run by .ci/run): every src/ops/cuda/*.cu with nvcc for sm_90, the ops
# layer's backend switch with the backend compiled in, and the device tests'
# object. Linking and running them is scripts/device_check.sh's job, on a
# GPU machine. Without a CUDA toolkit it says so and exits 0.
#
#   bash scripts/cuda_compile_check.sh      (BUILD_DIR=build-cuda, NVCC=...)
set -euo pipefail
cd "$(dirname "$0")/.."
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}
BUILD=${BUILD_DIR:-build-cuda}
if [ ! -x "$NVCC" ]; then
  echo "cuda_compile_check: no CUDA toolkit at $NVCC: skipped"
  exit 0
fi
t0=$(date +%s)
cmake -S . -B "$BUILD" -G Ninja -DDLLM_CUDA=ON -DDLLM_MPI=OFF \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER="$NVCC" >/dev/null
ninja -C "$BUILD" -j2 dllm_ops_cuda \
  CMakeFiles/dllm_ops.dir/src/ops/backend.cc.o \
  CMakeFiles/dllm_cuda_tests.dir/tests/cuda/cuda_backend_test.cc.o
echo "cuda_compile_check: the CUDA backend compiles ($(( $(date +%s) - t0 )) s)"
