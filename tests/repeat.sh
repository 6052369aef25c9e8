#!/usr/bin/env bash
# Run the whole test suite N times in a row (default 10) and say how many runs failed and which tests.
# Used by `make test-repeat N=...`, which builds everything first; a flaky test shows up here as a
# failure in some runs and not in others. Each run's output is kept in target/test-repeat/run-K.log.
#   tests/repeat.sh [N] [extra cargo test arguments, e.g. -- browser::]
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
shift || true
out=target/test-repeat
rm -rf "$out" && mkdir -p "$out"
failed_runs=0
: >"$out/failures"
for k in $(seq 1 "$runs"); do
    started=$(date +%s)
    if cargo test --release --locked --workspace --no-fail-fast "$@" >"$out/run-$k.log" 2>&1; then
        verdict=passed
    else
        verdict=FAILED
        failed_runs=$((failed_runs + 1))
        # libtest prints "test NAME ... FAILED" for each failing test.
        grep -E '^test .* \.\.\. FAILED$' "$out/run-$k.log" | sed -E 's/^test (.*) \.\.\. FAILED$/\1/' |
            while read -r name; do echo "$k $name"; done >>"$out/failures"
        grep -qE '^test .* \.\.\. FAILED$' "$out/run-$k.log" ||
            echo "$k (no-test-failed:build-or-harness,see-run-$k.log)" >>"$out/failures"
    fi
    passed=$(grep -E '^test result: ' "$out/run-$k.log" | awk '{s += $4} END {print s + 0}')
    echo "run $k/$runs: $verdict ($passed tests passed, $(($(date +%s) - started)) s)"
done
echo
echo "$failed_runs of $runs runs failed"
if [ -s "$out/failures" ]; then
    echo "failing tests (runs failed in : test):"
    awk '{runs[$2] = runs[$2] " " $1} END {for (t in runs) print "  " t ":" runs[t]}' "$out/failures" | sort
fi
[ "$failed_runs" -eq 0 ]
