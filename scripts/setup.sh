#!/usr/bin/env bash
# Installs every Debian package dllm needs to build and test (run as root on
# Debian 12). Safe to run again: it only installs what is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache git
  libopenblas-dev libhwy-dev nlohmann-json3-dev libpcre2-dev libutf8proc-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libedit-dev                # line editing in `dllm chat` (BSD-licensed)
  libcpp-httplib-dev         # `dllm serve` (MIT)
  clang libclang-rt-14-dev   # libFuzzer targets
  tmux                       # the terminal test of `dllm chat`
  chromium                   # the headless-browser test of `dllm serve`'s web page
  libopenmpi-dev openmpi-bin # data-parallel training (`mpirun -np N dllm train`)
  bubblewrap python3 zlib1g-dev  # `dllm eval humaneval|mbpp`: the sandbox, the tests' interpreter, .jsonl.gz
  nodejs npm                 # tokenizer parity against the Hugging Face library
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node and npm may come from outside Debian (e.g. a preinstalled Node.js).
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs/}")
  missing=("${missing[@]/npm/}")
fi
read -r -a missing <<<"${missing[*]:-}"
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi

# npm packages for the tokenizer parity tests (skipped by the tests if absent).
here="$(cd "$(dirname "$0")" && pwd)"
if [ -f "$here/tokenizer/setup.sh" ]; then
  bash "$here/tokenizer/setup.sh" || echo "setup: npm packages unavailable; parity tests will skip"
fi
# The official openai npm client for the server tests (skipped if absent).
if [ -f "$here/server/setup.sh" ]; then
  bash "$here/server/setup.sh" || echo "setup: npm openai unavailable; its server test will skip"
fi
