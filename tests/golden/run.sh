#!/usr/bin/env bash
# tests/golden/run.sh KILN CASE.yaml: golden and structural tests of one case.
#
#   kiln inspect CASE.yaml [args]   must equal CASE.ir.expected byte for byte
#   kiln emit CASE.yaml [args] -o - must equal CASE.c.expected, and twice in a row the same,
#                                   with no line over 100 columns
#
# Lines in the case:
#   # args: ...        more command-line flags (several lines add up)
#   # spec: PATH       test the spec at PATH (from the source root) instead of the case
#                      itself, e.g. a shipped model at a tiny size: the case then holds only
#                      these comment lines
#   # expect: after PASS: CHECK
#                      a structural check on `kiln inspect CASE [args] --after PASS`:
#       kernels == N              N live nodes get a kernel (all but input, weight, constant,
#                                 state and reshape, which forward() does not call)
#       fused X into Y [== N]     some node Y (exactly N of them) implements a spec node X
#                                 besides itself ("fuses" lines); X and Y are op names (add,
#                                 matmul) or spec names in quotes ('h.0.mlp.act')
#       no X                      no live node is X (op name or quoted spec name)
#       note "TEXT"               some note PASS left (`  note: ...` lines) contains TEXT
#       note "TEXT"               some note of PASS (`note: ...` lines) contains TEXT
# A case with `# expect:` lines and no .expected files is structural only: the checks, and
# that emit works and is deterministic (the shipped models, whose generated C changes with
# every kernel improvement).  Any other case has both .expected files; KILN_UPDATE_GOLDEN=1
# rewrites them instead of comparing (review the diff and commit it with the change).  To
# start byte-checking a case with `# expect:` lines, create the files empty first.
set -u
[ $# -eq 2 ] || { echo "usage: $0 KILN CASE.yaml" >&2; exit 2; }
KILN=$1; CASE=$2
cd "$(dirname "$0")/../.." || exit 2
# Paths relative to the source root, however ctest spells them: the dump and the C name the
# spec as given, and the expected files must not depend on where the checkout lives.
root=$(pwd -P)
case $CASE in "$root"/*) CASE=${CASE#"$root"/} ;; /*) CASE=$(realpath --relative-to="$root" "$CASE") ;; esac
base=${CASE%.yaml}
read -r -a ARGS <<< "$(sed -n 's/^# args: //p' "$CASE" | tr '\n' ' ')"
SPEC=$(sed -n 's/^# spec: *//p' "$CASE" | head -1)
SPEC=${SPEC:-$CASE}
mapfile -t EXPECTS < <(sed -n 's/^# expect: *//p' "$CASE")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
status=0

"$KILN" inspect "$SPEC" "${ARGS[@]}" > "$tmp/ir" || { echo "kiln inspect failed"; exit 1; }
"$KILN" emit "$SPEC" "${ARGS[@]}" -o - > "$tmp/c1" || { echo "kiln emit failed"; exit 1; }
"$KILN" emit "$SPEC" "${ARGS[@]}" -o - > "$tmp/c2" || { echo "kiln emit failed"; exit 1; }
if ! cmp -s "$tmp/c1" "$tmp/c2"; then
    echo "FAIL: two runs of kiln emit gave different C"; diff -u "$tmp/c1" "$tmp/c2" | head -40; exit 1
fi

# ---- readability: the generated C keeps to 100 columns, as the house style does ---------
long=$(awk 'length > 100 { printf "  line %d, %d columns: %s\n", NR, length, substr($0, 1, 60) }' "$tmp/c1")
if [ -n "$long" ]; then
    echo "FAIL: lines of the generated C pass 100 columns:"; echo "$long" | head -10; status=1
fi

# ---- structural checks ------------------------------------------------------------------
# count_in DUMP CHECK: the number the check is about, from an `inspect --after` dump.
count_in() {
    awk -v check="$2" '
        function is(want, op, name) { return want == op || want == "\x27" name "\x27" }
        # "  %12 = matmul %9, %10 -> add _, %11 : f32[batch, seq, 96]  h.0.attn.c_attn  @..."
        function node_name(line,   s) {
            if (!match(line, /\]  [^ ]+/)) return ""
            return substr(line, RSTART + 3, RLENGTH - 3)
        }
        function flush() { if (in_y && found) n++; in_y = found = 0 }
        BEGIN {
            m = split(check, w, " ")
            if (w[1] == "kernels") kind = "kernels"
            else if (w[1] == "no") { kind = "no"; x = w[2] }
            else { kind = "fused"; x = w[2]; y = w[4] }
        }
        /^  %[0-9]+ = / {
            flush()
            op = $3; name = node_name($0)
            if (kind == "kernels" && op != "input" && op != "weight" && op != "constant" &&
                op != "state" && op != "reshape") n++
            if (kind == "no" && is(x, op, name)) n++
            if (kind == "fused") in_y = is(y, op, name)
            next
        }
        $1 == "fuses" && in_y && $3 != name && is(x, $2, $3) { found = 1 }
        END { flush(); print n + 0 }' "$1"
}

