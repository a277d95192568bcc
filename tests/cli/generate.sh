#!/usr/bin/env bash
# tests/cli/generate.sh KILN: the generation front end of a model binary (runtime/text.c),
# on models/gpt2.yaml at the size of the bundled trained character model.
#   - greedy text from "ROMEO:" equals PyTorch's (400 characters: the first 57 decoded one
#     at a time with the key/value cache, then the 64-character window slides);
#   - --ids prints the ids of that same text; -n 0 prints the prompt alone;
#   - sampling is reproducible from --seed, and another seed gives another text;
#   - --interactive continues the context across prompts read from stdin;
#   - errors: exit status and exact message (no text roles, no tokenizer, bad values, a
#     tokenizer larger than the model's vocabulary, a character outside the vocabulary).
set -u
KILN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")/../.." || exit 2
data=demo/gpt2-shakespeare-char
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-gen.XXXXXX"); trap 'rm -rf "$work"' EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

"$KILN" build models/gpt2.yaml -D n_layer=4 -D n_head=4 -D n_embd=128 -D vocab_size=65 \
    -D n_positions=64 -o "$work/gpt2" >/dev/null || { echo "FAIL: kiln build"; exit 1; }
G=("$work/gpt2" --weights "$data/model.safetensors" --tokenizer "$data")

# Greedy: the reference continuation, byte for byte (the file's first line is a comment).
"${G[@]}" -p $'ROMEO:\n' -n 400 --temp 0 > "$work/greedy.txt" 2> "$work/greedy.err"
if tail -n +2 "$data/reference-greedy-romeo.txt" | cmp -s - "$work/greedy.txt"; then ok
else bad "greedy text differs from $data/reference-greedy-romeo.txt"; fi
grep -q '^gpt2: 7 prompt tokens, prefill .* ms, decode .* ms/token, .* tokens/s (399 tokens; context 64, kv cache)$' \
    "$work/greedy.err" && ok || bad "figures line: $(cat "$work/greedy.err")"

# --ids: the same tokens as ids (decoded back with kiln tokenize).
"${G[@]}" -p $'ROMEO:\n' -n 40 --temp 0 --ids > "$work/ids.txt" 2>/dev/null
want=$(head -c $((7 + 40)) "$work/greedy.txt" | tail -c 40)
got=$("$KILN" tokenize --tokenizer "$data/vocab.json" --text "$(cat "$work/ids.txt")" --decode)
[ "$got" = "$want" ] && ok || bad "--ids: decoded '$got', want '$want'"
[ "$(wc -w < "$work/ids.txt")" -eq 40 ] && ok || bad "--ids: $(wc -w < "$work/ids.txt") ids, want 40"
got=$("${G[@]}" -p "ROMEO:" -n 0 2>/dev/null)
[ "$got" = "ROMEO:" ] && ok || bad "-n 0: '$got'"

# Sampling: reproducible from the seed.
a=$("${G[@]}" -p "JULIET:" -n 80 --temp 0.8 --top-k 20 --top-p 0.9 --seed 7 2>/dev/null)
b=$("${G[@]}" -p "JULIET:" -n 80 --temp 0.8 --top-k 20 --top-p 0.9 --seed 7 --threads 1 2>/dev/null)
c=$("${G[@]}" -p "JULIET:" -n 80 --temp 0.8 --top-k 20 --top-p 0.9 --seed 8 2>/dev/null)
[ "$a" = "$b" ] && ok || bad "--seed 7 twice gave different text"
[ "$a" != "$c" ] && ok || bad "--seed 7 and --seed 8 gave the same text"
[ ${#a} -eq $((7 + 80)) ] && ok || bad "sampled text has ${#a} characters, want 87"

# Interactive: two prompts, the second continuing the first's context.
got=$(printf 'ROMEO:\n' | "${G[@]}" --interactive -p "KING:" -n 5 --temp 0 2>/dev/null | wc -l)
[ "$got" -ge 2 ] && ok || bad "--interactive: $got lines"

# Errors.
check() {   # check STATUS MESSAGE CMD...
    local want_rc=$1 want=$2; shift 2
    local out rc; out=$("$@" 2>&1 >/dev/null); rc=$?
    if [ $rc -eq "$want_rc" ] && [ "$out" = "$want" ]; then ok; else
        bad "$*"; echo "  want ($want_rc): $want"; echo "  got  ($rc): $out"; fi
}
"$KILN" build models/seed-bert-layer.yaml -D hidden_size=8 -D attention_heads=2 -o "$work/seed" >/dev/null
check 2 "seed_bert_layer: error: this model has no text roles (its spec has no \`text:\` section), so it reads .npy inputs only" \
    "$work/seed" --weights x --tokenizer "$data" -p hi
check 2 "gpt2: error: missing --tokenizer PATH (a vocabulary: see docs/tokenizers.md) (run with --help for usage)" \
    "$work/gpt2" --weights "$data/model.safetensors" -p hi
check 2 "gpt2: error: --temp wants a number from 0 to 100, found 'hot' (run with --help for usage)" \
    "${G[@]}" -p hi --temp hot
check 2 "gpt2: error: give one of -p PROMPT (or --interactive), --text TEXT, --embed (run with --help for usage)" \
    "${G[@]}" -p hi --text there
if [ -d ../shared/data/gpt2-tokenizer ]; then
    check 1 "gpt2: error: the tokenizer has 50257 tokens but the model's logits cover 65: is it the model's tokenizer?" \
        "$work/gpt2" --weights "$data/model.safetensors" --tokenizer ../shared/data/gpt2-tokenizer -p hi
fi
out=$("${G[@]}" -p "ROMEO: ©" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && [[ $out == "gpt2: error: the prompt: "* ]] && ok || bad "unknown character: ($rc) $out"

echo "cli.generate: $pass passed, $fail failed"
[ $fail -eq 0 ]
