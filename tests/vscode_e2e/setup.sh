#!/usr/bin/env bash
# Installs what the VS Code end-to-end test needs (code-server 4.139.1 = VS Code 1.139 and
# playwright-core, at the versions in package-lock.json) once into the tools cache
# ($HEARTH_TOOLS_DIR, default ~/.cache/hearth-tools), keyed by the lock file's hash, and
# prints that folder. code-server needs Node 24 (editors/vscode/scripts/node24.sh) and
# compiles two native modules with node-gyp against that Node's headers (libkrb5-dev from
# apt; .ci/install-deps installs it), so nothing is downloaded but npm packages.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
nodebin="$(bash "$repo/editors/vscode/scripts/node24.sh")"
export PATH="$nodebin:$PATH"
tools="${HEARTH_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hearth-tools}"
key="$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -c1-16)"
dir="$tools/vscode-e2e-$key"
if [ ! -f "$dir/.complete" ]; then
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$here/package.json" "$here/package-lock.json" "$dir/"
  echo "hearth: installing code-server and playwright-core into $dir (about 2-4 minutes, once)" >&2
  (cd "$dir" && npm_config_nodedir="$(dirname "$nodebin")" \
    npm ci --no-audit --no-fund --loglevel=error --prefer-offline >&2)
  "$dir/node_modules/.bin/code-server" --version >/dev/null
  touch "$dir/.complete"
fi
echo "$dir"
