#!/usr/bin/env bash
# The VS Code end-to-end test (ctest vscode_e2e): packages the platform .vsix around the
# given hearth binary, installs it into a fresh code-server and drives it (run.mjs).
#   bash tests/vscode_e2e/run_e2e.sh HEARTH_BINARY OUT_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
hearth="$1"
out="$2"
deps="$(bash "$here/setup.sh")"
export PATH="$(bash "$repo/editors/vscode/scripts/node24.sh"):$PATH"
vsix="$(bash "$repo/editors/vscode/scripts/package.sh" --target linux-x64 --binary "$hearth" --out "$out" | tail -1)"
# run.mjs imports playwright-core, which ES modules find next to the importing file.
cp "$here/run.mjs" "$deps/run.mjs"
exec node "$deps/run.mjs" \
  --vsix "$vsix" --model "$repo/tests/data/hearth-demo-py-q8_0.gguf" \
  --code-server "$deps/node_modules/.bin/code-server" --out "$out"
