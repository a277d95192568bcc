#!/usr/bin/env bash
# tests/badinput/run.sh: bad-input cases for everything that is not a spec: weights files,
# model inputs, and the command lines of kiln and of the model binaries it builds.
#
#   bash tests/badinput/run.sh KILN WORK setup    build three tiny models and valid fixtures
#   bash tests/badinput/run.sh KILN WORK ID...    run cases by id (badinput.<area>.<case>)
#   bash tests/badinput/run.sh KILN WORK all      setup, then every case, then a summary
#   bash tests/badinput/run.sh --list             the case ids, one a line
#
# KILN is the kiln driver; WORK a folder for the models, fixtures and one scratch folder per
# case (created if missing).  The cases are the functions in cases.sh, each named by its id.
# A case makes its bad files in its own empty folder T, which is the working directory (so
# messages show short relative paths), and runs one command through
#
#   check STATUS 'MESSAGE' CMD ARG...       MESSAGE is looked for in stderr
#   check_stdout STATUS 'MESSAGE' CMD ARG...  MESSAGE is looked for in stdout (kiln diff)
#
# which requires all of:
#   - the exit status is STATUS exactly (under `timeout`, so a FIFO cannot hang the suite);
#   - MESSAGE is a substring of a line of the stream;
#   - a failing command prints exactly one line containing "error: " on stderr (a mistake
#     makes one message, not a cascade) and nothing on stdout (check only);
#   - no sanitizer report and no "internal error" anywhere;
#   - the output folder T/out is as the case left it before the command (normally empty):
#     no output file, no temporary; and no temporary file (*.tmp.*) anywhere in T.
# On failure it prints the command ready to paste, the folder it ran in, the expected and
# actual status and message, and both streams.
#
# Under sanitizers (kiln and the models built with -fsanitize=..., see badinput.cmake) a
# report makes the process exit 86 (set below), which no case expects.
#
# BADINPUT_KEEP=1 keeps each case's folder (WORK/cases/ID) even when it passes;
# BADINPUT_TIMEOUT=S changes the time limit of each command (300 s: kiln build under
# sanitizers on a loaded machine; the cases that could hang set a short one).
#
# Exit status: 0 pass; 1 fail; 2 usage or setup missing; 77 skipped (the case cannot be
# tested here, e.g. file permissions when running as root, or it is marked pending: the
# check it needs does not exist yet, see `pending` in cases.sh).

set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/badinput/cases.sh
source "$ROOT/tests/badinput/cases.sh"

case_ids() {
    declare -F | sed -n 's/^declare -f \(badinput\.[A-Za-z0-9_.-]*\)$/\1/p' | sort
}

if [ "${1:-}" = --list ]; then
    case_ids
    exit 0
fi
if [ $# -lt 3 ]; then
    echo "usage: $0 KILN WORK setup|all|ID...   or   $0 --list" >&2
    exit 2
fi

abs_path() {
    case $1 in
        /*) echo "$1" ;;
        */*) (cd "${1%/*}" 2>/dev/null && echo "$PWD/${1##*/}") ;;
        *) echo "$PWD/$1" ;;
    esac
}
KILN=$(abs_path "$1") || { echo "$0: no kiln at $1" >&2; exit 2; }
[ -x "$KILN" ] || { echo "$0: $KILN is not executable" >&2; exit 2; }
mkdir -p "$2" || exit 2
WORK=$(cd "$2" && pwd)
shift 2

BIN=$WORK/bin       # the model binaries
FIX=$WORK/fix       # valid weights and inputs
SEED=$BIN/seed
GPT2=$BIN/gpt2
BERT=$BIN/bert
TIMEOUT=${BADINPUT_TIMEOUT:-300}   # seconds per command; the FIFO cases set their own, short

# A sanitizer report exits 86 instead of 1, so it can never pass for an expected status.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=86"
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}exitcode=86"

# ---------------------------------------------------------------------------------------
# Writing test files byte by byte (bash and printf only, so running the suite needs no
# Python).

# le NBYTES VALUE: VALUE as an NBYTES little-endian integer (two's complement).
le() {
    local n=$2 i s=
    for ((i = 0; i < $1; i++)); do
        s+=$(printf '\\x%02x' $((n & 255)))
        n=$((n >> 8))
    done
    printf "$s"
}

