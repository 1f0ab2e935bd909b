#!/usr/bin/env bash
# How long `make run` (the default study) takes from a fresh clone: the venv set-up and the
# workflow, timed separately, then where the time and memory went (benchmarks/study_cost.py: the
# five most expensive jobs, time per rule or analysis, peak RSS of every job against 2 GB).
#
#   benchmarks/bench_study.sh            # clones this repository's HEAD (commit first!)
#   benchmarks/bench_study.sh URL|PATH   # clones another repository or checkout
#
# With BENCH_RECORD=1 a finished run is recorded in benchmarks/figures.json of this checkout (the
# README's quick reference: then run `python benchmarks/quickref.py write`). The clone goes to a
# temporary directory, removed afterwards (BENCH_KEEP=1 keeps it, with venv.log and run.log).
# Run it on an otherwise idle machine; the figures are wall-clock seconds.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SOURCE="${1:-$HERE}"
WORK="$(mktemp -d /tmp/flowprior-bench-study.XXXXXX)"
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
make run >"$WORK/run.log" 2>&1 || status=$?
T_RUN=$(since "$T0")
echo "make run: ${T_RUN} s (exit status $status)"
if [[ $status -ne 0 ]]; then
    tail -n 40 "$WORK/run.log"
    exit "$status"
fi

echo
echo "==================== make run from a fresh clone ===================="
echo "commit            $COMMIT"
echo "venv set-up       ${T_VENV} s"
echo "make run          ${T_RUN} s"
echo "total             $((T_VENV + T_RUN)) s"
RECORD=()
if [[ ${BENCH_RECORD:-0} == 1 ]]; then
    RECORD=(--record --venv-s "$T_VENV" --run-s "$T_RUN")
fi
# study_cost.py records into the figures of the checkout that holds this script
"$WORK/clone/.venv/bin/python" "$HERE/benchmarks/study_cost.py" results --top 5 "${RECORD[@]}"
