#!/usr/bin/env bash
# tests/bisect/run.sh KILN WORK TEST: dumps of intermediate values and the bisections built
# on them (docs/inspect.md, "Where does it go wrong"), one ctest per TEST (label `bisect`):
#
#   dump.CASE     for a reference case: the normal build's C has no dump code and its binary
#                 refuses --dump-dir (exit 2, saying how to get a dump build); a --dump
#                 build's outputs are bitwise the normal build's; its index.tsv lists what
#                 it wrote; and `kiln diff --bisect` against `kiln interp --dump-dir` finds
#                 every stored value within tolerance (exit 0)
#   eps           gpt2 with a wrong layer_norm eps in layer 1 only (sed on the shipped spec;
#                 eps = 1e-5 + 0.5 at i = 1): --bisect against the unedited spec's interp
#                 dump names h.1.ln_2 and its spec line, its input matching (exit 1)
#   transpose     bert with the context transpose of layer 1 only left undone (perm
#                 [0, 2 - i, 1 + i, 3]): --bisect names encoder.layer.1.attention.self.ctx_t
#   passes        KILN_TEST_BREAK_PASS=fuse-elementwise (ir/pipeline.c: the first fused add
#                 subtracts): --bisect-passes names fuse-elementwise, then h.0.attn.qkv, its
#                 kernel and spec line (exit 1)
#   passes-attn   KILN_TEST_BREAK_PASS=fuse-attention: names fuse-attention and h.0.attn.ctx_t
#                 (the fused node, which took the place of the transpose after it)
#   passes-clean  nothing broken: --bisect-passes says the outputs agree (exit 0)
#   usage         the command-line errors exit 2 with a message
#   pytorch.CASE  tests/reference/dump_ref.py writes PyTorch's values by spec name, and
#                 --bisect finds every one the build stored within tolerance; skipped (77)
#                 without python3-torch
set -u
[ $# -eq 3 ] || { echo "usage: $0 KILN WORK TEST" >&2; exit 2; }
abs() { (cd "$(dirname "$1")" && printf '%s/%s' "$(pwd)" "$(basename "$1")"); }
KILN=$(abs "$1"); mkdir -p "$2"; WORK=$(abs "$2"); TEST=$3
cd "$(dirname "$0")/../.." || exit 2
rm -rf "${WORK:?}"/*

pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
run() { printf '+'; printf ' %q' "$@"; printf '\n'; "$@"; }
# expect TEXT FILE: FILE holds TEXT (fixed string)
expect() { grep -qF -- "$1" "$2" && ok || { bad "expected '$1' in $2:"; sed 's/^/    /' "$2"; }; }

# case CASE: ARGS (spec, -D ...), INS (--input flags), W (weights), OUTS (output names)
case_args() {
    local c=tests/reference/cases/$1 f n
    read -r -a ARGS < "$c/args"
    W=$c/weights.safetensors
    INS=(); OUTS=()
    for f in "$c"/in.*.npy; do n=${f##*/in.}; INS+=(--input "${n%.npy}=$f"); done
    for f in "$c"/out.*.npy; do n=${f##*/out.}; OUTS+=("${n%.npy}"); done
}

case $TEST in
dump.*)
    case_args "${TEST#dump.}"
    run "$KILN" emit "${ARGS[@]}" -o "$WORK/normal.c" > /dev/null || bad "emit failed"
    n=$(grep -c 'kiln_dump\|model_dump\|r->dump' "$WORK/normal.c")
    [ "$n" = 0 ] && ok || bad "the normal build's C mentions dumping $n times"
    run "$KILN" emit "${ARGS[@]}" --dump -o "$WORK/dump.c" > /dev/null || bad "emit --dump failed"
    grep -q 'kiln_dump_node(r, 0, ' "$WORK/dump.c" && ok || bad "the --dump C dumps nothing"
    run "$KILN" build "${ARGS[@]}" -o "$WORK/normal" 2> /dev/null || bad "build failed"
    run "$KILN" build "${ARGS[@]}" --dump -o "$WORK/dump" 2> /dev/null || bad "build --dump failed"
    o1=(); o2=()
    for n in "${OUTS[@]}"; do
        o1+=(--output "$n=$WORK/normal.$n.npy"); o2+=(--output "$n=$WORK/dump.$n.npy")
    done
    run "$WORK/normal" --weights "$W" "${INS[@]}" "${o1[@]}" || bad "the normal binary failed"
    run "$WORK/dump" --weights "$W" "${INS[@]}" "${o2[@]}" --dump-dir "$WORK/d" 2> "$WORK/err" ||
        bad "the --dump binary failed"
    for n in "${OUTS[@]}"; do
        cmp "$WORK/normal.$n.npy" "$WORK/dump.$n.npy" && ok || bad "output $n: dump build differs"
    done
    # The index: a header, then one line per value; every stored one has its file.
    head -1 "$WORK/d/index.tsv" | grep -q $'^name\top\tdtype\tshape\tspec\tkernel\tfile\tinputs$' &&
        ok || bad "index.tsv header"
    missing=$(awk -F'\t' 'NR > 1 && $7 ~ /\.npy$/ {print $7}' "$WORK/d/index.tsv" |
              while read -r f; do [ -f "$WORK/d/$f" ] || echo "$f"; done)
    [ -z "$missing" ] && ok || bad "index.tsv lists files not written: $missing"
    stored=$(awk -F'\t' 'NR > 1 && $7 ~ /\.npy$/' "$WORK/d/index.tsv" | wc -l)
    expect "dumped $stored values into $WORK/d" "$WORK/err"
    # A normal binary refuses --dump-dir and says how to get one.
    "$WORK/normal" --weights "$W" "${INS[@]}" --dump-dir "$WORK/x" > /dev/null 2> "$WORK/err"
    [ $? -eq 2 ] && ok || bad "--dump-dir on a normal binary does not exit 2"
    expect "built without --dump" "$WORK/err"
    expect "kiln build SPEC --dump" "$WORK/err"
    [ ! -e "$WORK/x" ] && ok || bad "--dump-dir on a normal binary created the folder"
    # The compiled values against the interpreter's.
    run "$KILN" interp "${ARGS[@]}" --weights "$W" "${INS[@]}" --dump-dir "$WORK/ref" > /dev/null ||
        bad "interp --dump-dir failed"
    run "$KILN" diff --bisect "${ARGS[@]}" --weights "$W" "${INS[@]}" --ref-dir "$WORK/ref" \
        > "$WORK/out"
    [ $? -eq 0 ] && ok || bad "--bisect against the interpreter does not exit 0"
    cat "$WORK/out"
    expect "all $stored values with a reference in $WORK/ref match" "$WORK/out"
    ;;
