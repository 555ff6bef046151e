#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite, as CI runs it: installs dependencies, builds the release and the
# ASan+UBSan presets, and runs every test that is not labelled bench or soak under each (the
# asan preset also skips the `smoke` bench run: timings mean nothing under sanitizers).
#   tests/run-all.sh            everything
#   tests/run-all.sh --no-asan  release only (quicker, for local iteration)
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-deps.sh
presets=(release asan)
[ "${1:-}" = "--no-asan" ] && presets=(release)
for preset in "${presets[@]}"; do
  echo "=== preset $preset: build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  echo "=== preset $preset: test"
  ctest --preset "$preset"
done
