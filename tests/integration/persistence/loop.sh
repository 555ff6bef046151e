#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs the crash tests (41_crash_offline.py, 42_crash_online.py) ITERATIONS times (default 20)
# and reports pass/fail counts; logs of failed runs are kept (their PERSIST_SEED is in them).
# Usage: tests/integration/persistence/loop.sh [ITERATIONS]
# Environment: MQTTD_BIN (default build/release/node/mqttd), PERSIST_N, PERSIST_KILLS.
set -u
here=$(cd "$(dirname "$0")" && pwd)
iterations=${1:-20}
logs=$(mktemp -d /tmp/persist-loop-XXXXXX)
status=0
for test in 41_crash_offline 42_crash_online; do
  pass=0
  fail=0
  i=1
  while [ "$i" -le "$iterations" ]; do
    log="$logs/$test.$i.log"
    if /usr/bin/python3 "$here/$test.py" >"$log" 2>&1; then
      pass=$((pass + 1))
      rm -f "$log"
    else
      fail=$((fail + 1))
      echo "$test run $i FAILED: $log"
    fi
    i=$((i + 1))
  done
  echo "$test: $pass passed, $fail failed of $iterations"
  [ "$fail" -eq 0 ] || status=1
done
[ "$status" -eq 0 ] && rmdir "$logs" 2>/dev/null
exit $status
