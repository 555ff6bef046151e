#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian 12 packages that build, run and test mqttd. Idempotent.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build ccache pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev librocksdb-dev libssl-dev libboost-dev libgtest-dev libgmock-dev libjemalloc-dev
  libraft-dev libuv1-dev iproute2 libyaml-cpp-dev prometheus-cpp-dev nlohmann-json3-dev
  golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev yamllint python3-yaml
  mosquitto mosquitto-clients python3-paho-mqtt clang libclang-rt-14-dev haproxy
  openssl  # the TLS tests make their certificates with the openssl command line
)
# --build-only: what configuring and building the release preset needs (the container image's
# build stage, deploy/Dockerfile): the list above minus these test and tooling packages, no
# Node.js. A package missing here only makes the image's build stage bigger.
BUILD_ONLY=0
if [ "${1:-}" = "--build-only" ]; then
  BUILD_ONLY=1
  not_for_build=(ccache git iproute2 golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev
    yamllint python3-yaml mosquitto mosquitto-clients python3-paho-mqtt clang libclang-rt-14-dev haproxy
    openssl)
  build_pkgs=()
  for p in "${PKGS[@]}"; do [[ " ${not_for_build[*]} " == *" $p "* ]] || build_pkgs+=("$p"); done
  PKGS=("${build_pkgs[@]}")
fi
# MQTT.js tests need Node.js and npm; Debian's packages only where none is installed already
# (the CI machines carry a newer Node.js).
[ "$BUILD_ONLY" = 1 ] || command -v npm >/dev/null 2>&1 || PKGS+=(nodejs npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
