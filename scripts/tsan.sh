#!/usr/bin/env bash
# make tsan: the unit tests and the end-to-end suite against a ThreadSanitizer build (made by the
# Makefile in .build-tsan). Every report is written to build/tsan/ by the process that found it —
# the gateway, its workers, the test runner — and any report fails the run. The end-to-end suite
# checks behaviour too, but ThreadSanitizer slows the gateway five to fifteen times: assertions
# about time can fail under it, so a test failure is reported, and only a race fails the target.
# TSAN_E2E selects tests (pytest -k), all by default. Suppressions: Tests/tsan-suppressions.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
reports="$PWD/build/tsan"
rm -rf "$reports"
mkdir -p "$reports"
export TSAN_OPTIONS="log_path=$reports/report halt_on_error=0 second_deadlock_stack=1 suppressions=$PWD/Tests/tsan-suppressions.txt"

swift test --scratch-path .build-tsan --sanitize=thread --skip-build 2>&1 | tail -n 3
unit=${PIPESTATUS[0]}

selection=()
[ -n "${TSAN_E2E:-}" ] && selection=(-k "$TSAN_E2E")
GATEWAY_BINARY=.build-tsan/debug/wssgate build/py/bin/python -m pytest -q -p no:cacheprovider \
  "${selection[@]}" Tests/EndToEnd 2>&1 | tail -n 15
e2e=${PIPESTATUS[0]}

found=$(ls "$reports" | wc -l)
echo "tsan: unit tests exit $unit, end-to-end exit $e2e, $found report file(s) in build/tsan"
if [ "$found" -gt 0 ]; then
  for report in "$reports"/*; do
    echo "== $report"
    head -n 60 "$report"
  done
  exit 1
fi
[ "$unit" -eq 0 ] || exit 1