eps)
    case_args gpt2.small
    line=$(grep -n 'name: ln_2, in: \[res_attn' models/gpt2.yaml | cut -d: -f1)
    eps='"1e-5 + 0.5 * max(0, 1 - (i - 1) ** 2)"'       # 0.5 in layer 1, 1e-5 elsewhere
    sed "s/\(name: ln_2, in: \[res_attn, ln_2.weight, ln_2.bias\], eps: \)1e-5/\1$eps/" \
        models/gpt2.yaml > "$WORK/gpt2-eps.yaml"
    [ "$(diff models/gpt2.yaml "$WORK/gpt2-eps.yaml" | grep -c '^>')" = 1 ] && ok ||
        bad "the sed edit did not change exactly one line"
    run "$KILN" interp "${ARGS[@]}" --weights "$W" "${INS[@]}" --dump-dir "$WORK/ref" > /dev/null ||
        bad "interp --dump-dir failed"
    run "$KILN" diff --bisect "$WORK/gpt2-eps.yaml" "${ARGS[@]:1}" --weights "$W" "${INS[@]}" \
        --ref-dir "$WORK/ref" > "$WORK/out"
    [ $? -eq 1 ] && ok || bad "--bisect does not exit 1"
    cat "$WORK/out"
    expect "first value off $WORK/ref, in topological order" "$WORK/out"
    expect "  h.1.ln_2  (layer_norm, $WORK/gpt2-eps.yaml:$line, kernel " "$WORK/out"
    expect "  input  h.1.res_attn  f32 [2, 12, 64]: matches" "$WORK/out"
    expect "this node computes differently" "$WORK/out"
    ;;
transpose)
    case_args bert.pad
    line=$(grep -n 'name: attention.self.ctx_t,' models/bert.yaml | cut -d: -f1)
    perm='[0, "2 - i", "1 + i", 3]'                     # the identity in layer 1
    pat='\(name: attention.self.ctx_t,  in: \[attention.self.ctx\], perm: \)\[0, 2, 1, 3\]'
    sed "s/$pat/\1$perm/" models/bert.yaml > "$WORK/bert-t.yaml"
    [ "$(diff models/bert.yaml "$WORK/bert-t.yaml" | grep -c '^>')" = 1 ] && ok ||
        bad "the sed edit did not change exactly one line"
    run "$KILN" interp "${ARGS[@]}" --weights "$W" "${INS[@]}" --dump-dir "$WORK/ref" > /dev/null ||
        bad "interp --dump-dir failed"
    run "$KILN" diff --bisect "$WORK/bert-t.yaml" "${ARGS[@]:1}" --weights "$W" "${INS[@]}" \
        --ref-dir "$WORK/ref" > "$WORK/out"
    [ $? -eq 1 ] && ok || bad "--bisect does not exit 1"
    cat "$WORK/out"
    expect "  encoder.layer.1.attention.self.ctx_t  (transpose, $WORK/bert-t.yaml:$line, kernel " \
        "$WORK/out"
    expect "the shape differs" "$WORK/out"
    expect "  input  encoder.layer.1.attention.self.ctx  f32 [2, 4, 10, 8]: matches" "$WORK/out"
    ;;
