#!/usr/bin/env bash
# tests/cli/report.sh KILN: `kiln emit/build --report` and `--report-json` (compiler/report.c,
# ir/cost.c).  Counts, never timings:
#   - tests/cli/matmul-bias.yaml, x [rows, 8] @ w [8, 16] + b [16], one kernel (the bias is
#     its epilogue).  By hand, at rows = 4:
#       FLOPs = 2 * 4 * 8 * 16 (multiply-adds) + 4 * 16 (the bias add)        = 1088
#       bytes = 4 * (4 * 8 + 8 * 16 + 16 + 4 * 16) (x, w, b read; y written)  = 960
#     and at --dims rows=2: FLOPs 2 * 2 * 8 * 16 + 2 * 16 = 544, bytes 4 * (16 + 128 + 16 + 32) = 768;
#     with --peak-gflops 2 --bandwidth-gbs 1 the bound is max(1088 / 2e9, 960 / 1e9) s = 0.00096 ms;
#   - without figures the table says so and has no times; the JSON parses, its kernels sum
#     to its total, on gpt2 at a small size too, whose C names a cache write's output as a
#     slot of its state (no arena offset);
#   - bad --dims and misplaced options are usage errors that write nothing.
set -u
KILN=$1
cd "$(dirname "$0")/../.." || exit 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-report.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME=$tmp/cache        # no calibration cache unless a case makes one
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
spec=tests/cli/matmul-bias.yaml
# json FILE EXPR: print EXPR over the parsed file `d`
json() { /usr/bin/python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print($2)" "$1"; }

"$KILN" emit $spec -o "$tmp/m.c" --report --report-json "$tmp/m.json" > "$tmp/m.txt" ||
    bad "emit --report failed"
grep -qE '^  k_y_mm +1 +%3 matmul y_mm +matmul-bias\.yaml:20 +1088 +960 +1\.13$' "$tmp/m.txt" &&
    ok || bad "table row: $(grep k_y_mm "$tmp/m.txt")"
grep -qE '^  total +1 +1088 +960 +1\.13$' "$tmp/m.txt" && ok || bad "total row"
grep -q "^  dims      rows=4  (bounds" "$tmp/m.txt" && ok || bad "dims line"
grep -q "^  machine   unknown, so no times: no calibration cache" "$tmp/m.txt" && ok ||
    bad "no-figures line: $(grep machine "$tmp/m.txt")"
[ "$(json "$tmp/m.json" "d['total']['flops'], d['total']['bytes'], d['machine']")" = "1088 960 None" ] &&
    ok || bad "json total: $(json "$tmp/m.json" "d['total']")"
[ "$(json "$tmp/m.json" "d['kernels'][0]['nodes'][0]['fuses']")" = \
  "['matmul y_mm matmul-bias.yaml:20', 'add y matmul-bias.yaml:21']" ] && ok || bad "json fuses"

"$KILN" emit $spec -o "$tmp/m.c" --report-json "$tmp/m2.json" --dims rows=2 \
    --peak-gflops 2 --bandwidth-gbs 1 > "$tmp/m2.txt" || bad "emit --dims failed"
[ ! -s "$tmp/m2.txt" ] && ok || bad "--report-json alone printed a table"
[ "$(json "$tmp/m2.json" "d['dims']['rows'], d['total']['flops'], d['total']['bytes']")" = "2 544 768" ] &&
    ok || bad "--dims rows=2: $(json "$tmp/m2.json" "d['total']")"
"$KILN" emit $spec -o "$tmp/m.c" --report-json "$tmp/m3.json" --peak-gflops 2 --bandwidth-gbs 1 \
    > /dev/null || bad "emit --peak-gflops failed"
[ "$(json "$tmp/m3.json" "abs(d['total']['bound_ms'] - 0.00096) < 1e-12, d['total']['bound_by']")" = \
  "True memory" ] && ok || bad "bound: $(json "$tmp/m3.json" "d['total']")"

# gpt2, small: the JSON parses, each kernel's calls sum to its nodes, kernels sum to the total.
"$KILN" emit models/gpt2.yaml -D n_layer=2 -D n_embd=32 -D n_head=2 -D vocab_size=11 \
    -D n_positions=8 -o "$tmp/g.c" --report --report-json "$tmp/g.json" \
    --peak-gflops 100 --bandwidth-gbs 10 > "$tmp/g.txt" || bad "gpt2 --report failed"
[ "$(json "$tmp/g.json" "all(len(k['nodes']) == k['calls'] for k in d['kernels']) and \
  sum(k['flops'] for k in d['kernels']) == d['total']['flops'] and \
  sum(k['bytes'] for k in d['kernels']) == d['total']['bytes'] and d['total']['flops'] > 0")" = True ] &&
    ok || bad "gpt2 json sums"
# every kernel function of the C file is one row, and only those
[ "$(awk '/^static int forward\(kiln_run \*r\)/{on=1} on && /^}/{on=0} on' "$tmp/g.c" |
     grep -oE '^ +(if \()?k_[a-z0-9_]+\(' | grep -oE 'k_[a-z0-9_]+' | sort -u | tr '\n' ' ')" = \
  "$(json "$tmp/g.json" "' '.join(sorted(k['kernel'] for k in d['kernels'])) + ' '")" ] &&
    ok || bad "gpt2 kernel rows differ from the C file's kernels"
grep -q "^  machine   100.0 GFLOP/s FP32 peak, 10.0 GB/s read bandwidth (--peak-gflops 100 --bandwidth-gbs 10)$" \
    "$tmp/g.txt" && ok || bad "machine line from flags: $(grep machine "$tmp/g.txt")"
# Kernel comments: a cache write's output is a slot of its state, not an arena place.
grep -q "^ \*   out  f32\[batch, 2, 8, 16\] slot 0 of state 'k_cache' (no arena space)$" "$tmp/g.c" &&
    ok || bad "cache_write comment: $(grep -A6 '^/\* k_h_attn_k_all' "$tmp/g.c" | grep ' out ')"
grep -q "arena + 0xffff" "$tmp/g.c" && bad "an arena offset of -1 in a comment" || ok
# The fused causal attention of a layer, by hand: 2 heads of D = 16, seq 8, past 0: each head
# keeps 8 * 9 / 2 = 36 (query, key) pairs, each 2 * 16 + 2 * 16 + 5 = 69 FLOPs: 2 * 36 * 69 =
# 4968; bytes: q, out, k and v, each 2 * 8 * 16 floats: 4096.  At --dims seq=4,past=4 a head
# keeps 5 + 6 + 7 + 8 = 26 pairs: 2 * 26 * 69 = 3588; q and out 2 * 4 * 16 floats each, k and v
# their 8 rows of the cache (past + seq): 4 * (256 + 256 + 2 * 256) = 3072 bytes.
attn="[(n['flops'], n['bytes']) for k in d['kernels'] for n in k['nodes'] if n['name'] == 'h.0.attn.ctx_t']"
[ "$(json "$tmp/g.json" "$attn")" = "[(4968, 4096)]" ] && ok || bad "attention: $(json "$tmp/g.json" "$attn")"
"$KILN" emit models/gpt2.yaml -D n_layer=2 -D n_embd=32 -D n_head=2 -D vocab_size=11 \
    -D n_positions=8 -o "$tmp/g.c" --report-json "$tmp/g2.json" --dims seq=4,past=4 || bad "--dims past"
[ "$(json "$tmp/g2.json" "$attn")" = "[(3588, 3072)]" ] && ok || bad "attention at past=4: $(json "$tmp/g2.json" "$attn")"

# Usage errors, nothing written.
"$KILN" emit $spec -o "$tmp/bad.c" --report --dims nosuch=1 > /dev/null 2> "$tmp/err"
[ $? -eq 2 ] && grep -q "the model has no dim 'nosuch' (dims: rows)" "$tmp/err" && [ ! -e "$tmp/bad.c" ] &&
    ok || bad "--dims nosuch: $(cat "$tmp/err")"
"$KILN" emit $spec -o "$tmp/bad.c" --report --dims rows=5 > /dev/null 2> "$tmp/err"
[ $? -eq 2 ] && grep -q "rows=5 is outside \[1, 4\]" "$tmp/err" && ok || bad "--dims rows=5: $(cat "$tmp/err")"
"$KILN" emit $spec -o "$tmp/bad.c" --peak-gflops 1 --report > /dev/null 2>&1
[ $? -eq 2 ] && ok || bad "--peak-gflops without --bandwidth-gbs is not a usage error"
"$KILN" inspect $spec --report > /dev/null 2>&1
[ $? -eq 2 ] && ok || bad "inspect --report is not a usage error"
echo "cli.report: $pass passed, $fail failed"
[ $fail -eq 0 ]
