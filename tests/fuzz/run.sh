#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] [HARNESS...]: run the libFuzzer harnesses (`make fuzz`).
#
# Configures and builds $FUZZ_BUILD (default build-fuzz) with -DKILN_FUZZ=ON and
# AddressSanitizer + UBSan, then runs each harness (default: all, one after another) for
# SECONDS (default $FUZZ_SECONDS, else 60) and prints, per harness, the executions, the
# coverage libFuzzer reports on its final stats line (cov: edges, ft: features) and the
# corpus size.  The working corpus grows in $FUZZ_BUILD/fuzz/corpus/<harness>/ across runs,
# seeded from tests/fuzz/corpus/<harness>/ and tests/fuzz/crashes/<harness>/.
#
# A crash, leak, sanitizer report, timeout or out-of-memory leaves its input in
# $FUZZ_BUILD/fuzz/artifacts/<harness>/ and makes the script exit 1 (after the other
# harnesses ran).  To keep it as a regression case, fix the bug and copy the file to
# tests/fuzz/crashes/<harness>/ (see docs/security.md).
#
# Environment: FUZZ_SECONDS, FUZZ_BUILD, FUZZ_FLAGS (extra libFuzzer flags, e.g.
# "-fork=1 -ignore_crashes=1" to keep going past a known crash), FUZZ_NO_BUILD=1 (run the
# harnesses already built), JOBS (build jobs, 2).
set -euo pipefail
cd "$(dirname "$0")/../.."

secs=${1:-}
[ -n "$secs" ] || secs=${FUZZ_SECONDS:-60}
shift || true
build=${FUZZ_BUILD:-build-fuzz}
all=(spec expr safetensors npy tokenizer_bpe tokenizer_wordpiece tokenizer_char tokenizer_load
     model_inputs)
if [ $# -gt 0 ]; then names=("$@"); else names=("${all[@]}"); fi

# Longest input per harness: big enough for the seeds (a BPE vocabulary needs 256 tokens),
# small enough that the fuzzer spends its time on structure rather than bulk.
max_len() {
    case $1 in
    spec) echo 16384 ;;
    expr) echo 256 ;;
    safetensors) echo 4096 ;;
    npy) echo 1024 ;;
    tokenizer_*) echo 2048 ;;
    tokenizer_load) echo 16384 ;;
    model_inputs) echo 1024 ;;
    *) echo 4096 ;;
    esac
}

if [ -z "${FUZZ_NO_BUILD:-}" ]; then
    cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DKILN_WERROR=ON -DKILN_FUZZ=ON \
          -DKILN_SANITIZE=address,undefined >/dev/null
    cmake --build "$build" -j "${JOBS:-2}" --target fuzz_harnesses >/dev/null
fi

printf '%-20s %6s %12s %8s %7s %7s %7s  %s\n' harness seconds executions exec/s cov ft corpus result
failed=0
for name in "${names[@]}"; do
    bin=$build/tests/fuzz/fuzz_$name
    if [ ! -x "$bin" ]; then
        echo "run.sh: no harness '$name' (harnesses: ${all[*]})" >&2
        exit 2
    fi
    work=$build/fuzz/corpus/$name
    art=$build/fuzz/artifacts/$name
    log=$build/fuzz/logs/$name.log
    mkdir -p "$work" "$art" "$(dirname "$log")"
    seeds=(tests/fuzz/corpus/"$name")
    [ -d tests/fuzz/crashes/"$name" ] && seeds+=(tests/fuzz/crashes/"$name")
    dict=()
    [ -f tests/fuzz/"$name".dict ] && dict=(-dict=tests/fuzz/"$name".dict)
    start=$(date +%s)
    marker=$build/fuzz/.start-$name
    touch "$marker"
    set +e
    # shellcheck disable=SC2086
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$bin" "$work" "${seeds[@]}" "${dict[@]}" -max_total_time="$secs" \
        -max_len="$(max_len "$name")" -timeout=20 -rss_limit_mb=2048 -close_fd_mask=3 \
        -print_final_stats=1 -artifact_prefix="$art/" ${FUZZ_FLAGS:-} >"$log" 2>&1
    rc=$?
    set -e
    took=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    [ -n "$execs" ] || execs=$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#')
    last=$(grep -E '(cov|ft): [0-9]+' "$log" | tail -n 1 || true)
    cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.*corp: \([0-9]*\).*/\1/p' <<<"$last")
    result=ok
    if grep -q "no vocabulary" "$log"; then
        result="skipped (no vocabulary in ../shared/data)"
    elif [ "$rc" -ne 0 ] || [ -n "$(find "$art" -type f -newer "$marker")" ]; then
        result="FOUND: see $log and $art/"
        failed=1
    fi
    rate=$(( ${execs:-0} / (took > 0 ? took : 1) ))
    printf '%-20s %6s %12s %8s %7s %7s %7s  %s\n' "$name" "$took" "${execs:-?}" "$rate" \
        "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result"
done
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo "($(nproc) CPUs, $cpu; $(date -u +%Y-%m-%d); ${secs} s per harness)"
exit $failed
