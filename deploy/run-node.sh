#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs dependencies, builds the release preset and starts one node with its embedded
# defaults (MQTT on 0.0.0.0:1883, data in ./data). Extra arguments go to mqttd.
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target mqttd
exec ./build/release/node/mqttd "$@"
