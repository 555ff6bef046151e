#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Prints, one a line, the Debian packages that own the shared libraries BINARY... load (ldd +
# dpkg -S): what a runtime-only system (deploy/Dockerfile's runtime stage) must install to run
# them. Fails if a library is not found or belongs to no package.
# Usage: deploy/runtime-packages.sh build/release/node/mqttd build/release/node/mqttctl
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }

# owner PATH: the package that installed PATH; tries the path ldd printed, its real path and
# both again with /usr toggled (usr-merged systems record either spelling).
owner() {
  local real candidates c
  real=$(readlink -f "$1")
  candidates=("$1" "$real" "${1#/usr}" "/usr${1#/usr}" "${real#/usr}" "/usr${real#/usr}")
  for c in "${candidates[@]}"; do
    dpkg -S "$c" 2>/dev/null | sed -n 's/^\([^ :,]*\)\(:[a-z0-9]*\)\?: .*/\1/p' | head -n 1 | grep . && return 0
  done
  echo "$0: no package owns $1" >&2
  return 1
}

libs=$(ldd "$@" | awk '/not found/ { print "NOTFOUND " $1; next } $2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u)
if grep -q '^NOTFOUND' <<<"$libs"; then
  echo "$0: libraries not found: $(grep '^NOTFOUND' <<<"$libs" | cut -d' ' -f2 | tr '\n' ' ')" >&2
  exit 1
fi
for lib in $libs; do owner "$lib"; done | sort -u
