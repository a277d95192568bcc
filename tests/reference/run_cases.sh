#!/usr/bin/env bash
# run_cases.sh: run_case.sh over every case in a folder, for cases that ctest does not know,
# such as the random ones `make_cases.py --fresh` writes in CI:
#
#   /usr/bin/python3 tests/reference/make_cases.py --fresh --seed "$N" --out build/fresh
#   bash tests/reference/run_cases.sh build/kiln build/fresh build/fresh-work
#
# Each case's output goes to WORK_DIR/<id>/ and its log to WORK_DIR/<id>.log; the log of
# every failing case is printed.  Ends with the line "reference: N passed, N failed" and
# exits 0 iff none failed (1 if some did, 2 on a usage error or an empty folder).

set -u
if [ $# -ne 3 ]; then
    echo "usage: $0 KILN CASES_DIR WORK_DIR" >&2
    exit 2
fi
KILN=$1 CASES=$2 WORK=$3
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$WORK" || exit 2

pass=0 fail=0
for args in "$CASES"/*/args; do
    [ -e "$args" ] || continue
    dir=$(dirname "$args")
    id=$(basename "$dir")
    if bash "$HERE/run_case.sh" "$KILN" "$dir" "$WORK/$id" > "$WORK/$id.log" 2>&1; then
        pass=$((pass + 1))
        echo "ok   reference.$id"
    else
        fail=$((fail + 1))
        echo "FAIL reference.$id"
        sed 's/^/    /' "$WORK/$id.log"
    fi
done
if [ $((pass + fail)) -eq 0 ]; then
    echo "$0: no cases (no */args) in $CASES" >&2
    exit 2
fi
echo "reference: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
