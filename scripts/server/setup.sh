#!/bin/sh
# Installs the official `openai` npm client into scripts/server/node_modules,
# for the server tests (tests/server/server_test.cc runs openai_client.js)
# and the load script. Needs Node >= 18 and npm; run once.
set -e
cd "$(dirname "$0")"
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm install --no-audit --no-fund
fi
node -e "require('openai'); console.log('openai client installed')"
