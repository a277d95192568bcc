#!/usr/bin/env bash
# tests/cli/explain.sh KILN: `kiln inspect --explain` (ir/explain.c): every fusion candidate
# with what it fused into or the condition that failed, and the spec lines of both ends.
#   - fused attention blocks per shipped spec at its default size: one per layer;
#   - the near miss (tests/golden/attn-near-miss.yaml): the exact candidate, target and
#     failed-condition lines, and the fused neighbour;
#   - element-wise candidates: a fused bias add and a skipped embedding add, with reasons;
#   - a disabled pass says so; --explain outside inspect is a usage error.
set -u
KILN=$1
cd "$(dirname "$0")/../.." || exit 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-explain.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# has FILE LINE: FILE holds LINE exactly (a whole line)
has() { grep -qxF -- "$2" "$1" && ok || bad "$1 lacks the line '$2'"; }

# Fused attention per shipped spec (defaults: gpt2 and bert have 12 layers, seed one).
for case in gpt2:12 bert:12 seed-bert-layer:1; do
    spec=${case%%:*} n=${case##*:}
    "$KILN" inspect --explain "models/$spec.yaml" > "$tmp/$spec" || bad "$spec: --explain failed"
    has "$tmp/$spec" "fuse-attention: $n candidate$([ "$n" = 1 ] || echo s), $n fused"
    [ "$(grep -c '^      fused: fused_attention ' "$tmp/$spec")" = "$n" ] && ok ||
        bad "$spec: want $n 'fused: fused_attention' lines"
done
has "$tmp/gpt2" "  attention h.0.attn.{qk -> scaled -> masked -> probs} @gpt2.yaml:89"
has "$tmp/gpt2" "      into matmul h.0.attn.ctx @gpt2.yaml:93"
has "$tmp/gpt2" "      fused: fused_attention 'h.0.attn.ctx_t' @gpt2.yaml:89"

# The near miss: its probabilities are an output, so the first chain stays; the second fuses.
"$KILN" inspect --explain tests/golden/attn-near-miss.yaml > "$tmp/near" || bad "near miss: failed"
f=$tmp/near
has "$f" "fuse-attention: 2 candidates, 1 fused"
has "$f" "  attention a.{qk -> scaled -> masked -> probs} @attn-near-miss.yaml:25"
has "$f" "      into matmul a.ctx @attn-near-miss.yaml:29"
has "$f" "      not fused: softmax 'a.probs' is a model output"
has "$f" "  attention b.{qk -> scaled -> probs} @attn-near-miss.yaml:30"
has "$f" "      into matmul b.ctx @attn-near-miss.yaml:34"
has "$f" "      fused: fused_attention 'b.ctx' @attn-near-miss.yaml:30"
# the failed condition follows its own candidate, not the other one
[ "$(grep -A2 -F 'attention a.{qk' "$f" | tail -n 1)" = "      not fused: softmax 'a.probs' is a model output" ] &&
    ok || bad "near miss: the reason is not under candidate a"

# Element-wise candidates on a small gpt2: the bias and residual adds fuse into the
# projection; the embedding add cannot (its operands broadcast), with the reason.
"$KILN" inspect --explain models/gpt2.yaml -D n_layer=1 -D n_embd=32 -D n_head=2 \
    -D vocab_size=11 -D n_positions=8 > "$tmp/ew" || bad "gpt2 tiny: failed"
has "$tmp/ew" "fuse-elementwise: 9 candidates, 7 fused"
grep -A2 -xF "  add h.0.res_attn @gpt2.yaml:101" "$tmp/ew" > "$tmp/res"
has "$tmp/res" "      into matmul h.0.attn.c_proj @gpt2.yaml:99"
has "$tmp/res" "      fused: matmul 'h.0.attn.c_proj' @gpt2.yaml:99"
has "$tmp/ew" "      not fused: operand 'pos_emb' f32[seq, 32] broadcasts into f32[batch, seq, 32], not as the same shape, a last-axis vector or a scalar"

# A disabled pass; --explain belongs to inspect alone.
"$KILN" inspect --explain tests/golden/attn-near-miss.yaml --disable-pass fuse-attention > "$tmp/off"
has "$tmp/off" "fuse-attention: did not run (--disable-pass)"
"$KILN" build --explain tests/golden/attn-near-miss.yaml -o "$tmp/x" > /dev/null 2>&1
[ $? -eq 2 ] && ok || bad "build --explain is not a usage error"
"$KILN" inspect --explain --after parse tests/golden/attn-near-miss.yaml > /dev/null 2>&1
[ $? -eq 2 ] && ok || bad "--explain --after is not a usage error"
echo "cli.explain: $pass passed, $fail failed"
[ $fail -eq 0 ]
