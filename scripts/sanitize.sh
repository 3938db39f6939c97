#!/usr/bin/env bash
# Builds the test suites with AddressSanitizer + UndefinedBehaviorSanitizer
# into build-asan/ and runs them (the slow learnability test excepted: it
# exercises no code the others miss).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=build-asan bash scripts/build.sh -DDLLM_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
./build-asan/dllm_tests --gtest_filter='-Learnability.*' --gtest_brief=1
./build-asan/dllm_tokenizer_tests --gtest_brief=1
echo "sanitize: all tests passed under ASan + UBSan"
