#!/usr/bin/env bash
# tests/api/run.sh KILN TEST: the C API from a program's side (label `api`).
#
#   example        builds examples/romeo.c with the command examples/README.md documents
#                  (kiln emit writes gpt2.h beside gpt2.c; the program links libkiln_rt.a)
#                  and checks its greedy text against the PyTorch reference continuation
#                  shipped with the demo model
#   two_instances  builds tests/api/two_instances.c against the bert.h of a reference case's
#                  configuration: outputs vs PyTorch, two instances in two threads, errors
#
# $KILN_CC (default clang) and $KILN_CFLAGS are used for every compile, so the sanitizer
# builds (make test-sanitize, make test-tsan) run these programs sanitized.
set -euo pipefail
kiln=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
test=$2
cd "$(dirname "$0")/../.."
bin=$(dirname "$kiln")
inc="$bin/include/kiln"
lib="$bin/lib/kiln/libkiln_rt.a"
cc=${KILN_CC:-clang}
flags="-O2 -march=native ${KILN_CFLAGS:-}"
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-api.XXXXXX")
trap 'rm -rf "$work"' EXIT

case $test in
example)
    data=demo/gpt2-shakespeare-char
    "$kiln" emit models/gpt2.yaml -D n_layer=4 -D n_head=4 -D n_embd=128 -D vocab_size=65 \
        -D n_positions=64 -o "$work/gpt2.c"
    [ -f "$work/gpt2.h" ] || { echo "FAIL: kiln emit wrote no gpt2.h"; exit 1; }
    # shellcheck disable=SC2086
    $cc $flags -I"$inc" -I"$work" examples/romeo.c "$work/gpt2.c" -DKILN_NO_MAIN "$lib" \
        -lcjson -lpcre2-8 -lutf8proc -lm -lpthread -o "$work/romeo"
    "$work/romeo" "$data" 400 > "$work/out.txt"
    if tail -n +2 "$data/reference-greedy-romeo.txt" | cmp -s - "$work/out.txt"; then
        echo "ok example: 400 greedy characters equal PyTorch's"
    else
        echo "FAIL example: the greedy text differs from $data/reference-greedy-romeo.txt"
        diff <(tail -n +2 "$data/reference-greedy-romeo.txt") "$work/out.txt" | head -20
        exit 1
    fi
    ;;
two_instances)
    case_dir=tests/reference/cases/bert.pad
    # shellcheck disable=SC2046
    "$kiln" emit $(cat "$case_dir/args") -o "$work/bert.c"
    # shellcheck disable=SC2086
    $cc $flags -I"$inc" -I"$work" tests/api/two_instances.c "$work/bert.c" -DKILN_NO_MAIN \
        "$lib" -lcjson -lm -lpthread -o "$work/two_instances"
    "$work/two_instances" "$case_dir"
    ;;
*)
    echo "usage: $0 KILN example|two_instances" >&2
    exit 2
    ;;
esac
