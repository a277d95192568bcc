#!/usr/bin/env bash
# run_case.sh: compare kiln's outputs for one reference case with PyTorch's.
#
#   bash tests/reference/run_case.sh KILN CASE_DIR WORK_DIR
#
# KILN is the kiln driver; CASE_DIR a folder written by make_cases.py (args, tol,
# weights.safetensors, in.<name>.npy, out.<name>.npy); WORK_DIR receives the binary and
# the outputs (created if missing; old outputs removed).  The case is run twice:
#
#   1. kiln build SPEC -D ... -o WORK_DIR/model, then the binary with every input;
#   2. kiln interp SPEC -D ... with the same inputs (the IR interpreter);
#
# and every output of each is checked with `kiln diff OUT REF --atol-scale TOL`, which
# passes when |out - ref| <= TOL * max|ref| everywhere.  Every command is printed before it
# runs, with the paths it uses, so a failure can be reproduced by pasting it.  Spec paths in
# `args` are relative to the repository root, so the commands run from there.
#
# Exit status: 0 iff both runs produced every output and all of them match; 1 if anything
# failed; 2 on a usage error.

set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 KILN CASE_DIR WORK_DIR" >&2
    exit 2
fi

# Absolute paths first: the commands run from the repo root, not from the caller's folder.
abs_dir() { (cd "$1" 2>/dev/null && pwd); }
KILN=$1
case $KILN in
    /*) ;;
    */*) KILN=$(abs_dir "$(dirname "$KILN")")/$(basename "$KILN") ;;
esac
CASE=$(abs_dir "$2") || { echo "$0: no case folder $2" >&2; exit 2; }
WORK=$(mkdir -p "$3" && abs_dir "$3") || { echo "$0: cannot create $3" >&2; exit 2; }
ROOT=$(abs_dir "$(dirname "$0")/../..")
cd "$ROOT" || exit 2

ID=$(basename "$CASE")
[ -f "$CASE/args" ] || { echo "$0: $CASE has no args file" >&2; exit 2; }
read -r -a ARGS < "$CASE/args"         # SPEC -D name=value ...
SPEC=${ARGS[0]}
DEFS=("${ARGS[@]:1}")
TOL=1e-4
[ -f "$CASE/tol" ] && TOL=$(tr -d ' \t\r\n' < "$CASE/tol")

# --input NAME=FILE for every in.NAME.npy; the outputs to produce are the out.NAME.npy.
INPUTS=()
for f in "$CASE"/in.*.npy; do
    [ -e "$f" ] || continue
    name=${f##*/in.}
    INPUTS+=(--input "${name%.npy}=$f")
done
OUTS=()
for f in "$CASE"/out.*.npy; do
    [ -e "$f" ] || continue
    name=${f##*/out.}
    OUTS+=("${name%.npy}")
done
if [ ${#INPUTS[@]} -eq 0 ] || [ ${#OUTS[@]} -eq 0 ]; then
    echo "$0: $CASE has no in.*.npy or no out.*.npy" >&2
    exit 2
fi

# Print a command (shell-quoted, ready to paste), then run it.
run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    "$@"
}

FAILED=()

# check MODE: diff every WORK/MODE.NAME.npy against the case's out.NAME.npy.
check() {
    local mode=$1 name
    for name in "${OUTS[@]}"; do
        if ! run "$KILN" diff "$WORK/$mode.$name.npy" "$CASE/out.$name.npy" \
                --atol-scale "$TOL"; then
            FAILED+=("$mode: output $name differs (tol $TOL)")
        fi
    done
}

# outputs MODE: the --output NAME=WORK/MODE.NAME.npy flags.
outputs() {
    local name
    OUTFLAGS=()
    for name in "${OUTS[@]}"; do
        OUTFLAGS+=(--output "$name=$WORK/$1.$name.npy")
    done
}

echo "== reference.$ID: $SPEC ${DEFS[*]}  (cwd $ROOT, tol $TOL)"
rm -f "$WORK"/build.*.npy "$WORK"/interp.*.npy "$WORK/model"

# 1. compiled binary
outputs build
if ! run "$KILN" build "$SPEC" "${DEFS[@]}" -o "$WORK/model"; then
    FAILED+=("build: kiln build failed")
elif ! run "$WORK/model" --weights "$CASE/weights.safetensors" "${INPUTS[@]}" "${OUTFLAGS[@]}"; then
    FAILED+=("build: the model binary failed")
else
    check build
fi

# 2. reference interpreter
outputs interp
if ! run "$KILN" interp "$SPEC" "${DEFS[@]}" --weights "$CASE/weights.safetensors" \
        "${INPUTS[@]}" "${OUTFLAGS[@]}"; then
    FAILED+=("interp: kiln interp failed")
else
    check interp
fi

if [ ${#FAILED[@]} -ne 0 ]; then
    printf 'reference.%s: FAILED\n' "$ID"
    printf '  %s\n' "${FAILED[@]}"
    exit 1
fi
echo "reference.$ID: ok (build and interp, ${#OUTS[@]} output(s) within $TOL x max|ref|)"
exit 0
