#!/usr/bin/env bash
# tests/cli/calibrate.sh KILN: `kiln calibrate` (compiler/calibrate.c), with --quick so it
# takes well under a second.  Never timings: it runs, writes the cache where documented
# ($XDG_CACHE_HOME/kiln/, else ~/.cache/kiln/) with positive figures, --print shows it,
# `kiln emit --report` uses it, and a cache from another CPU is refused.
set -u
KILN=$1
cd "$(dirname "$0")/../.." || exit 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-calibrate.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
json() { /usr/bin/python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print($2)" "$1"; }

export XDG_CACHE_HOME=$tmp/xdg
cache=$XDG_CACHE_HOME/kiln/calibration.json
"$KILN" calibrate --print > /dev/null 2> "$tmp/err"
[ $? -eq 1 ] && grep -q "no calibration cache ($cache): run 'kiln calibrate'" "$tmp/err" && ok ||
    bad "--print without a cache: $(cat "$tmp/err")"
"$KILN" calibrate --quick --threads 2 > "$tmp/out" 2> /dev/null || bad "calibrate --quick failed"
[ -f "$cache" ] && ok || bad "no cache at $cache"
[ "$(json "$cache" "all(d[k] > 0 for k in ('peak_gflops_1', 'peak_gflops', 'bandwidth_gbs_1', \
  'bandwidth_gbs', 'lanes')) and d['threads'] == 2 and d['quick'] is True and \
  d['isa'] in ('avx512', 'avx2', 'neon', 'scalar')")" = True ] && ok || bad "cache: $(cat "$cache")"
head -n 1 "$tmp/out" | grep -q "^$cache (written in" && ok || bad "output: $(head -n 1 "$tmp/out")"
"$KILN" calibrate --print > "$tmp/print" || bad "--print failed"
head -n 1 "$tmp/print" | grep -qx "$cache" && grep -q "^  FP32 peak " "$tmp/print" &&
    grep -q "^  bandwidth " "$tmp/print" && ok || bad "--print: $(cat "$tmp/print")"

# The report reads it.
"$KILN" emit tests/cli/matmul-bias.yaml -o "$tmp/m.c" --report > "$tmp/rep" || bad "emit --report"
grep -q "^  machine   .* GFLOP/s FP32 peak, .* GB/s read bandwidth on 2 threads (kiln calibrate --quick, " \
    "$tmp/rep" && ok || bad "report machine line: $(grep machine "$tmp/rep")"

# Another CPU's cache is refused.
/usr/bin/python3 -c "import json, sys; d = json.load(open(sys.argv[1])); d['cpu'] = 'Other CPU'; \
json.dump(d, open(sys.argv[1], 'w'))" "$cache"
"$KILN" emit tests/cli/matmul-bias.yaml -o "$tmp/m.c" --report > "$tmp/rep2"
grep -q "was measured on 'Other CPU'" "$tmp/rep2" && ok || bad "other CPU: $(grep machine "$tmp/rep2")"

# Without XDG_CACHE_HOME (or with a relative one): ~/.cache/kiln.
HOME=$tmp/home XDG_CACHE_HOME=relative "$KILN" calibrate --quick > /dev/null 2>&1 || bad "HOME run"
[ -f "$tmp/home/.cache/kiln/calibration.json" ] && [ ! -e relative ] && ok ||
    bad "no cache under HOME/.cache/kiln"
"$KILN" calibrate --bogus > /dev/null 2>&1
[ $? -eq 2 ] && ok || bad "an unknown option is not a usage error"
echo "cli.calibrate: $pass passed, $fail failed"
[ $fail -eq 0 ]
