#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) into build-fuzz/ and
# runs each for a bounded time (seconds, default 20) from a seed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-20}"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDLLM_FUZZ=ON -DDLLM_TESTS=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target fuzzers
for bin in build-fuzz/*_fuzz; do
  name="$(basename "$bin")"
  corpus="build-fuzz/corpus-$name"
  mkdir -p "$corpus"
  [ -d "fuzz/seeds/$name" ] && cp -n fuzz/seeds/"$name"/* "$corpus"/ 2>/dev/null || true
  echo "fuzz: $name for ${SECONDS_EACH}s"
  "$bin" -max_total_time="$SECONDS_EACH" -max_len=65536 -rss_limit_mb=2048 "$corpus" \
    >"build-fuzz/$name.log" 2>&1 || { tail -40 "build-fuzz/$name.log"; echo "fuzz: $name FAILED"; exit 1; }
  grep -E "Done [0-9]+ runs" "build-fuzz/$name.log" | tail -1 || true
done
