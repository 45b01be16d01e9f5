#!/usr/bin/env bash
# `make test`'s stages, after the install:
#   lint, with the Spark stage started beside it (tests/test_spark_engine.py: the
#     sample's three months on DuckDB, then on Spark, every mart compared); lint keeps
#     one core busy and Spark's planning mostly one. The Spark stage takes longer than
#     lint, so it goes on beside the start of the default stage.
#   the default stage, a worker per core (pytest-xdist, a test file to a worker)
#   the Spark stage's output (-rP: with the rows equal only within the last stored
#     digit, listed), printed once it has ended; its failure fails here
#   the slow stage, in one process (with workers it hung on CI three times in a row)
# The Spark stage runs in its own process group with its own pytest base folder: a
# failure elsewhere ends it (its dbt and JVM with it), and no other stage's clean-up of
# old pytest folders removes its home while it runs. Unless it passed, its log is
# printed and its folder kept.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
scratch=$(mktemp -d)
spark=""
spark_passed=""
finish() {
  if [ -n "$spark" ]; then kill -- "-$spark" 2>/dev/null || true; fi
  if [ -n "$spark_passed" ]; then
    rm -rf "$scratch"
  else
    [ ! -f "$scratch/spark.log" ] || [ -f "$scratch/spark.printed" ] || cat "$scratch/spark.log"
    echo "the Spark stage's log and homes are kept in $scratch"
  fi
}
trap finish EXIT

setsid bash -c '"$1" -m pytest -m spark -rP -p no:cacheprovider --basetemp="$2/spark" > "$2/spark.log" 2>&1' \
  _ "$bin/python" "$scratch" &
spark=$!
make --no-print-directory lint
"$bin/python" -m pytest -n auto --dist loadfile -m "not slow and not spark"

echo "=== the Spark stage (started beside lint) ==="
status=0
wait "$spark" || status=$?
spark=""
cat "$scratch/spark.log"
touch "$scratch/spark.printed"
[ "$status" -eq 0 ] || { echo "the Spark stage failed (exit status $status)"; exit "$status"; }
spark_passed=yes

"$bin/python" -m pytest -m slow
