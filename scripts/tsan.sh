#!/usr/bin/env bash
# Builds the core test suite with ThreadSanitizer into build-tsan/ and runs
# the tests that use the thread pool (kernels, forward, backward, training,
# generation); the pool has one thread per core, and the Determinism tests
# use 4 whatever the core count, so threads interleave on small machines too.
# Tests that run the CLI as a child process are left out: they exercise the
# same code, many times slower under TSan.
# JOBS=N limits the build's parallelism; extra arguments go to gtest, e.g.
# scripts/tsan.sh --gtest_filter='Determinism.*' --gtest_repeat=10.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build-tsan}"
JOBS="${JOBS:-$(nproc)}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="-fsanitize=thread -fno-omit-frame-pointer" \
  -DCMAKE_C_FLAGS="-fsanitize=thread -fno-omit-frame-pointer" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS" --target dllm_tests
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:${TSAN_OPTIONS:-}"
FILTER='Ops.*:*/Backward.*:Model.*:Engine.*:Generate.*:Generator.*:'
FILTER+='GoldenGenerate.*:*/Golden.*:*/TrainGolden.*:Determinism.*:Checkpoint.*'
FILTER+=':-Checkpoint.KilledTrainingAlwaysResumes'
"./$BUILD_DIR/dllm_tests" --gtest_filter="$FILTER" --gtest_brief=1 "$@"
echo "tsan: no data races in the threaded tests"
