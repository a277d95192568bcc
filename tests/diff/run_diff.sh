#!/usr/bin/env bash
# tests/diff/run_diff.sh KILN CASE_DIR WORK_DIR: differential checks on one reference case.
#
#   1. the generated code vs the reference interpreter (ir/interp.c), directly;
#   2. every optional pass switched off in turn vs the full pipeline.
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

id=$(basename "$CASE")
if [ ${#failed[@]} -ne 0 ]; then
    printf 'diff.%s: FAILED\n' "$id"; printf '  %s\n' "${failed[@]}"; exit 1
fi
echo "diff.$id: ok (interpreter and passes: $(echo $passes))"
