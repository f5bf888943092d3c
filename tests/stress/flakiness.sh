#!/usr/bin/env bash
# The flakiness budget: the whole lb suite RUNS times in a row (default 20) while another
# process keeps one core busy, as CI's neighbours may. Prints one line per run and the
# count of passing runs; the last result goes to tests/stress/flakiness-last.txt.
#
#   bash tests/stress/flakiness.sh            # 20 runs, about two hours on 2 cores
#   RUNS=3 bash tests/stress/flakiness.sh
set -u
cd "$(dirname "$0")/../.."
runs=${RUNS:-20}
python=.venv/bin/python
# One core of load, stopped by its pid whatever happens to this script.
taskset -c 0 "$python" -c 'while True: pass' &
burner=$!
trap 'kill "$burner" 2>/dev/null' EXIT
trap 'exit 130' INT TERM
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
passed=0
for run in $(seq 1 "$runs"); do
    started=$(date +%s)
    if "$python" -m pytest -q -p no:cacheprovider -m lb >"/tmp/lb-flakiness-$run.log" 2>&1; then
        passed=$((passed + 1)); verdict=passed
    else
        verdict="FAILED (see /tmp/lb-flakiness-$run.log)"
    fi
    echo "run $run/$runs: $verdict in $(( $(date +%s) - started )) s"
    # Recorded after every run, so an interrupted series still leaves its figure so far.
    [ "$run" -lt "$runs" ] && echo "$(date -u +%Y-%m-%dT%H:%MZ) $passed of $run runs passed so far, $runs planned, with one core loaded (commit $commit)" >tests/stress/flakiness-last.txt
done
summary="$(date -u +%Y-%m-%dT%H:%MZ) $passed of $runs consecutive runs of the lb suite passed with one core loaded (commit $commit)"
echo "$summary" | tee tests/stress/flakiness-last.txt
[ "$passed" -eq "$runs" ]
