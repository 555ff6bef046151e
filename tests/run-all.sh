#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite, as CI runs it: installs dependencies, builds the release and the
# ASan+UBSan presets, and runs every test that is not labelled bench or soak under each (the
# asan preset also skips the `smoke` bench run, whose timings mean nothing under sanitizers, and
# the `helm` tests, which check the chart and pod scaling with the same binary the cluster tests
# already run under ASan), then
# builds the libFuzzer targets alone (preset `fuzz`, clang) and runs `ctest --preset fuzz`: each
# target's corpus replayed, then MQTT_FUZZ_SECONDS (default 20) of mutation per target.
#   tests/run-all.sh            everything
#   tests/run-all.sh --no-asan  release only (quicker, for local iteration)
#   tests/run-all.sh --no-fuzz  release and asan, no fuzz targets
set -euo pipefail
cd "$(dirname "$0")/.."
# Each phase's wall time is printed, so that a slow CI run says where its time went.
phase() { echo "=== $1 ($(date -u +%T))"; SECONDS=0; }
took() { echo "=== took ${SECONDS} s"; }
phase "dependencies"
./deploy/install-deps.sh
took
presets=(release asan)
fuzz=1
[ "${1:-}" = "--no-asan" ] && presets=(release) && fuzz=0
[ "${1:-}" = "--no-fuzz" ] && fuzz=0
for preset in "${presets[@]}"; do
  phase "preset $preset: build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  took
  phase "preset $preset: test"
  ctest --preset "$preset"
  took
done
if [ "$fuzz" = 1 ]; then
  # install-deps.sh installs clang and libclang-rt-14-dev (libFuzzer and the sanitizers).
  command -v clang++ >/dev/null || { echo "clang++ missing: the fuzz preset needs it" >&2; exit 1; }
  phase "preset fuzz: build (the fuzz targets and what they link only)"
  cmake --preset fuzz -DMQTT_FUZZ_SECONDS="${MQTT_FUZZ_SECONDS:-20}" >/dev/null
  cmake --build --preset fuzz --target fuzz_targets
  took
  phase "preset fuzz: corpus replay and short runs"
  ctest --preset fuzz
  took
fi
