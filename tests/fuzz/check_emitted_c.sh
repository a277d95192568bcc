#!/usr/bin/env bash
# tests/fuzz/check_emitted_c.sh KILN DIR...: compile the C that kiln emits for every spec in
# the folders (a fuzz corpus: build-fuzz/fuzz/corpus/spec) with the system C compiler.
#
# fuzz_spec runs the compiler on arbitrary specs but never compiles its output; this is the
# slower check that the output is C: a spec the compiler accepts must give a file that
# compiles, whatever names, tensor names and numbers it holds (no way to end a comment or a
# string literal early, no stray identifiers).  Leading "#-D name=value" lines become -D
# options, as in the harness.  Prints each failure with the compiler's first messages and
# exits 1 if there was any; files that compile with -Wall warnings are counted, and listed
# with CHECK_WARNINGS=1.
set -u
kiln=$1
shift
cc=${CC:-clang}
inc=$(dirname "$kiln")/include/kiln
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-emitted.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
n=0 accepted=0 bad=0 warned=0
for dir in "$@"; do
    for spec in "$dir"/*; do
        [ -f "$spec" ] || continue
        n=$((n + 1))
        args=()
        while IFS= read -r line; do
            case $line in
            "#-D "*=*) args+=(-D "${line#\#-D }") ;;
            *) break ;;
            esac
        done <"$spec"
        cp "$spec" "$tmp/spec.yaml"
        "$kiln" emit "$tmp/spec.yaml" "${args[@]}" -o "$tmp/model.c" >/dev/null 2>&1 || continue
        accepted=$((accepted + 1))
        if ! "$cc" -fsyntax-only -Wall -I "$inc" "$tmp/model.c" >"$tmp/cc.log" 2>&1; then
            bad=$((bad + 1))
            echo "FAIL: $spec"
            grep -m 5 'error' "$tmp/cc.log"
        elif [ -s "$tmp/cc.log" ]; then
            warned=$((warned + 1))
            if [ -n "${CHECK_WARNINGS:-}" ]; then
                echo "WARN: $spec"
                grep -m 3 'warning' "$tmp/cc.log"
            fi
        fi
    done
done
echo "check_emitted_c: $n specs, $accepted accepted by kiln, $bad emitted C that does not" \
     "compile, $warned with warnings"
[ "$bad" -eq 0 ]