passes|passes-attn)
    case_args gpt2.small
    if [ "$TEST" = passes ]; then
        pass_name=fuse-elementwise; node=h.0.attn.qkv; op=add
        pattern='name: attn.qkv,'
    else
        pass_name=fuse-attention; node=h.0.attn.ctx_t; op=transpose
        pattern='name: attn.ctx_t,'
    fi
    line=$(grep -n "$pattern" models/gpt2.yaml | cut -d: -f1)
    KILN_TEST_BREAK_PASS=$pass_name run "$KILN" diff --bisect-passes "${ARGS[@]}" --weights "$W" \
        "${INS[@]}" > "$WORK/out"
    [ $? -eq 1 ] && ok || bad "--bisect-passes does not exit 1"
    cat "$WORK/out"
    expect "the outputs differ (logits: " "$WORK/out"
    expect "without $pass_name:" "$WORK/out"
    expect "=> the first pass whose being on makes the outputs disagree: $pass_name" "$WORK/out"
    expect "  $node  ($op, models/gpt2.yaml:$line, kernel k_" "$WORK/out"
    [ "$(grep -c 'the outputs agree' "$WORK/out")" = 1 ] && ok ||
        bad "exactly one pass switched off should make the outputs agree"
    ;;
passes-clean)
    case_args gpt2.small
    run "$KILN" diff --bisect-passes "${ARGS[@]}" --weights "$W" "${INS[@]}" > "$WORK/out"
    [ $? -eq 0 ] && ok || bad "--bisect-passes on a sound pipeline does not exit 0"
    cat "$WORK/out"
    expect "the outputs agree with the interpreter; nothing to bisect" "$WORK/out"
    ;;
usage)
    case_args gpt2.small
    usage() {   # usage TEXT ARGS...: exit 2 with TEXT on stderr
        local text=$1; shift
        "$@" > /dev/null 2> "$WORK/err"
        [ $? -eq 2 ] && ok || bad "exit status of: $*"
        expect "$text" "$WORK/err"
    }
    usage "--bisect needs --ref-dir DIR" "$KILN" diff --bisect "${ARGS[@]}" --weights "$W" \
        "${INS[@]}"
    usage "--ref-dir $WORK/none: not a folder" "$KILN" diff --bisect "${ARGS[@]}" --weights "$W" \
        "${INS[@]}" --ref-dir "$WORK/none"
    usage "--ref-dir is for --bisect" "$KILN" diff --bisect-passes "${ARGS[@]}" --weights "$W" \
        "${INS[@]}" --ref-dir "$WORK"
    usage "two commands" "$KILN" diff --bisect --bisect-passes "${ARGS[@]}" --weights "$W" \
        "${INS[@]}"
    usage "needs --weights" "$KILN" diff --bisect-passes "${ARGS[@]}" "${INS[@]}"
    usage "plan-memory: not an optional pass" "$KILN" diff --bisect-passes "${ARGS[@]}" --weights \
        "$W" "${INS[@]}" --disable-pass plan-memory
    usage "--atol-scale wants a non-negative number" "$KILN" diff --bisect "${ARGS[@]}" \
        --weights "$W" "${INS[@]}" --ref-dir "$WORK" --atol-scale -1
    usage "--dump belongs to 'kiln build' and 'kiln emit'" "$KILN" interp "${ARGS[@]}" --dump \
        --weights "$W" "${INS[@]}"
    usage "--dump-dir belongs to 'kiln interp'" "$KILN" build "${ARGS[@]}" --dump-dir "$WORK/d"
    "$KILN" diff --bisect --help > "$WORK/out" && ok || bad "kiln diff --bisect --help"
    expect "--bisect-passes" "$WORK/out"
    "$KILN" --help > "$WORK/out"
    expect "kiln diff    --bisect SPEC" "$WORK/out"
    expect "--dump-dir DIR" "$WORK/out"
    # A spec error stops the bisection before any build (exit 2).
    printf 'kiln: 1\nname: x\n' > "$WORK/broken.yaml"
    "$KILN" diff --bisect-passes "$WORK/broken.yaml" --weights "$W" "${INS[@]}" > /dev/null \
        2> "$WORK/err"
    [ $? -eq 2 ] && ok || bad "a broken spec does not exit 2"
    expect "has errors" "$WORK/err"
    ;;
pytorch.*)
    if ! /usr/bin/python3 -c 'import torch, numpy' 2> /dev/null; then
        echo "SKIP: python3-torch is not installed"; exit 77
    fi
    c=${TEST#pytorch.}
    case_args "$c"
    OMP_WAIT_POLICY=passive run /usr/bin/python3 tests/reference/dump_ref.py \
        "tests/reference/cases/$c" "$WORK/torch" || bad "dump_ref.py failed"
    run "$KILN" diff --bisect "${ARGS[@]}" --weights "$W" "${INS[@]}" --ref-dir "$WORK/torch" \
        > "$WORK/out"
    [ $? -eq 0 ] && ok || bad "--bisect against PyTorch does not exit 0"
    cat "$WORK/out"
    expect "values with a reference in $WORK/torch match (of " "$WORK/out"
    ;;
*)
    echo "$0: unknown test $TEST" >&2; exit 2 ;;
esac
echo "bisect.$TEST: $pass passed, $fail failed"
[ $fail -eq 0 ]
