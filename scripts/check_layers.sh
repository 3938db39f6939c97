#!/usr/bin/env bash
# Fails when a layer includes a header of a layer above it (DESIGN.md
# "Layers"). The compiler already refuses internal headers of other layers
# (each layer sees only its own src/ folders and those below: CMakeLists.txt);
# this script adds the same rule for the public headers in include/dllm/,
# which every layer can reach, and keeps tools/ on the public API only.
# Run by every build (the check_layers target) and on its own:
#   bash scripts/check_layers.sh [ROOT]
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"

# Which layers each layer may include (itself and everything below it).
declare -A ALLOWED=(
  [base]="base"
  [ops]="base ops"
  [formats]="base formats"
  [tokenizer]="base formats tokenizer"
  [model]="base ops formats model"
  [generate]="base ops formats model generate"
  [train]="base ops formats model train"
  [engine]="base ops formats tokenizer model generate engine"
  [server]="base ops formats tokenizer model generate engine server"
  [eval]="base eval"
)
# The layer that implements each public header.
declare -A OWNER=(
  [error.h]=base [files.h]=base [timer.h]=base [runtime.h]=base
  [ceiling.h]=ops [quant_bench.h]=ops [row_stats.h]=ops
  [tokenizer.h]=tokenizer [chat_template.h]=tokenizer [bpe_train.h]=tokenizer
  [config.h]=model [model.h]=model [version.h]=model
  [generate.h]=generate [generator.h]=generate
  [train.h]=train [train_run.h]=train
  [engine.h]=engine [prefix_stream.h]=engine [generate_options.h]=engine
  [likelihood.h]=engine
  [convert.h]=engine
  [server.h]=server
  [code_eval.h]=eval
)

fail=0
complain() {
  echo "check_layers: $1" >&2
  fail=1
}

# Prints "file:line:header" for every quoted include in the given files.
includes() {
  grep -Hn '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$@" 2>/dev/null |
    sed -E 's/^([^:]*):([0-9]+):.*#[[:space:]]*include[[:space:]]*"([^"]*)".*/\1:\2:\3/' || true
}

# Checks that `file` (in layer `layer`) includes only allowed headers.
check_file_includes() {
  local layer="$1"
  shift
  while IFS=: read -r file line hdr; do
    [ -n "$hdr" ] || continue
    local target
    case "$hdr" in
      dllm/*)
        local name="${hdr#dllm/}"
        target="${OWNER[$name]:-}"
        if [ -z "$target" ]; then
          complain "$file:$line: $hdr has no owner layer in scripts/check_layers.sh"
          continue
        fi
        ;;
      */*) target="${hdr%%/*}" ;;
      *) continue ;;  # a header beside the file
    esac
    case "$hdr" in ../*) complain "$file:$line: relative include $hdr" ;; esac
    if [ "$layer" = tools ]; then
      [[ "$hdr" == dllm/* ]] || complain "$file:$line: tools use the public API only, not $hdr"
      continue
    fi
    if [ -z "${ALLOWED[$target]:-}" ]; then
      continue  # a system or third-party header such as hwy/highway.h
    fi
    if [[ " ${ALLOWED[$layer]} " != *" $target "* ]]; then
      complain "$file:$line: layer '$layer' includes $hdr of layer '$target' above it"
    fi
  done
}

for dir in src/*/; do
  layer="$(basename "$dir")"
  if [ -z "${ALLOWED[$layer]:-}" ]; then
    complain "src/$layer: unknown layer (add it to scripts/check_layers.sh and CMakeLists.txt)"
    continue
  fi
  mapfile -t files < <(find "$dir" -name '*.h' -o -name '*.cc' -o -name '*.inl' | sort)
  [ ${#files[@]} -gt 0 ] && includes "${files[@]}" | check_file_includes "$layer"
done

for h in include/dllm/*.h; do
  name="$(basename "$h")"
  layer="${OWNER[$name]:-}"
  if [ -z "$layer" ]; then
    complain "$h: public header with no owner layer in scripts/check_layers.sh"
    continue
  fi
  includes "$h" | check_file_includes "$layer"
done

mapfile -t tool_files < <(find tools -name '*.h' -o -name '*.cc' | sort)
[ ${#tool_files[@]} -gt 0 ] && includes "${tool_files[@]}" | check_file_includes tools

exit "$fail"
