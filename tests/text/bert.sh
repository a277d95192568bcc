#!/usr/bin/env bash
# tests/text/bert.sh KILN: the encoder text front ends of a model binary (runtime/text_bert.c)
# on models/bert-mlm.yaml and models/bert.yaml, at the size of the fixture in
# tests/text/bert-mlm/ (2 layers, hidden 32, a 127-token WordPiece vocabulary, 16 positions,
# batch bound 3; written by tests/text/make_fixtures.py with PyTorch):
#   - fill-mask names, per [MASK], the tokens PyTorch ranks first, with its probabilities to
#     4 decimals (two masks, adjacent masks, a text cut to 16 tokens); --top N; --threads;
#   - --embed: mean and cls pooling over texts batched with padding (3 + 2, a blank line
#     skipped, a CRLF line, a line cut with a warning) equal PyTorch's per-text vectors
#     within 1e-4 of their largest magnitude, from a file, from stdin and from --text, for
#     bert-mlm and for bert (BertModel, the same encoder); the summary lines without --output;
#   - errors: exit status and message (no [MASK], every [MASK] cut off, a tokenizer without
#     [MASK], a missing tokenizer, a model without logits, bad --input-file, bad --pool, ...).
set -u
KILN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")/../.." || exit 2
F=tests/text/bert-mlm
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-text.XXXXXX"); trap 'rm -rf "$work"' EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

read -r -a DEFS < "$F/args"
"$KILN" build models/bert-mlm.yaml "${DEFS[@]}" -o "$work/mlm" >/dev/null 2>&1 || { echo "FAIL: kiln build bert-mlm"; exit 1; }
"$KILN" build models/bert.yaml "${DEFS[@]}" -o "$work/bert" >/dev/null 2>&1 || { echo "FAIL: kiln build bert"; exit 1; }
M=("$work/mlm" --weights "$F/model.safetensors" --tokenizer "$F/vocab.txt")
B=("$work/bert" --weights "$F/model.safetensors" --tokenizer "$F/vocab.txt")

# same_ranking GOT EXPECTED: the same "[MASK] k: token" lines in the same order, and each
# printed probability (4 decimals) within rounding of PyTorch's (6 decimals).
same_ranking() {
    awk 'NR == FNR { want[FNR] = $0; n = FNR; next }
         { split(want[FNR], w, " ");
           if ($1 != w[1] || $2 != w[2] || $3 != w[3] || NF != 4) { bad = 1; next }
           d = $4 - w[4]; if (d < 0) d = -d; if (d > 0.00005 + 1e-6) bad = 1 }
         END { exit (bad || FNR != n) }' "$2" "$1"
}

# ---- fill-mask -----------------------------------------------------------------------------
for t in "$F"/fill_mask.*.text; do
    name=$(basename "$t" .text)
    "${M[@]}" --text "$(cat "$t")" > "$work/$name.out" 2> "$work/$name.err"
    if same_ranking "$work/$name.out" "$F/$name.expected"; then ok; else
        bad "$name: fill-mask output differs from PyTorch's"
        diff "$F/$name.expected" "$work/$name.out" | sed 's/^/  /'
    fi
done
grep -qx 'bert_mlm: 9 tokens, 1 \[MASK\], forward [0-9.]* ms' "$work/fill_mask.one.err" && ok ||
    bad "figures line: $(cat "$work/fill_mask.one.err")"
grep -qx 'bert_mlm: 6 tokens, 2 \[MASK\]s, forward [0-9.]* ms' "$work/fill_mask.adjacent.err" && ok ||
    bad "figures line: $(cat "$work/fill_mask.adjacent.err")"
want="bert_mlm: warning: the text is 24 tokens with [CLS] and [SEP], the model takes 16: dropped the last 8 before [SEP], as Hugging Face's truncation=True does"
[ "$(head -n 1 "$work/fill_mask.long.err")" = "$want" ] && ok ||
    bad "truncation warning: $(head -n 1 "$work/fill_mask.long.err")"

# --top 2: the first two of each mask's five; --threads does not change a digit.
"${M[@]}" --text "$(cat "$F/fill_mask.two.text")" --top 2 > "$work/top2.out" 2>/dev/null
awk '{ split($2, k, ":"); if (++seen[k[1]] <= 2) print }' "$F/fill_mask.two.expected" > "$work/top2.expected"
same_ranking "$work/top2.out" "$work/top2.expected" && ok || bad "--top 2: $(cat "$work/top2.out")"
"${M[@]}" --text "$(cat "$F/fill_mask.two.text")" --threads 1 > "$work/t1.out" 2>/dev/null
"${M[@]}" --text "$(cat "$F/fill_mask.two.text")" --threads 3 > "$work/t3.out" 2>/dev/null
cmp -s "$work/t1.out" "$work/t3.out" && cmp -s "$work/t1.out" "$work/fill_mask.two.out" && ok ||
    bad "--threads 1 and 3 print different candidates"

# ---- embeddings ----------------------------------------------------------------------------
close() {   # close GOT.npy REF.npy WHAT
    if "$KILN" diff "$1" "$2" --atol-scale 1e-4 > "$work/diff.out" 2>&1; then ok; else
        bad "$3: differs from PyTorch's"; sed 's/^/  /' "$work/diff.out"; fi
}
"${M[@]}" --embed --input-file "$F/embed.txt" --output "$work/mean.npy" 2> "$work/embed.err" &&
    close "$work/mean.npy" "$F/embed.mean.npy" "bert-mlm --embed (mean)" || bad "bert-mlm --embed (mean) failed"
"${M[@]}" --embed --input-file "$F/embed.txt" --pool cls --output "$work/cls.npy" 2>/dev/null &&
    close "$work/cls.npy" "$F/embed.cls.npy" "bert-mlm --embed --pool cls" || bad "--pool cls failed"
