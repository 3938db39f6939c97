#!/usr/bin/env bash
# Builds and runs every test (the README's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j 2
# Bounded fuzzing of every parser that reads outside input (clang/libFuzzer).
bash scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
