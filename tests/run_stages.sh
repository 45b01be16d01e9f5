#!/usr/bin/env bash
# `make test`'s stages, after the install:
#   lint, and beside it the Spark stage (tests/test_spark_engine.py: the sample's three
#     months on DuckDB, then on Spark, every mart compared); lint keeps one core busy
#     and Spark's planning mostly one, so the pair takes about as long as the longer
#   the default stage, a worker per core (pytest-xdist, a test file to a worker)
#   the Spark stage's output, printed once it has ended; its failure fails here
#   the slow stage, in one process (with workers it hung on CI three times in a row)
# The Spark stage runs in its own process group with its own pytest base folder: a
# failure elsewhere ends it (its dbt and JVM with it), and no other stage's clean-up of
# old pytest folders removes its home while it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
scratch=$(mktemp -d)
spark=""
finish() {
  if [ -n "$spark" ]; then kill -- "-$spark" 2>/dev/null || true; fi
  rm -rf "$scratch"
}
trap finish EXIT

setsid bash -c '"$1" -m pytest -m spark -p no:cacheprovider --basetemp="$2/spark" > "$2/spark.log" 2>&1' \
  _ "$bin/python" "$scratch" &
spark=$!
make --no-print-directory lint
"$bin/python" -m pytest -n auto --dist loadfile -m "not slow and not spark"

echo "=== the Spark stage (run beside lint) ==="
status=0
wait "$spark" || status=$?
spark=""
cat "$scratch/spark.log"
[ "$status" -eq 0 ] || { echo "the Spark stage failed (exit status $status)"; exit "$status"; }

"$bin/python" -m pytest -m slow