"${M[@]}" --embed --input-file - --output "$work/stdin.npy" < "$F/embed.txt" 2>/dev/null &&
    close "$work/stdin.npy" "$F/embed.mean.npy" "bert-mlm --embed --input-file -" || bad "--input-file - failed"
"${M[@]}" --embed --text "The cat sat on the mat." --output "$work/one.npy" 2>/dev/null &&
    close "$work/one.npy" "$F/embed.first.npy" "bert-mlm --embed --text" || bad "--embed --text failed"
"${B[@]}" --embed --input-file "$F/embed.txt" --output "$work/bert.npy" 2>/dev/null &&
    close "$work/bert.npy" "$F/embed.mean.npy" "bert --embed (mean)" || bad "bert --embed failed"
"${B[@]}" --embed --input-file "$F/embed.txt" --threads 1 --output "$work/bert1.npy" 2>/dev/null &&
    cmp -s "$work/bert.npy" "$work/bert1.npy" && ok || bad "bert --embed: --threads 1 changes the vectors"
want="bert_mlm: warning: line 4 of $F/embed.txt is 21 tokens with [CLS] and [SEP], the model takes 16: dropped the last 5 before [SEP], as Hugging Face's truncation=True does
bert_mlm: 5 texts, mean pooling, 2 forwards (batch <= 3), X ms; wrote $work/mean.npy"
got=$(sed 's/, [0-9.]* ms;/, X ms;/' "$work/embed.err")
[ "$got" = "$want" ] && ok || bad "--embed stderr: $got"

"${M[@]}" --embed --input-file "$F/embed.txt" > "$work/summary.out" 2>/dev/null
[ "$(grep -cE '^[1-5]: \[-?[0-9]+\.[0-9]{4} -?[0-9]+\.[0-9]{4} -?[0-9]+\.[0-9]{4} \.\.\. -?[0-9]+\.[0-9]{4}\] \(32 values, norm [0-9]+\.[0-9]{4}\)$' "$work/summary.out")" -eq 5 ] &&
    [ "$(wc -l < "$work/summary.out")" -eq 5 ] && ok || bad "summary lines: $(cat "$work/summary.out")"

# ---- errors --------------------------------------------------------------------------------
check() {   # check STATUS MESSAGE CMD...: exact stderr
    local want_rc=$1 want=$2; shift 2
    local out rc; out=$("$@" 2>&1 >/dev/null); rc=$?
    if [ $rc -eq "$want_rc" ] && [ "$out" = "$want" ]; then ok; else
        bad "$*"; echo "  want ($want_rc): $want"; echo "  got  ($rc): $out"; fi
}
check_prefix() {   # check_prefix STATUS PREFIX CMD...: stderr starts with PREFIX
    local want_rc=$1 want=$2; shift 2
    local out rc; out=$("$@" 2>&1 >/dev/null); rc=$?
    if [ $rc -eq "$want_rc" ] && [[ $out == "$want"* ]]; then ok; else
        bad "$*"; echo "  want ($want_rc): $want..."; echo "  got  ($rc): $out"; fi
}
check 1 "bert_mlm: error: no [MASK] in the text: write [MASK] where a token should be guessed" \
    "${M[@]}" --text "the cat sat on the mat"
check 1 "bert_mlm: warning: the text is 19 tokens with [CLS] and [SEP], the model takes 16: dropped the last 3 before [SEP], as Hugging Face's truncation=True does
bert_mlm: error: every [MASK] is past the first 16 tokens, which are all the model takes" \
    "${M[@]}" --text "the quick brown fox jumped over the lazy dog and the cat sat on the [MASK]"
check 1 "bert_mlm: error: the tokenizer has no [MASK] token, so there is nothing to fill" \
    "$work/mlm" --weights "$F/model.safetensors" --tokenizer demo/gpt2-shakespeare-char --text "a [MASK]"
check 2 "bert_mlm: error: --output is for --embed; fill-mask prints its candidates" \
    "${M[@]}" --text "a [MASK]" --output "$work/x.npy"
check_prefix 2 "bert_mlm: error: missing --tokenizer" \
    "$work/mlm" --weights "$F/model.safetensors" --text "a [MASK]"
check_prefix 1 "bert_mlm: error: " \
    "$work/mlm" --weights "$F/model.safetensors" --tokenizer "$work/no-such-vocab.txt" --text "a [MASK]"
check_prefix 2 "bert: error: this model has no logits output (spec \`text: logits\`)" \
    "${B[@]}" --text "a [MASK]"
check 1 "bert: error: --input-file $work/none.txt: cannot open: No such file or directory" \
    "${B[@]}" --embed --input-file "$work/none.txt"
check 1 "bert: error: --input-file $work: cannot read: Is a directory" \
    "${B[@]}" --embed --input-file "$work"
printf '\n  \r\n\n' > "$work/blank.txt"
check 1 "bert: error: --input-file $work/blank.txt holds no text (every line is blank)" \
    "${B[@]}" --embed --input-file "$work/blank.txt"
check 2 "bert: error: --pool wants mean or cls, found 'max'" \
    "${B[@]}" --embed --text hi --pool max
check 2 "bert: error: --embed takes --text or --input-file, not both" \
    "${B[@]}" --embed --text hi --input-file "$F/embed.txt"
check 2 "bert: error: --embed needs --text TEXT or --input-file FILE (one text per line)" \
    "${B[@]}" --embed
check_prefix 1 "bert: error: --output: " \
    "${B[@]}" --embed --text hi --output "$work/no/such/dir/x.npy"
[ ! -e "$work/no/such/dir/x.npy" ] && ok || bad "a failed --output left a file"

echo "text.bert: $pass passed, $fail failed"
[ $fail -eq 0 ]