for e in "${EXPECTS[@]}"; do
    if [[ ! $e =~ ^after\ ([a-z-]+):\ (.*)$ ]]; then
        echo "FAIL: cannot read '# expect: $e' (want 'after PASS: CHECK')"; status=1; continue
    fi
    pass=${BASH_REMATCH[1]}; check=${BASH_REMATCH[2]}
    dump=$tmp/after-$pass
    [ -f "$dump" ] || "$KILN" inspect "$SPEC" "${ARGS[@]}" --after "$pass" > "$dump" ||
        { echo "FAIL: kiln inspect --after $pass failed"; status=1; continue; }
    if [[ $check =~ ^note\ \"(.*)\"$ ]]; then
        want=1; got=$(grep -cF -- "${BASH_REMATCH[1]}" <(grep -E '^  note: ' "$dump"))
        [ "$got" -ge 1 ] && got=1
    elif [[ $check =~ ^kernels\ ==\ ([0-9]+)$ ]]; then
        want=${BASH_REMATCH[1]}; got=$(count_in "$dump" "kernels")
    elif [[ $check =~ ^no\ ([^ ]+)$ ]]; then
        want=0; got=$(count_in "$dump" "$check")
    elif [[ $check =~ ^note\ \"(.*)\"$ ]]; then
        want=1; got=0
        grep -E '^  note: ' "$dump" | grep -qF -- "${BASH_REMATCH[1]}" && got=1
    elif [[ $check =~ ^(fused\ [^ ]+\ into\ [^ ]+)(\ ==\ ([0-9]+))?$ ]]; then
        got=$(count_in "$dump" "${BASH_REMATCH[1]}"); want=${BASH_REMATCH[3]:-}
        if [ -z "$want" ]; then want="at least 1"; [ "$got" -ge 1 ] && want=$got; fi
    else
        echo "FAIL: unknown check '$check' in '# expect: $e'"; status=1; continue
    fi
    if [ "$got" != "$want" ]; then
        echo "FAIL: expect after $pass: $check: found $got"
        grep -E '^  note: ' "$dump" | head -20
        status=1
    fi
done

# ---- golden files -----------------------------------------------------------------------
if [ ${#EXPECTS[@]} -gt 0 ] && [ ! -f "$base.ir.expected" ] && [ ! -f "$base.c.expected" ]; then
    [ $status -eq 0 ] && echo "golden $(basename "$base"): ok (${#EXPECTS[@]} structural checks)"
    exit $status
fi
if [ "${KILN_UPDATE_GOLDEN:-0}" = 1 ]; then
    cp "$tmp/ir" "$base.ir.expected"; cp "$tmp/c1" "$base.c.expected"
    echo "updated $base.ir.expected and $base.c.expected"; exit $status
fi
for kind in ir c; do
    got=$tmp/$kind; [ $kind = c ] && got=$tmp/c1
    if ! diff -u "$base.$kind.expected" "$got" > "$tmp/diff"; then
        echo "FAIL: $kind differs from $base.$kind.expected (KILN_UPDATE_GOLDEN=1 to accept):"
        head -80 "$tmp/diff"; status=1
    fi
done
[ $status -eq 0 ] && echo "golden $(basename "$base"): ok (${#EXPECTS[@]} structural checks)"
exit $status