# f32 VALUE...: IEEE single-precision bytes of each value, from a small table.
f32() {
    local v
    for v in "$@"; do
        case $v in
            0) le 4 0 ;;             0.5) le 4 0x3f000000 ;;  1) le 4 0x3f800000 ;;
            2) le 4 0x40000000 ;;    -1) le 4 0xbf800000 ;;   -0.5) le 4 0xbf000000 ;;
            nan) le 4 0x7fc00000 ;;  inf) le 4 0x7f800000 ;;  -inf) le 4 0xff800000 ;;
            *) echo "f32: no bit pattern for '$v' in the table" >&2; return 1 ;;
        esac
    done
}
i32() { local v; for v in "$@"; do le 4 "$v"; done; }
i64() { local v; for v in "$@"; do le 8 "$v"; done; }
f64_zeros() { head -c $((8 * $1)) /dev/zero; }
zeros() { head -c "$1" /dev/zero; }

# npy FILE DESCR SHAPE [FORTRAN]: a version 1.0 .npy file, its data read from stdin.
# SHAPE is the Python tuple as numpy writes it: "(2, 3)", "(3,)", "()".
npy() {
    local dict="{'descr': '$2', 'fortran_order': ${4:-False}, 'shape': $3, }"
    local total=$(( (10 + ${#dict} + 1 + 63) / 64 * 64 ))
    local pad=$((total - 10 - ${#dict} - 1))
    {
        printf '\x93NUMPY\x01\x00'
        le 2 $((total - 10))
        printf '%s%*s\n' "$dict" "$pad" ''
        cat
    } >"$1"
}

# st_raw FILE HEADER_LENGTH JSON [DATA_BYTES]: a safetensors file with a given header length
# field (so it can lie), the JSON text, and DATA_BYTES zero bytes of data.
st_raw() {
    { le 8 "$2"; printf '%s' "$3"; zeros "${4:-0}"; } >"$1"
}

# st_header JSON: the JSON padded with spaces to a multiple of 8 bytes, as safetensors
# writers do, so the data buffer is aligned.
st_header() {
    local len=${#1}
    printf '%s%*s' "$1" $(( (len + 7) / 8 * 8 - len )) ''
}

# st [-r] [-m] FILE ENTRY...: a valid safetensors file, data all zero.  ENTRY is
# NAME:DTYPE:SHAPE, SHAPE comma-separated ("24,8"; empty for a scalar); the data follows in
# the order given.  -r lists the header entries in reverse order (the data stays in order);
# -m pads the header to an odd length, which leaves every tensor misaligned in the file.
st() {
    local reverse=0 misalign=0
    while [ $# -gt 0 ]; do
        case $1 in -r) reverse=1 ;; -m) misalign=1 ;; *) break ;; esac
        shift
    done
    local file=$1 off=0 e name dtype shape size d entries=() json=
    shift
    for e in "$@"; do
        IFS=: read -r name dtype shape <<<"$e"
        case $dtype in
            F64|I64|U64) size=8 ;; F32|I32|U32) size=4 ;; F16|BF16|I16|U16) size=2 ;; *) size=1 ;;
        esac
        for d in ${shape//,/ }; do size=$((size * d)); done
        local range="[$off,$((off + size))]"
        entries+=("\"$name\":{\"dtype\":\"$dtype\",\"shape\":[$shape],\"data_offsets\":$range}")
        off=$((off + size))
    done
    local i n=${#entries[@]}
    for ((i = 0; i < n; i++)); do
        json+="${json:+,}${entries[reverse ? n - 1 - i : i]}"
    done
    local hdr
    hdr=$(st_header "{$json}")
    [ $misalign -eq 0 ] || hdr+=" "
    st_raw "$file" "${#hdr}" "$hdr" "$off"
}

# ---------------------------------------------------------------------------------------
# The models, at sizes that compile in a second or two, and their valid fixtures.

SEED_ARGS=("$ROOT/models/seed-bert-layer.yaml" -D hidden_size=8 -D attention_heads=2
           -D intermediate_size=16 -D max_batch=2 -D max_seq=4)
GPT2_ARGS=("$ROOT/models/gpt2.yaml" -D n_layer=1 -D n_head=2 -D n_embd=8 -D vocab_size=16
           -D n_positions=4 -D max_batch=2)
BERT_ARGS=("$ROOT/models/bert.yaml" -D num_hidden_layers=1 -D num_attention_heads=2
           -D hidden_size=8 -D intermediate_size=16 -D vocab_size=16
           -D max_position_embeddings=4 -D type_vocab_size=2 -D max_batch=2)

SEED_WEIGHTS=(
    self_attention.in_proj_weight:F32:24,8 self_attention.in_proj_bias:F32:24
    self_attention.out_proj.weight:F32:8,8 self_attention.out_proj.bias:F32:8
    norm1.weight:F32:8 norm1.bias:F32:8 ffn.0.weight:F32:16,8 ffn.0.bias:F32:16
    ffn.2.weight:F32:8,16 ffn.2.bias:F32:8 norm2.weight:F32:8 norm2.bias:F32:8)
GPT2_WEIGHTS=(
    wte.weight:F32:16,8 wpe.weight:F32:4,8 h.0.ln_1.weight:F32:8 h.0.ln_1.bias:F32:8
    h.0.attn.c_attn.weight:F32:8,24 h.0.attn.c_attn.bias:F32:24
    h.0.attn.c_proj.weight:F32:8,8 h.0.attn.c_proj.bias:F32:8
    h.0.ln_2.weight:F32:8 h.0.ln_2.bias:F32:8 h.0.mlp.c_fc.weight:F32:8,32
    h.0.mlp.c_fc.bias:F32:32 h.0.mlp.c_proj.weight:F32:32,8 h.0.mlp.c_proj.bias:F32:8
    ln_f.weight:F32:8 ln_f.bias:F32:8)
BERT_WEIGHTS=(
    embeddings.word_embeddings.weight:F32:16,8 embeddings.position_embeddings.weight:F32:4,8
    embeddings.token_type_embeddings.weight:F32:2,8
    embeddings.LayerNorm.weight:F32:8 embeddings.LayerNorm.bias:F32:8)
for w in attention.self.query attention.self.key attention.self.value attention.output.dense; do
    BERT_WEIGHTS+=("encoder.layer.0.$w.weight:F32:8,8" "encoder.layer.0.$w.bias:F32:8")
done
BERT_WEIGHTS+=(
    encoder.layer.0.attention.output.LayerNorm.weight:F32:8
    encoder.layer.0.attention.output.LayerNorm.bias:F32:8
    encoder.layer.0.intermediate.dense.weight:F32:16,8
    encoder.layer.0.intermediate.dense.bias:F32:16
    encoder.layer.0.output.dense.weight:F32:8,16 encoder.layer.0.output.dense.bias:F32:8
    encoder.layer.0.output.LayerNorm.weight:F32:8 encoder.layer.0.output.LayerNorm.bias:F32:8
    pooler.dense.weight:F32:8,8 pooler.dense.bias:F32:8)

# The valid command lines of the three models; a case changes one thing.
SEED_W=(--weights "$FIX/seed.safetensors")
SEED_IN=(--input "hidden_states=$FIX/seed.hidden_states.npy")
SEED_OUT=(--output output=out/output.npy)
GPT2_W=(--weights "$FIX/gpt2.safetensors")
GPT2_IN=(--input "input_ids=$FIX/gpt2.input_ids.npy")
GPT2_OUT=(--output logits=out/logits.npy)
BERT_W=(--weights "$FIX/bert.safetensors")
BERT_IDS=(--input "input_ids=$FIX/bert.input_ids.npy")
BERT_TYPES=(--input "token_type_ids=$FIX/bert.token_type_ids.npy")
BERT_MASK=(--input "attention_mask=$FIX/bert.attention_mask.npy")
BERT_OUT=(--output last_hidden_state=out/last_hidden_state.npy
          --output pooler_output=out/pooler_output.npy)

# Print a command shell-quoted, ready to paste.
show_cmd() {
    printf '%q' "$1"
    shift
    printf ' %q' "$@"
    printf '\n'
}

setup() {
    rm -rf "$BIN" "$FIX"
    mkdir -p "$BIN" "$FIX" || return 1
    local name ok=0
    for name in seed gpt2 bert; do
        local -n args=${name^^}_ARGS
        if ! "$KILN" build "${args[@]}" -o "$BIN/$name" 2>"$WORK/build.$name.log"; then
            echo "setup: kiln build of the $name model failed:"
            show_cmd "$KILN" build "${args[@]}" -o "$BIN/$name"
            sed 's/^/| /' "$WORK/build.$name.log"
            ok=1
        fi
    done
    [ $ok -eq 0 ] || return 1

    st "$FIX/seed.safetensors" "${SEED_WEIGHTS[@]}"
    st "$FIX/gpt2.safetensors" "${GPT2_WEIGHTS[@]}"
    st "$FIX/bert.safetensors" "${BERT_WEIGHTS[@]}"
    f32 0.5 1 -1 2 0 -0.5 1 0.5  1 1 0 0 2 -1 -0.5 0.5  0 2 -1 1 0.5 0 -0.5 1 |
        npy "$FIX/seed.hidden_states.npy" '<f4' '(1, 3, 8)'
    i32 1 2 3 | npy "$FIX/gpt2.input_ids.npy" '<i4' '(1, 3)'
    i32 1 2 3 4 5 6 | npy "$FIX/bert.input_ids.npy" '<i4' '(2, 3)'
    i32 0 0 1 0 1 1 | npy "$FIX/bert.token_type_ids.npy" '<i4' '(2, 3)'
    i32 1 1 1 1 1 0 | npy "$FIX/bert.attention_mask.npy" '<i4' '(2, 3)'

    # The fixtures must pass: every case differs from these runs in one thing only.
    local d=$WORK/setup.out
    rm -rf "$d" && mkdir -p "$d"
    (
        cd "$d" && mkdir out &&
        "$SEED" "${SEED_W[@]}" "${SEED_IN[@]}" "${SEED_OUT[@]}" &&
        "$GPT2" "${GPT2_W[@]}" "${GPT2_IN[@]}" "${GPT2_OUT[@]}" &&
        "$BERT" "${BERT_W[@]}" "${BERT_IDS[@]}" "${BERT_TYPES[@]}" "${BERT_MASK[@]}" \
            "${BERT_OUT[@]}" &&
        [ -s out/output.npy ] && [ -s out/logits.npy ] && [ -s out/pooler_output.npy ]
    ) >"$WORK/setup.log" 2>&1 || {
        echo "setup: a model failed on its valid fixtures (in $d):"
        sed 's/^/| /' "$WORK/setup.log"
        return 1
    }
    rm -rf "$d"
    echo "setup: built seed, gpt2 and bert in $BIN; fixtures in $FIX"
}

# ---------------------------------------------------------------------------------------
# Running one case

CASE=        # the id being run
PENDING=     # why the case is expected to fail for now (set by `pending`)
RESULT=      # pass, fail or skip (set by the checks and by `skip`); fail sticks

# skip REASON: the case cannot be tested here.
skip() {
    echo "SKIP $CASE: $1"
    RESULT=skip
}

# pending REASON: the check this case needs does not exist yet.  The case still runs; a
# failure is reported as a skip (with its details), a pass as a pass with a note.
pending() { PENDING=$1; }

check() { run_check stderr "$@"; }
check_stdout() { run_check stdout "$@"; }

# expect_file FILE: after a control case's check, the output it wrote must be there.
expect_file() {
    if [ "$RESULT" = pass ] && [ ! -s "$1" ]; then
        echo "FAIL $CASE: the command succeeded but wrote no $1"
        RESULT=fail
    fi
}

# Globs see hidden files, recurse with **, and vanish when nothing matches (builtins keep
# each case to a few processes).
shopt -s nullglob dotglob globstar

# A listing of out/ (recursive, with hidden files), for the before/after comparison.
list_out() { local f; for f in out/**; do echo "$f"; done; }

run_check() {
    local stream=$1 want_rc=$2 want_msg=$3
    shift 3
    local before after rc problems=()
    before=$(list_out)
    timeout -k 5 "$TIMEOUT" "$@" >stdout.txt 2>stderr.txt
    rc=$?
    after=$(list_out)

    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        problems+=("the command did not finish within ${TIMEOUT}s (a hang?)")
    elif [ "$rc" -gt 128 ] && [ "$rc" -lt 160 ]; then
        problems+=("the command crashed: killed by signal $((rc - 128)) (exit status $rc)")
    elif [ "$rc" -ne "$want_rc" ]; then
        problems+=("exit status $rc, expected $want_rc")
    fi
    if [ -n "$want_msg" ] && ! grep -qF -- "$want_msg" "$stream.txt"; then
        problems+=("the expected message is not in $stream")
    fi
    if [ "$want_rc" -ne 0 ]; then
        local n_err
        n_err=$(grep -c 'error: ' stderr.txt)
        if [ "$stream" = stderr ] && [ "$n_err" -ne 1 ]; then
            problems+=("$n_err lines with 'error: ' on stderr, expected exactly one")
        fi
        if [ "$stream" = stderr ] && [ -s stdout.txt ]; then
            problems+=("a failing command printed on stdout")
        fi
    fi
    if grep -qE 'Sanitizer|runtime error:|internal error' stderr.txt stdout.txt; then
        problems+=("a sanitizer report or an internal error")
    fi
    if [ "$before" != "$after" ]; then
        problems+=("out/ changed: files left behind or removed")
    fi
    local tmps=(**/*.tmp.*)
    if [ ${#tmps[@]} -gt 0 ]; then
        problems+=("temporary files left behind: ${tmps[*]}")
    fi

    if [ ${#problems[@]} -eq 0 ]; then
        [ "$RESULT" = fail ] || RESULT=pass
        return 0
    fi
    RESULT=fail
    echo "${PENDING:+(pending) }FAIL $CASE"
    printf '  - %s\n' "${problems[@]}"
    echo "  command (in $PWD):"
    printf '    '
    show_cmd "$@"
    echo "  expected: exit $want_rc, $stream containing:"
    echo "    $want_msg"
    echo "  actual: exit $rc"
    echo "  stderr:"
    sed 's/^/  | /' stderr.txt
    if [ -s stdout.txt ]; then
        echo "  stdout:"
        sed 's/^/  | /' stdout.txt | head -20
    fi
    if [ "$before" != "$after" ]; then
        echo "  out/ before: ${before:-(empty)}" | tr '\n' ' '
        echo
        echo "  out/ after:  ${after:-(empty)}" | tr '\n' ' '
        echo
    fi
    return 1
}

# run_case ID: run one case in a fresh folder WORK/cases/ID (removed when the case passes,
# unless BADINPUT_KEEP is set).
# Returns 0 pass, 1 fail, 77 skip.
run_case() {
    CASE=$1
    if ! declare -F "$CASE" >/dev/null; then
        echo "FAIL $CASE: no such case (run.sh --list shows them)"
        return 1
    fi
    if [ ! -x "$SEED" ] || [ ! -x "$GPT2" ] || [ ! -x "$BERT" ] ||
           [ ! -f "$FIX/bert.attention_mask.npy" ]; then
        echo "FAIL $CASE: no models in $BIN; run '$0 KILN WORK setup' first"
        return 1
    fi
    local T=$WORK/cases/$CASE
    [ -d "$T" ] && chmod -R u+rwx "$T"
    rm -rf "$T" && mkdir -p "$T/out" || return 1
    (
        cd "$T" || exit 1
        PENDING= RESULT=
        "$CASE"
        if [ "$RESULT" = skip ]; then
            exit 77
        elif [ -z "$RESULT" ]; then
            echo "FAIL $CASE: the case ran no check"
            exit 1
        elif [ -n "$PENDING" ] && [ "$RESULT" = pass ]; then
            echo "ok $CASE (marked pending, but it passes now: remove the mark in cases.sh)"
        elif [ -n "$PENDING" ]; then
            echo "SKIP $CASE: pending: $PENDING"
            exit 77
        elif [ "$RESULT" = pass ]; then
            echo "ok $CASE"
        else
            exit 1
        fi
    )
    local rc=$?
    if [ $rc -eq 0 ] && [ -z "${BADINPUT_KEEP:-}" ]; then
        chmod -R u+rwx "$T" && rm -rf "$T"
    fi
    return $rc
}

if [ "$1" = setup ]; then
    setup
    exit $?
fi
if [ "$1" = all ]; then
    setup || exit 1
    set -- $(case_ids)
fi
n_pass=0 n_fail=0 n_skip=0 failed=()
for id in "$@"; do
    run_case "$id"
    case $? in
        0) n_pass=$((n_pass + 1)) ;;
        77) n_skip=$((n_skip + 1)) ;;
        *) n_fail=$((n_fail + 1)); failed+=("$id") ;;
    esac
done
if [ $# -gt 1 ]; then
    echo "badinput: $n_pass passed, $n_fail failed, $n_skip skipped"
    [ $n_fail -eq 0 ] || printf '  failed: %s\n' "${failed[@]}"
fi
[ $n_fail -eq 0 ] || exit 1
[ $# -eq 1 ] && [ $n_skip -eq 1 ] && exit 77
exit 0
