#!/usr/bin/env bash
# tests/cli/inspect.sh KILN: `kiln inspect` text dumps, --after, --dot and --svg.
set -u
KILN=$1
cd "$(dirname "$0")/../.." || exit 2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
tiny=(models/gpt2.yaml -D n_layer=2 -D n_head=2 -D n_embd=16 -D vocab_size=11 -D n_positions=8)

"$KILN" inspect "${tiny[@]}" > "$tmp/all" || bad "inspect failed"
passes=$("$KILN" --help | awk '/^passes/{p=1;next} p && !NF{exit} p{print $1}')
for p in parse $passes; do
    grep -q "^// after $p" "$tmp/all" && ok || bad "inspect shows no dump after $p"
done
"$KILN" inspect "${tiny[@]}" --after eliminate-dead-code > "$tmp/one" || bad "--after failed"
[ "$(grep -c '^// after' "$tmp/one")" = 1 ] && ok || bad "--after PASS prints exactly one dump"
"$KILN" inspect "${tiny[@]}" --after no-such-pass > /dev/null 2>&1
[ $? -eq 2 ] && ok || bad "--after of an unknown pass exits 2"

"$KILN" inspect "${tiny[@]}" --dot > "$tmp/g.dot" || bad "--dot failed"
grep -q '^digraph "gpt2"' "$tmp/g.dot" && ok || bad "--dot writes a digraph"
for c in h_0 h_1; do
    grep -q "subgraph cluster_$c " "$tmp/g.dot" && ok || bad "--dot has a cluster for layer $c"
done
grep -q 'label="f32\[batch, seq, 16\]"' "$tmp/g.dot" && ok || bad "--dot puts shapes on edges"
grep -q '@gpt2.yaml:[0-9]' "$tmp/g.dot" && ok || bad "--dot puts spec lines on nodes"

if command -v dot > /dev/null; then
    "$KILN" inspect "${tiny[@]}" --svg "$tmp/g.svg" && grep -q '<svg' "$tmp/g.svg" && ok || bad "--svg renders"
    ls "$tmp"/.g.svg.tmp* > /dev/null 2>&1 && bad "--svg left a temporary file" || ok
else
    echo "SKIP: --svg rendering (Graphviz's dot is not installed)"
    out=$("$KILN" inspect "${tiny[@]}" --svg "$tmp/g.svg" 2>&1)
    [ $? -ne 0 ] && [[ $out == *"needs Graphviz"* ]] && ok || bad "--svg without dot explains itself"
fi
echo "cli.inspect: $pass passed, $fail failed"
[ $fail -eq 0 ]
