#!/usr/bin/env bash
# How long `make test` takes from a fresh clone: the venv set-up and pytest, timed separately,
# and the 15 slowest tests. This is how the README's figure is regenerated: with BENCH_RECORD=1
# a passing run is recorded in benchmarks/figures.json of this checkout (then run
# `python benchmarks/quickref.py write`).
#
#   benchmarks/bench_tests.sh            # clones this repository's HEAD (commit first!)
#   benchmarks/bench_tests.sh URL|PATH   # clones another repository or checkout
#
# The clone goes to a temporary directory (removed afterwards; BENCH_KEEP=1 keeps it, with
# venv.log and pytest.log). pip's download cache is used as it is on this machine: a machine
# without it spends longer on the venv set-up (downloads). Run it on an otherwise idle machine;
# the figures are wall-clock seconds.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SOURCE="${1:-$HERE}"
WORK="$(mktemp -d /tmp/flowprior-bench-tests.XXXXXX)"
cleanup() {
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
        echo "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }'; }

git clone --quiet "$SOURCE" "$WORK/clone"
cd "$WORK/clone"
COMMIT="$(git rev-parse --short HEAD)"
export BENCH_COMMIT="$COMMIT"  # recorded as the measured commit (quickref.provenance)
echo "fresh clone of $SOURCE at $COMMIT in $WORK/clone ($(nproc) cores)"

# `make test` = the venv set-up (.venv/.installed) + pytest; timed as two make calls.
T0=$(now)
make .venv/.installed >"$WORK/venv.log" 2>&1 || {
    tail -n 30 "$WORK/venv.log"
    echo "venv set-up failed" >&2
    exit 1
}
T_VENV=$(since "$T0")
echo "venv set-up: ${T_VENV} s"

T0=$(now)
status=0
PYTEST_ADDOPTS="--durations=15 ${PYTEST_ADDOPTS:-}" make test >"$WORK/pytest.log" 2>&1 || status=$?
T_PYTEST=$(since "$T0")
echo "pytest: ${T_PYTEST} s (exit status $status)"

echo
echo "==================== make test from a fresh clone ===================="
echo "commit            $COMMIT"
echo "venv set-up       ${T_VENV} s   (make .venv/.installed: pip install -r requirements.lock)"
echo "pytest            ${T_PYTEST} s   (make test with the venv in place)"
echo "make test total   $((T_VENV + T_PYTEST)) s"
echo "pytest summary    $(grep -E '^=+ .*(passed|failed|error).* in [0-9.]+s' "$WORK/pytest.log" | tail -n 1 | tr -d '=' | xargs)"
echo "15 slowest tests:"
sed -n '/slowest 15 durations/,/^$/p' "$WORK/pytest.log" | grep -E '^[0-9.]+s ' || true
echo "======================================================================="
if [[ $status -ne 0 ]]; then
    grep -E '^(FAILED|ERROR) ' "$WORK/pytest.log" || tail -n 40 "$WORK/pytest.log"
    exit "$status"
fi
if [[ ${BENCH_RECORD:-0} == 1 ]]; then
    PASSED="$(grep -oE '[0-9]+ passed' "$WORK/pytest.log" | tail -n 1 | cut -d' ' -f1)"
    "$WORK/clone/.venv/bin/python" "$HERE/benchmarks/quickref.py" record make_test \
        venv_s="$T_VENV" pytest_s="$T_PYTEST" passed="${PASSED:-null}" tested_commit="\"$COMMIT\""
    echo "recorded in $HERE/benchmarks/figures.json"
fi
