#!/usr/bin/env bash
# Builds the VS Code extension and packages it into a .vsix with @vscode/vsce.
#
#   bash editors/vscode/scripts/package.sh
#       the universal package: the extension starts `hearth` from hearth.path or PATH
#   bash editors/vscode/scripts/package.sh --target linux-x64 [--binary FILE]
#       the platform package, which also carries the hearth binary (bin/hearth): FILE, else
#       the portable build (`bash .ci/build dist hearth`: static libstdc++, spdlog and fmt
#       header-only, the Vulkan loader opened at run time)
#   --out DIR   where the .vsix goes (default: build/vscode)
#
# Prints the .vsix path on the last line. Works offline once the npm cache holds the
# packages in package-lock.json.
set -euo pipefail
ext="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$ext/../.." && pwd)"
target="" binary="" out="$repo/build/vscode"
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "package.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
PATH="$(bash "$ext/scripts/node24.sh"):$PATH"
export PATH
cd "$ext"
# npm ci only when the installed tree is not the locked one.
if ! cmp -s package-lock.json node_modules/.hearth-lock 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error --prefer-offline >&2
  cp package-lock.json node_modules/.hearth-lock
fi
npx --no-install tsc --noEmit -p . >&2
node scripts/build.mjs >&2
version=$(node -p 'require("./package.json").version')
mkdir -p "$out"
rm -rf bin
args=(--no-dependencies --skip-license --allow-missing-repository)
if [ -n "$target" ]; then
  if [ -z "$binary" ]; then
    (cd "$repo" && bash .ci/build dist hearth) >&2
    binary="$repo/build/dist/lsp/hearth"
  fi
  [ -x "$binary" ] || { echo "package.sh: $binary is not an executable" >&2; exit 1; }
  mkdir -p bin
  cp "$binary" bin/hearth
  chmod 755 bin/hearth
  vsix="$out/hearth-$target-$version.vsix"
  args+=(--target "$target")
else
  vsix="$out/hearth-$version.vsix"
fi
npx --no-install vsce package "${args[@]}" -o "$vsix" >&2
rm -rf bin
echo "$vsix"
