#!/usr/bin/env bash
# tests/diff/isa.sh KILN WORK_DIR CHECK: the ISA checks that need no reference case.
#
#   neon       `kiln emit --isa neon` of each shipped spec (small sizes) compiles for AArch64
#              with clang --target=aarch64-linux-gnu -c -Wall -Wextra -Werror: a NEON build
#              only has to compile here.  Skipped, with a message, when clang has no AArch64
#              C library headers (Debian: libc6-dev-arm64-cross).
#   cpu-check  a binary built for an ISA the CPU lacks stops with "built for ISA but this
#              CPU lacks FEATURE" before anything runs, not SIGILL.  The CPU cannot be
#              changed, so the runtime's check is fooled with $KILN_TEST_CPU_LACKS (a test
#              hook; see runtime/cpu.c); a real missing feature takes the same path.
set -u
[ $# -eq 3 ] || { echo "usage: $0 KILN WORK_DIR neon|cpu-check" >&2; exit 2; }
abs() { (cd "$(dirname "$1")" && printf '%s/%s' "$(pwd)" "$(basename "$1")"); }
KILN=$(abs "$1"); mkdir -p "$2"; WORK=$(abs "$2")
cd "$(dirname "$0")/../.." || exit 2
INC=$(dirname "$KILN")/include/kiln
run() { printf '+'; printf ' %q' "$@"; printf '\n'; "$@"; }

SPECS=(
    "models/gpt2.yaml -D n_layer=2 -D n_head=3 -D n_embd=21 -D vocab_size=53 -D n_positions=16"
    "models/bert.yaml -D num_hidden_layers=1 -D num_attention_heads=3 -D hidden_size=15 -D intermediate_size=37 -D vocab_size=50 -D max_position_embeddings=12"
    "models/seed-bert-layer.yaml -D hidden_size=15 -D attention_heads=5 -D intermediate_size=40"
)

case $3 in
neon)
    SYSROOT=/usr/aarch64-linux-gnu
    AARCH64=(clang --target=aarch64-linux-gnu --sysroot=$SYSROOT -std=gnu11 -O2)
    if ! echo '#include <math.h>' | "${AARCH64[@]}" -fsyntax-only -x c - 2>/dev/null; then
        echo "SKIP: neon (clang cannot compile for aarch64-linux-gnu here: no AArch64 C" \
             "library headers; Debian: apt-get install libc6-dev-arm64-cross)"
        exit 0
    fi
    status=0
    for s in "${SPECS[@]}"; do
        read -r -a args <<< "$s"
        name=$(basename "${args[0]}" .yaml)
        run "$KILN" emit "${args[@]}" --isa neon -o "$WORK/$name.neon.c" &&
            run "${AARCH64[@]}" -Wall -Wextra -Werror -I"$INC" -c "$WORK/$name.neon.c" \
                -o "$WORK/$name.neon.o" || { echo "FAIL: $name --isa neon"; status=1; }
    done
    [ $status -eq 0 ] && echo "isa.neon: ok (${#SPECS[@]} specs compile for AArch64)"
    exit $status ;;
cpu-check)
    read -r -a args <<< "${SPECS[2]}"
    ok=0
    for isa in avx512 avx2; do
        case $isa in avx512) lack=avx512f ;; avx2) lack=avx2 ;; esac
        # Build only what this machine can compile and link (any x86-64 can, for both).
        run "$KILN" build "${args[@]}" --isa $isa -o "$WORK/model.$isa" >/dev/null || {
            echo "FAIL: cannot build --isa $isa"; exit 1; }
        out=$(KILN_TEST_CPU_LACKS=$lack "$WORK/model.$isa" --help 2>&1); rc=$?
        want="built for $isa but this CPU lacks $lack"
        if [ $rc -eq 1 ] && [[ $out == *"error: $want"* ]]; then
            echo "ok: --isa $isa without $lack: $out"; ok=$((ok + 1))
        else
            echo "FAIL: --isa $isa without $lack: exit $rc, wanted 1 and '$want':"; echo "$out"
        fi
    done
    [ $ok -eq 2 ] && echo "isa.cpu-check: ok" && exit 0
    exit 1 ;;
*) echo "unknown check '$3'" >&2; exit 2 ;;
esac
