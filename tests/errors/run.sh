#!/bin/sh
# tests/errors/run.sh KILN CASE.yaml: one error test.
#
# CASE.yaml is a failing spec that carries its expectations in comment lines:
#   # expect-error: LINE:COL: MESSAGE      (one or more; the text after "error: ", exactly)
#   # expect-note: LINE:COL: MESSAGE       (optional; a note that must follow)
#   # args: -D n_head=5                    (optional; extra arguments for kiln emit)
# Runs `KILN emit CASE.yaml ARGS -o TMP/out.c` and requires: a non-zero exit that is not a
# crash, every expected line `CASE.yaml:LINE:COL: error: MESSAGE` verbatim in stderr (the path
# as passed), no other error (a mistake makes one message, not a cascade), and no out.c
# left behind.  On failure prints what differs and exits 1.
set -u
set -f                      # args are split on spaces, never globbed
kiln=$1
spec=$2
name=$(basename "$spec" .yaml)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-errors.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

args=$(sed -n 's/^# args: //p' "$spec" | head -n 1)
sed -n -e "s|^# expect-error: |$spec:|p" "$spec" | sed 's|^\([^:]*:[0-9]*:[0-9]*\): |\1: error: |' >"$tmp/expected"
sed -n -e "s|^# expect-note: |$spec:|p" "$spec" | sed 's|^\([^:]*:[0-9]*:[0-9]*\): |\1: note: |' >>"$tmp/expected"
if [ ! -s "$tmp/expected" ]; then
    echo "FAIL errors.$name: $spec has no '# expect-error:' line"
    exit 1
fi

# shellcheck disable=SC2086
"$kiln" emit "$spec" $args -o "$tmp/out.c" >"$tmp/stdout" 2>"$tmp/stderr"
rc=$?

fail=0
if [ "$rc" -eq 0 ]; then
    echo "FAIL errors.$name: kiln emit succeeded (exit 0), expected an error"
    fail=1
elif [ "$rc" -eq 126 ] || [ "$rc" -eq 127 ]; then
    echo "FAIL errors.$name: could not run $kiln (exit $rc)"
    fail=1
elif [ "$rc" -ge 124 ]; then
    echo "FAIL errors.$name: kiln emit crashed or was killed (exit $rc)"
    fail=1
fi
if [ -e "$tmp/out.c" ]; then
    echo "FAIL errors.$name: out.c was left behind (a failed compile must write nothing)"
    fail=1
fi
while IFS= read -r line; do
    if ! grep -Fxq -- "$line" "$tmp/stderr"; then
        [ "$fail" -eq 0 ] && echo "FAIL errors.$name: expected message not found"
        echo "- $line"
        fail=1
    fi
done <"$tmp/expected"
n_expected=$(grep -c ': error: ' "$tmp/expected")
n_found=$(grep -c "^$spec:[0-9]*:[0-9]*: error: \|^$spec: error: \|^kiln: error: " "$tmp/stderr")
if [ "$n_found" -ne "$n_expected" ]; then
    [ "$fail" -eq 0 ] && echo "FAIL errors.$name: expected $n_expected error(s), kiln reported $n_found"
    fail=1
fi
if [ "$fail" -ne 0 ]; then
    echo "  kiln's diagnostics (exit $rc):"
    grep -E ': (error|note): ' "$tmp/stderr" | sed 's/^/+ /'
    grep -Eq ': (error|note): ' "$tmp/stderr" || sed 's/^/| /' "$tmp/stderr"
    exit 1
fi
echo "ok errors.$name"
exit 0
