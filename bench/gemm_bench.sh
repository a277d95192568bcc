#!/usr/bin/env bash
# bench/gemm_bench.sh: build bench/gemm_bench.c around the C kiln generates for one matmul,
# and run it (see gemm_bench.c for what it measures).  A benchmark, not a test.
#
#   bash bench/gemm_bench.sh [M N K] [--isa ISA] [--threads T] [--reps R] [--cold] [-- kiln flags]
#
# Defaults: 128 3072 768 (GPT-2's MLP up-projection on 128 tokens), --isa auto, 1 thread.
# $KILN (default build/kiln) is the compiler; its runtime is found beside it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KILN=${KILN:-$HERE/../build/kiln}
M=128 N=3072 K=768 ISA=auto THREADS=1 REPS=30 COLD=0
if [ $# -ge 3 ] && [[ $1 =~ ^[0-9]+$ ]]; then M=$1 N=$2 K=$3; shift 3; fi
EXTRA=()
while [ $# -gt 0 ]; do
    case $1 in
    --isa) ISA=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --cold) COLD=1; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "usage: $0 [M N K] [--isa ISA] [--threads T] [--reps R] [--cold] [-- kiln flags]" >&2; exit 2 ;;
    esac
done
BUILD=$(cd "$(dirname "$KILN")" && pwd)
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
"$KILN" emit "$HERE/gemm.yaml" -D M="$M" -D N="$N" -D K="$K" --isa "$ISA" "${EXTRA[@]}" \
    -o "$WORK/gemm.c"
isa=$(sed -n 's/^    .isa = "\(.*\)",/\1/p' "$WORK/gemm.c")
case $isa in
avx512) FLAGS=(-mavx512f -mavx512vl -mfma -mavx2) ;;
avx2) FLAGS=(-mavx2 -mfma) ;;
*) FLAGS=() ;;
esac
clang -std=gnu11 -O3 -fno-math-errno "${FLAGS[@]}" -I"$BUILD/include/kiln" \
    -DKILN_MODEL="\"$WORK/gemm.c\"" "$HERE/gemm_bench.c" "$BUILD/lib/kiln/libkiln_rt.a" \
    -lcjson -lm -pthread -o "$WORK/gemm_bench"
"$WORK/gemm_bench" "$THREADS" "$REPS" "$COLD"
