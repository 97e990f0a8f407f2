#!/usr/bin/env bash
# The extension's own checks: type check (tsc) and the unit tests (node:test) of its logic.
set -euo pipefail
ext="$(cd "$(dirname "$0")/.." && pwd)"
PATH="$(bash "$ext/scripts/node24.sh"):$PATH"
export PATH
cd "$ext"
if ! cmp -s package-lock.json node_modules/.hearth-lock 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error --prefer-offline
  cp package-lock.json node_modules/.hearth-lock
fi
npx --no-install tsc --noEmit -p .
node scripts/build.mjs --tests
node --test out/test/*.test.js
