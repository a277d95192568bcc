#!/usr/bin/env bash
# tests/api/run.sh KILN TEST: the C API from a program's side (label `api`).
#
#   example        builds examples/romeo.c with the command examples/README.md documents
#                  (kiln emit writes gpt2.h beside gpt2.c; the program links libkiln_rt.a)
#                  and checks its greedy text against the PyTorch reference continuation
#                  shipped with the demo model
#   two_instances  builds tests/api/two_instances.c against the bert.h of a reference case's
#                  configuration: outputs vs PyTorch, two instances in two threads, errors
#   cache_full     tests/api/cache-full.yaml: a cache_write of more rows than the state keeps
#                  is refused with a message
#   kv_cache       builds tests/api/kv_cache.c for each fixture of tests/reference/greedy/:
#                  prefill + chunks + one-token decode vs the full forward, greedy ids vs
#                  PyTorch's with past_key_values (batch 1 and 3), a full cache refused
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
kv_cache)
    for fix in tests/reference/greedy/*/; do
        echo "== $fix"
        # shellcheck disable=SC2046
        "$kiln" emit $(cat "$fix/args") -o "$work/gpt2.c"
        # shellcheck disable=SC2086
        $cc $flags -I"$inc" -I"$work" tests/api/kv_cache.c "$work/gpt2.c" -DKILN_NO_MAIN \
            "$lib" -lcjson -lm -lpthread -o "$work/kv_cache"
        "$work/kv_cache" "$fix"
    done
    ;;
cache_full)
    # 10 rows into a state of 8: refused by the cache_write kernel, in the binary and in the
    # interpreter, with the same message; 8 rows fit.
    "$kiln" build tests/api/cache-full.yaml -o "$work/cf" >/dev/null
    printf '\x02\x00\x00\x00\x00\x00\x00\x00{}' > "$work/none.safetensors"   # no tensors
    # x10.npy: f32 zeros of shape (1, 10, 4), a version 1.0 header padded to 128 bytes
    printf '\x93NUMPY\x01\x00v\x00{'"'"'descr'"'"': '"'"'<f4'"'"', '"'"'fortran_order'"'"': False, '"'"'shape'"'"': (1, 10, 4), }' > "$work/x10.npy"
    pad=$((127 - $(wc -c < "$work/x10.npy")))
    printf '%*s\n' "$pad" '' >> "$work/x10.npy"
    head -c 160 /dev/zero >> "$work/x10.npy"
    want="cache_full: error: forward: state 'cache': positions 0..9 are past the 8 it keeps (the context is full)"
    got=$("$work/cf" --weights "$work/none.safetensors" --input x="$work/x10.npy" 2>&1 >/dev/null) && rc=0 || rc=$?
    [ "$rc" -eq 1 ] && [ "$got" = "$want" ] || { echo "FAIL cache_full: ($rc) $got"; exit 1; }
    echo "ok cache_full: $got"
    got=$("$kiln" interp tests/api/cache-full.yaml --weights "$work/none.safetensors" \
          --input x="$work/x10.npy" 2>&1 >/dev/null) && rc=0 || rc=$?
    case $got in *"cache_write 'kept': positions 0..9 are past the 8 the state keeps (the context is full)"*) ;;
        *) echo "FAIL cache_full (interp): ($rc) $got"; exit 1 ;; esac
    [ "$rc" -eq 1 ] || { echo "FAIL cache_full (interp): exit $rc"; exit 1; }
    echo "ok cache_full (interp)"
    ;;
*)
    echo "usage: $0 KILN example|two_instances|kv_cache|cache_full" >&2
    exit 2
    ;;
esac
