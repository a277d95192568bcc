#!/usr/bin/env bash
# tests/golden/run.sh KILN CASE.yaml: golden test of the IR dump and the generated C.
#
#   kiln inspect CASE.yaml [args]   must equal CASE.ir.expected byte for byte
#   kiln emit CASE.yaml [args] -o - must equal CASE.c.expected, and twice in a row the same
#
# `# args: ...` lines in the case add command-line flags.  With KILN_UPDATE_GOLDEN=1 the
# expected files are rewritten instead (review the diff and commit it with the change).
set -u
[ $# -eq 2 ] || { echo "usage: $0 KILN CASE.yaml" >&2; exit 2; }
KILN=$1; CASE=$2
cd "$(dirname "$0")/../.." || exit 2
base=${CASE%.yaml}
read -r -a ARGS <<< "$(sed -n 's/^# args: //p' "$CASE" | tr '\n' ' ')"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

"$KILN" inspect "$CASE" "${ARGS[@]}" > "$tmp/ir" || { echo "kiln inspect failed"; exit 1; }
"$KILN" emit "$CASE" "${ARGS[@]}" -o - > "$tmp/c1" || { echo "kiln emit failed"; exit 1; }
"$KILN" emit "$CASE" "${ARGS[@]}" -o - > "$tmp/c2" || { echo "kiln emit failed"; exit 1; }
if ! cmp -s "$tmp/c1" "$tmp/c2"; then
    echo "FAIL: two runs of kiln emit gave different C"; diff -u "$tmp/c1" "$tmp/c2" | head -40; exit 1
fi
if [ "${KILN_UPDATE_GOLDEN:-0}" = 1 ]; then
    cp "$tmp/ir" "$base.ir.expected"; cp "$tmp/c1" "$base.c.expected"
    echo "updated $base.ir.expected and $base.c.expected"; exit 0
fi
status=0
for kind in ir c; do
    got=$tmp/$kind; [ $kind = c ] && got=$tmp/c1
    if ! diff -u "$base.$kind.expected" "$got" > "$tmp/diff"; then
        echo "FAIL: $kind differs from $base.$kind.expected (KILN_UPDATE_GOLDEN=1 to accept):"
        head -80 "$tmp/diff"; status=1
    fi
done
[ $status -eq 0 ] && echo "golden $(basename "$base"): ok"
exit $status
