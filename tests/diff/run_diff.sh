#!/usr/bin/env bash
# tests/diff/run_diff.sh KILN CASE_DIR WORK_DIR: differential checks on one reference case.
#
#   1. the generated code vs the reference interpreter (ir/interp.c), directly;
#   2. every optional pass switched off in turn vs the full pipeline (tile: packed-panel
#      matmuls vs plain loops);
#   3. every vector ISA this CPU has (--isa avx2, avx512) vs --isa scalar; the ones it lacks
#      print "SKIP: avx512 (this CPU lacks avx512f)";
#   4. the full build on --threads 1, 2 and 3: outputs bitwise identical (cmp);
#   5. the full build run again, forward 3 times in one process (--repeat 3): the same bytes
#      as the first run (no state carried between runs or calls).
#
# Both compare kiln with kiln, so the tolerance is tighter than against PyTorch: TOL x
# max|out| with TOL = 2e-5 (the interpreter accumulates in double, generated code in float).
# Uses the reference cases' inputs and weights (tests/reference/cases/<id>/).
set -u
[ $# -eq 3 ] || { echo "usage: $0 KILN CASE_DIR WORK_DIR" >&2; exit 2; }
abs() { (cd "$(dirname "$1")" && printf '%s/%s' "$(pwd)" "$(basename "$1")"); }
KILN=$(abs "$1"); CASE=$(abs "$2"); mkdir -p "$3"; WORK=$(abs "$3")
cd "$(dirname "$0")/../.." || exit 2
TOL=2e-5

read -r -a ARGS < "$CASE/args"
INPUTS=(); OUTS=()
for f in "$CASE"/in.*.npy; do n=${f##*/in.}; INPUTS+=(--input "${n%.npy}=$f"); done
for f in "$CASE"/out.*.npy; do n=${f##*/out.}; OUTS+=("${n%.npy}"); done

run() { printf '+'; printf ' %q' "$@"; printf '\n'; "$@"; }
failed=()

# run_build TAG [kiln build flags...]: build and run; outputs WORK/TAG.NAME.npy
run_build() {
    local tag=$1; shift
    local flags=() n
    for n in "${OUTS[@]}"; do flags+=(--output "$n=$WORK/$tag.$n.npy"); done
    run "$KILN" build "${ARGS[@]}" "$@" -o "$WORK/$tag.bin" >/dev/null &&
        run "$WORK/$tag.bin" --weights "$CASE/weights.safetensors" "${INPUTS[@]}" "${flags[@]}"
}

compare() {   # compare TAG_A TAG_B WHAT
    local n
    for n in "${OUTS[@]}"; do
        run "$KILN" diff "$WORK/$1.$n.npy" "$WORK/$2.$n.npy" --atol-scale $TOL ||
            failed+=("$3: output $n differs")
    done
}

rm -f "$WORK"/*.npy
run_build full || failed+=("full pipeline: build or run failed")

iflags=()
for n in "${OUTS[@]}"; do iflags+=(--output "$n=$WORK/interp.$n.npy"); done
if run "$KILN" interp "${ARGS[@]}" --weights "$CASE/weights.safetensors" "${INPUTS[@]}" "${iflags[@]}"; then
    compare full interp "generated code vs interpreter"
else
    failed+=("interp failed")
fi

# Every optional pass, as `kiln --help` lists them.
passes=$("$KILN" --help | awk '/^passes/{p=1;next} p && !NF{exit} p && !/required/{print $1}')
for p in $passes; do
    if run_build "no-$p" --disable-pass "$p"; then
        compare full "no-$p" "pass $p on vs off"
    else
        failed+=("--disable-pass $p: build or run failed")
    fi
done

# Every vector ISA this CPU runs vs portable scalar code (tests/diff/README: not bitwise, FMA
# and vector lanes round differently; TOL as above), each built for its default tiling.
flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
lacks() {   # lacks FEATURE...: print the first one /proc/cpuinfo does not list
    local f; for f in "$@"; do [[ $flags == *" $f "* ]] || { echo "$f"; return 0; }; done; return 1
}
isas=()
if run_build isa-scalar --isa scalar; then
    for isa in avx2 avx512; do
        case $isa in avx2) need=(avx2 fma) ;; avx512) need=(avx512f avx512vl avx2 fma) ;; esac
        if missing=$(lacks "${need[@]}"); then
            echo "SKIP: $isa (this CPU lacks $missing)"; continue
        fi
        isas+=("$isa")
        if run_build "isa-$isa" --isa "$isa"; then
            compare "isa-$isa" isa-scalar "--isa $isa vs --isa scalar"
        else
            failed+=("--isa $isa: build or run failed")
        fi
    done
else
    failed+=("--isa scalar: build or run failed")
fi

# Threads: the same binary on 1, 2 and 3 threads (3 on a 2-core machine too) must write the
# same bytes: every kernel computes each output element in one task, in a fixed order.
for t in 1 2 3; do
    tflags=()
    for n in "${OUTS[@]}"; do tflags+=(--output "$n=$WORK/threads$t.$n.npy"); done
    run "$WORK/full.bin" --weights "$CASE/weights.safetensors" "${INPUTS[@]}" "${tflags[@]}" \
        --threads $t || failed+=("--threads $t: run failed")
done
for t in 2 3; do
    for n in "${OUTS[@]}"; do
        cmp "$WORK/threads1.$n.npy" "$WORK/threads$t.$n.npy" ||
            failed+=("--threads $t vs 1: output $n is not bitwise identical")
    done
done

# Determinism across runs and across calls in one run.
rflags=()
for n in "${OUTS[@]}"; do rflags+=(--output "$n=$WORK/again.$n.npy"); done
run "$WORK/full.bin" --weights "$CASE/weights.safetensors" "${INPUTS[@]}" "${rflags[@]}" \
    --threads 1 --repeat 3 2>/dev/null || failed+=("second run (--repeat 3) failed")
for n in "${OUTS[@]}"; do
    cmp "$WORK/threads1.$n.npy" "$WORK/again.$n.npy" ||
        failed+=("second run, third forward: output $n differs from the first run")
done

id=$(basename "$CASE")
if [ ${#failed[@]} -ne 0 ]; then
    printf 'diff.%s: FAILED\n' "$id"; printf '  %s\n' "${failed[@]}"; exit 1
fi
echo "diff.$id: ok (interpreter; passes: $(echo $passes); isas vs scalar: ${isas[*]:-none};" \
     "threads 1 = 2 = 3 bitwise; a second run with --repeat 3 bitwise equal)"
