#!/usr/bin/env bash
# tests/cli/profile.sh KILN: `kiln build --profile` (codegen/profile.c, runtime/profile.c), on
# the gpt2.small reference case (2 layers, 64 wide: committed weights and input).  Never
# timings, only structure:
#   - the profile binary's outputs equal a normal build's, bit for bit (kiln diff and cmp);
#   - at exit it prints one row per kernel function of its C file (each once) and a forward
#     row, with calls = call sites x runs (--warmup runs left out, and the title says so);
#     with --peak-gflops/--bandwidth-gbs the bound and measured/bound columns, without
#     figures a line saying there is no bound;
#   - the normal build's C has none of the profiling code.
set -u
KILN=$1
cd "$(dirname "$0")/../.." || exit 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-profile.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME=$tmp/cache        # no calibration cache
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
case=tests/reference/cases/gpt2.small
read -r -a args < "$case/args"
run() { "$1" --weights "$case/weights.safetensors" --input input_ids="$case/in.input_ids.npy" \
            --output logits="$2" --threads 2 "${@:3}"; }

"$KILN" build "${args[@]}" -o "$tmp/normal" --emit-c "$tmp/normal.c" 2> /dev/null ||
    { echo "FAIL: normal build"; exit 1; }
"$KILN" build "${args[@]}" -o "$tmp/prof" --emit-c "$tmp/prof.c" --profile \
    --peak-gflops 100 --bandwidth-gbs 10 2> "$tmp/build.err" || { echo "FAIL: profile build"; exit 1; }
grep -q "timing every kernel (--profile)" "$tmp/build.err" && ok || bad "build message"
grep -q "kiln_prof\|KILN_PROF" "$tmp/normal.c" && bad "the normal build has profiling code" || ok

run "$tmp/normal" "$tmp/normal.npy" > /dev/null 2>&1 || bad "normal run"
run "$tmp/prof" "$tmp/prof.npy" --repeat 3 > /dev/null 2> "$tmp/prof.err" || bad "profile run"
"$KILN" diff "$tmp/prof.npy" "$tmp/normal.npy" > /dev/null && ok || bad "kiln diff: outputs differ"
cmp -s "$tmp/prof.npy" "$tmp/normal.npy" && ok || bad "outputs are not bitwise equal"
# --warmup: untimed runs first; the timing line says so and the outputs do not change.
run "$tmp/normal" "$tmp/warm.npy" --warmup 2 --repeat 2 > /dev/null 2> "$tmp/warm.err" ||
    bad "--warmup run"
grep -q "forward: 2 runs, min .* ms, median .* ms (after 2 warm-up runs)$" "$tmp/warm.err" && ok ||
    bad "--warmup timing line: $(cat "$tmp/warm.err")"
cmp -s "$tmp/warm.npy" "$tmp/normal.npy" && ok || bad "--warmup changed the outputs"

# The table: header, one row per kernel function, the forward row, the bound line.
grep -q "^kiln profile: gpt2, 3 runs on 2 threads, forward .* ms per run" "$tmp/prof.err" && ok ||
    bad "title: $(head -n 1 "$tmp/prof.err")"
grep -qE '^  kernel +calls +total ms +ms/run +share +GFLOP/s +bound ms +measured/bound$' "$tmp/prof.err" &&
    ok || bad "header: $(grep '^  kernel' "$tmp/prof.err")"
# the kernel functions forward() calls
kernels=$(awk '/^static int forward\(kiln_run \*r\)/{on=1} on && /^}/{on=0} on' "$tmp/prof.c" |
          grep -oE '^ +(if \()?k_[a-z0-9_]+\(' | grep -oE 'k_[a-z0-9_]+' | sort -u)
rows=$(awk '/^  kernel /{on=1; next} /^  forward /{on=0} on{print $1}' "$tmp/prof.err" | sort)
[ -n "$kernels" ] && [ "$rows" = "$kernels" ] && ok ||
    bad "rows differ from the kernels: rows [$rows] kernels [$kernels]"
# calls = 3 runs x call sites (k_h_ln_1: ln_1 and ln_2 in 2 layers and ln_f = 5 sites)
grep -qE '^  k_h_ln_1 +15 ' "$tmp/prof.err" && ok || bad "k_h_ln_1 calls: $(grep k_h_ln_1 "$tmp/prof.err")"
grep -qE '^  k_tok_emb +3 ' "$tmp/prof.err" && ok || bad "k_tok_emb calls"
grep -qE '^  forward +[0-9.]+ +[0-9.]+ +100\.0% ' "$tmp/prof.err" && ok || bad "forward row"
grep -q "^  bound: max(FLOPs / peak, bytes / bandwidth) per kernel at each run's dims, with 100.0 GFLOP/s and 10.0 GB/s for 2 threads" \
    "$tmp/prof.err" && ok || bad "bound line: $(tail -n 1 "$tmp/prof.err")"

# --warmup: the warm-up runs are left out of the table, and its title says so.
run "$tmp/prof" "$tmp/profw.npy" --warmup 2 --repeat 3 > /dev/null 2> "$tmp/profw.err" ||
    bad "profile run with --warmup"
title="^kiln profile: gpt2, 3 runs on 2 threads (after 2 warm-up runs, not counted), forward"
grep -q "$title .* ms per run" "$tmp/profw.err" && ok ||
    bad "--warmup title: $(grep '^kiln profile' "$tmp/profw.err")"
grep -qE '^  k_h_ln_1 +15 ' "$tmp/profw.err" && ok ||
    bad "--warmup k_h_ln_1 calls: $(grep k_h_ln_1 "$tmp/profw.err")"
cmp -s "$tmp/profw.npy" "$tmp/normal.npy" && ok || bad "--warmup changed the profile build's outputs"

# Without figures: times only, and the reason.
"$KILN" build "${args[@]}" -o "$tmp/prof0" --profile 2> "$tmp/build0.err" || bad "profile build 2"
grep -q "kiln: note: --profile: the binary will print times without a roofline bound: no calibration cache" \
    "$tmp/build0.err" && ok || bad "build note: $(cat "$tmp/build0.err")"
run "$tmp/prof0" "$tmp/prof0.npy" > /dev/null 2> "$tmp/prof0.err" || bad "profile run 2"
grep -qE '^  kernel +calls +total ms +ms/run +share +GFLOP/s$' "$tmp/prof0.err" && ok || bad "header 2"
grep -q "^  no roofline bound: the build knew no peak or bandwidth" "$tmp/prof0.err" && ok ||
    bad "no-bound line: $(tail -n 1 "$tmp/prof0.err")"
# --help prints no table (no forward ran)
"$tmp/prof0" --help > /dev/null 2> "$tmp/help.err"
grep -q "kiln profile" "$tmp/help.err" && bad "--help printed a profile" || ok
echo "cli.profile: $pass passed, $fail failed"
[ $fail -eq 0 ]
