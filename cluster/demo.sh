#!/usr/bin/env bash
# make cluster-demo: docs/cluster.md's walk-through from a fresh kind cluster to a promoted and a
# rolled-back canary, each command exactly as the docs show it (tests/cluster/test_make_cluster.py checks
# that). About 1.5-2 hours on a laptop, most of it training and the two canary analyses.
set -euo pipefail
cd "$(dirname "$0")/.."
logs=.mlops/cluster/demo
mkdir -p "$logs"
background=()
trap 'kill "${background[@]}" 2>/dev/null || true' EXIT

run() { # print the command as a user types it, then run it
	printf '\n$ %s\n' "$1"
	bash -c "$1"
}
run_in_background() { # ... with its output in $logs/<name>.log
	printf '\n$ %s &    # output: %s\n' "$2" "$logs/$1.log"
	bash -c "$2" >"$logs/$1.log" 2>&1 &
	background+=($!)
}

run "make cluster-up"
run_in_background kfp-ui "make kfp-ui"
sleep 5
run "KFP_HOST=http://localhost:8088 make pipeline-run DATA=cardiffnlp/tweet_eval:sentiment MAX_ROWS=300 WAIT_HOURS=2"
run "make status"
run "make predict"
run_in_background load "make load RPS=10 SECONDS=14400"
run "KFP_HOST=http://localhost:8088 make pipeline-run DATA=cardiffnlp/tweet_eval:sentiment WAIT_HOURS=4"
run "make status"
run "make canary MODEL=models:/sentiment/1 PERCENT=20"
run "make analyze"
run "make status"
run "make history"
echo
echo "cluster-demo: done (make cluster-down deletes the cluster)"
