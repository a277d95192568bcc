#!/usr/bin/env bash
# tests/cli/tokenize.sh KILN: `kiln tokenize` on the three tokenizer kinds, both directions.
# Uses ../shared/data (beside the checkout); skips, saying so, when it is absent.
set -u
KILN=$1
cd "$(dirname "$0")/../.." || exit 2
data=../shared/data
if [ ! -d "$data/gpt2-tokenizer" ]; then echo "SKIP: $data not found"; exit 0; fi
pass=0; fail=0
check() {   # check WHAT EXPECTED ARGS...
    local what=$1 want=$2; shift 2
    local got; got=$("$KILN" tokenize "$@" 2>&1)
    if [ "$got" = "$want" ]; then pass=$((pass + 1)); else
        fail=$((fail + 1)); echo "FAIL $what: kiln tokenize $*"; echo "  want: $want"; echo "  got:  $got"; fi
}
check gpt2.encode "15496 995" --tokenizer $data/gpt2-tokenizer --text "Hello world"
check gpt2.decode "Hello world" --tokenizer $data/gpt2-tokenizer --text "15496 995" --decode
check gpt2.special "50256" --tokenizer $data/gpt2-tokenizer --text "<|endoftext|>" --special
check bert.mask "1996 3007 1997 2605 2003 103 1012" \
    --tokenizer $data/bert-base-uncased-vocab/vocab.txt --text "The capital of France is [MASK]." --special
check char.encode "30 27 25 17 27 10" --tokenizer demo/gpt2-shakespeare-char/vocab.json --text "ROMEO:"
check char.decode "ROMEO:" --tokenizer demo/gpt2-shakespeare-char/vocab.json --text "30 27 25 17 27 10" --decode
# errors: exit status and message
"$KILN" tokenize --tokenizer $data/gpt2-tokenizer --text "1 2 999999" --decode >/dev/null 2>&1
[ $? -eq 1 ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL decode of an id outside the vocabulary must exit 1"; }
"$KILN" tokenize --tokenizer /nonexistent --text x >/dev/null 2>&1
[ $? -eq 1 ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL a missing tokenizer must exit 1"; }
"$KILN" tokenize --text x >/dev/null 2>&1
[ $? -eq 2 ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL no --tokenizer must exit 2"; }
echo "cli.tokenize: $pass passed, $fail failed"
[ $fail -eq 0 ]
