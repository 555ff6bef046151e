#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the mqttd container image (deploy/Dockerfile) with no container registry, then checks
# it. Run by hand, as root (re-runs itself with sudo otherwise); NOT part of CI: the C++ build
# inside takes many minutes.
#   1. If there is no local image named like the Dockerfile's FROM (debian:bookworm), makes one:
#      debootstrap --variant=minbase from the apt mirror this host is configured with
#      (/etc/apt/sources.list*, or DEBIAN_MIRROR), imported with `podman import`.
#   2. buildah bud --format docker --pull=never (docker format keeps the HEALTHCHECK).
#   3. Runs the image with podman: mqttd must run as uid 10001, answer GET /readyz (200) and
#      /metrics on the mapped HTTP port, answer MQTT on the mapped port
#      (mosquitto_pub/mosquitto_sub), pass its HEALTHCHECK (`podman healthcheck run`), alone and
#      clustered (--cluster-listen, the mqttctl branch of the check), and exit 0 on podman stop.
# Usage: deploy/build-image.sh [IMAGE]        (default mqttd:dev)
# Env: BUILD_JOBS (2), DEBIAN_MIRROR, WORK_DIR (/var/tmp/mqttd-image: the debootstrap tree),
#      REBUILD_BASE=1 (debootstrap again even if the base image exists), SKIP_CHECK=1.
# Podman/buildah options are probed (a `podman run`, a one-step `buildah bud` that reaches the
# apt mirror) and fallbacks added one after the other until they work; every failure is printed:
# podman: --runtime runc (crun refuses cgroup v1/v2 hybrid hosts), --ulimit nofile/nproc no
# higher than this shell's (without CAP_SYS_RESOURCE podman's defaults cannot be set),
# --storage-driver vfs (no overlay), --network host; buildah: --runtime runc, the same --ulimit,
# --isolation chroot, --network host. Force them with OCI_RUNTIME=runc, ULIMIT=low,
# STORAGE_DRIVER=vfs, CGROUP_MANAGER=cgroupfs, NETWORK=host, ISOLATION=chroot.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then exec sudo -E "$0" "$@"; fi

IMAGE="${1:-mqttd:dev}"
BASE=$(awk 'toupper($1) == "FROM" { print $2; exit }' deploy/Dockerfile)
WORK_DIR="${WORK_DIR:-/var/tmp/mqttd-image}"
BUILD_JOBS="${BUILD_JOBS:-2}"
START=$(date +%s)
log() { echo "[build-image +$(( $(date +%s) - START ))s] $*"; }
die() { echo "[build-image] FAILED: $*" >&2; exit 1; }

# ---- 0. tools ----
need=()
for t in podman:podman buildah:buildah debootstrap:debootstrap mosquitto_pub:mosquitto-clients; do
  command -v "${t%%:*}" >/dev/null 2>&1 || need+=("${t#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" uidmap
fi
log "podman $(podman --version | awk '{print $3}'), buildah $(buildah --version | awk '{print $3}'), base $BASE, image $IMAGE"

# Options, grown by the probes below: PM_GLOBAL / BH_GLOBAL before podman's / buildah's
# subcommand, RUN_OPTS for podman run, BUD_OPTS for buildah bud.
PM_GLOBAL=() BH_GLOBAL=() RUN_OPTS=() BUD_OPTS=()
pm() { podman "${PM_GLOBAL[@]}" "$@"; }
bh() { buildah "${BH_GLOBAL[@]}" "$@"; }
use_runc() {
  command -v runc >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends runc
}
# Limits no higher than this shell's: podman asks for more (nofile 1048576) by default.
ULIMITS=(--ulimit "nofile=$(ulimit -Sn):$(ulimit -Hn)" --ulimit "nproc=8192:8192")
use_vfs() {
  local opts=(--storage-driver vfs --root /var/lib/containers/storage-vfs --runroot /run/containers/storage-vfs)
  PM_GLOBAL+=("${opts[@]}") BH_GLOBAL+=("${opts[@]}")
}
[ -n "${OCI_RUNTIME:-}" ] && PM_GLOBAL+=(--runtime "$OCI_RUNTIME") && BUD_OPTS+=(--runtime "$OCI_RUNTIME")
[ "${STORAGE_DRIVER:-}" = vfs ] && use_vfs
[ -n "${CGROUP_MANAGER:-}" ] && PM_GLOBAL+=(--cgroup-manager "$CGROUP_MANAGER") && BH_GLOBAL+=(--cgroup-manager "$CGROUP_MANAGER")
[ -n "${NETWORK:-}" ] && RUN_OPTS+=(--network "$NETWORK") && BUD_OPTS+=(--network "$NETWORK")
[ -n "${ISOLATION:-}" ] && BUD_OPTS+=(--isolation "$ISOLATION")
[ "${ULIMIT:-}" = low ] && RUN_OPTS+=("${ULIMITS[@]}") && BUD_OPTS+=("${ULIMITS[@]}")

# ---- 1. the base image ----
# mirror_for SUITE: the first URI of an enabled apt source for SUITE (deb822 or one-line).
mirror_for() {
  local suite=$1 f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    case "$f" in
      *.sources) awk -v s="$suite" -v RS= '
          { uri = ""; ok = 0; on = 1
            n = split($0, l, "\n")
            for (i = 1; i <= n; i++) {
              if (l[i] ~ /^URIs:/) { split(l[i], u, /[ \t]+/); uri = u[2] }
              if (l[i] ~ /^Suites:/) { m = split(l[i], w, /[ \t]+/); for (j = 2; j <= m; j++) if (w[j] == s) ok = 1 }
              if (l[i] ~ /^Enabled:[ \t]*no/) on = 0
            }
            if (ok && on && uri != "") { print uri; exit } }' "$f" ;;
      *) awk -v s="$suite" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++; if ($2 ~ /^\[/) i++;
            if ($(i + 1) == s) { print $i; exit } }' "$f" ;;
    esac
  done | head -n 1
}

make_base() {
  local mirror security rootfs="$WORK_DIR/rootfs"
  mirror="${DEBIAN_MIRROR:-$(mirror_for bookworm)}"
  security="$(mirror_for bookworm-security)"
  [ -n "$mirror" ] || die "no apt source for bookworm in /etc/apt/sources.list*; set DEBIAN_MIRROR"
  log "debootstrap bookworm (minbase) from $mirror into $rootfs"
  rm -rf "$rootfs" && mkdir -p "$rootfs"
  debootstrap --variant=minbase --arch="$(dpkg --print-architecture)" bookworm "$rootfs" "$mirror" \
    >"$WORK_DIR/debootstrap.log" 2>&1 || { tail -n 20 "$WORK_DIR/debootstrap.log"; die "debootstrap"; }
  {
    echo "deb $mirror bookworm main"
    echo "deb $mirror bookworm-updates main"
    [ -n "$security" ] && echo "deb $security bookworm-security main"
  } >"$rootfs/etc/apt/sources.list"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
  tar --numeric-owner -C "$rootfs" -cf "$WORK_DIR/rootfs.tar" .
  log "rootfs: $(du -sh "$WORK_DIR/rootfs.tar" | cut -f1)"
}

import_base() {
  pm rmi -f "$BASE" >/dev/null 2>&1 || true
  pm import -q --change 'CMD ["/bin/bash"]' --message "debootstrap bookworm minbase" \
    "$WORK_DIR/rootfs.tar" "$BASE" >/dev/null
  log "imported $BASE: $(pm image inspect --format '{{.Id}}' "$BASE" | cut -c1-12)"
}

mkdir -p "$WORK_DIR"
if [ "${REBUILD_BASE:-0}" = 1 ] || ! pm image exists "$BASE"; then
  [ "${REBUILD_BASE:-0}" = 1 ] || [ ! -s "$WORK_DIR/rootfs.tar" ] && make_base
  import_base
else
  log "base image $BASE exists: $(pm image inspect --format '{{.Id}} {{.Created}}' "$BASE" | cut -c1-40)"
fi

# ---- probing: which podman/buildah options work here ----
# try WHAT CMD...: runs CMD, prints the failure (last lines) and returns its status.
try() {
  local what=$1 out; shift
  if out=$("$@" 2>&1); then return 0; fi
  echo "[build-image] probe failed: $what: $*" >&2
  { echo "$out" | grep -E 'crun|runc|permitted|denied|not supported|overlay|cgroup' \
      || echo "$out" | tail -n 3; } | tail -n 3 | sed 's/^/    /' >&2
  return 1
}
probe_podman() { try "podman run" pm run --rm "${RUN_OPTS[@]}" "$BASE" true; }
# A one-step build that needs what the real one needs: a RUN step reaching the apt mirror.
probe_buildah() {
  local dir="$WORK_DIR/probe"
  mkdir -p "$dir"
  printf '%s\n' "FROM $BASE" \
    'RUN host=$(awk '"'"'/^deb /{split($2,a,"/"); print a[3]; exit}'"'"' /etc/apt/sources.list) && bash -c ": >/dev/tcp/$host/80"' \
    >"$dir/Dockerfile"
  try "buildah bud (a RUN step reaching the apt mirror)" \
    bh bud --pull=never --no-cache "${BUD_OPTS[@]}" -t mqttd-probe "$dir"
}
# Each fallback adds to what the previous ones set, until a container runs.
for step in none runtime ulimit vfs hostnet; do
  case $step in
    runtime) use_runc; PM_GLOBAL+=(--runtime runc); log "podman: adding --runtime runc" ;;
    ulimit) RUN_OPTS+=("${ULIMITS[@]}"); log "podman: adding ${ULIMITS[*]}" ;;
    vfs) use_vfs; log "podman and buildah: adding --storage-driver vfs (a store of its own)"; import_base ;;
    hostnet) RUN_OPTS+=(--network host); log "podman: adding --network host" ;;
  esac
  probe_podman && break
  [ $step = hostnet ] && die "podman cannot run a container here (every fallback above failed)"
done
for step in none runtime ulimit chroot hostnet; do
  case $step in
    runtime) use_runc; BUD_OPTS+=(--runtime runc); log "buildah: adding --runtime runc" ;;
    ulimit) BUD_OPTS+=("${ULIMITS[@]}"); log "buildah: adding ${ULIMITS[*]}" ;;
    chroot) BUD_OPTS+=(--isolation chroot); log "buildah: adding --isolation chroot" ;;
    hostnet) BUD_OPTS+=(--network host); log "buildah: adding --network host" ;;
  esac
  probe_buildah && break
  [ $step = hostnet ] && die "buildah cannot run a build step here (every fallback above failed)"
done
bh rmi -f mqttd-probe >/dev/null 2>&1 || true
log "options: podman [${PM_GLOBAL[*]}] run [${RUN_OPTS[*]}]; buildah [${BH_GLOBAL[*]}] bud [${BUD_OPTS[*]}]"

# ---- 2. the image ----
log "buildah bud $IMAGE (BUILD_JOBS=$BUILD_JOBS; the C++ build takes a while)"
if ! bh bud --format docker --pull=never --layers "${BUD_OPTS[@]}" --build-arg "BUILD_JOBS=$BUILD_JOBS" \
    -f deploy/Dockerfile -t "$IMAGE" . 2>&1 | sed -u 's/^/    /'; then
  die "buildah bud"
fi
log "built: $(pm images --format '{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}' "$IMAGE" | head -n 1)"
[ "${SKIP_CHECK:-0}" = 1 ] && exit 0

# ---- 3. the check ----
CONTAINERS=()
cleanup() { local c; for c in "${CONTAINERS[@]}"; do pm rm -f -t 0 "$c" >/dev/null 2>&1 || true; done; }
trap cleanup EXIT

# start NAME EXTRA_ARGS...: runs the image detached as container NAME-PID with MQTT published
# on a free loopback port (or, with --network host, on a free port of the host), waits for its
# ready line and sets C (the container) and PORT (MQTT on 127.0.0.1). No subshell: die() must
# stop the script and CONTAINERS must reach the EXIT trap.
# --health-interval disable: no timer, the check is run once by hand below. (Where systemd is
# not running, podman still logs "unable to get systemd connection" for the timer: harmless.)
start() {
  local name=$1 port=0 http=0; shift
  local publish=(-p 127.0.0.1::1883 -p 127.0.0.1::8080)
  local args=(--data-dir /data --listen 0.0.0.0:1883 --http-listen 0.0.0.0:8080)
  if [[ " ${RUN_OPTS[*]} " == *" --network host "* ]]; then
    port=$(free_port) http=$(free_port)
    publish=() args=(--data-dir /data --listen "127.0.0.1:$port" --http-listen "127.0.0.1:$http")
  fi
  C="$name-$$"
  pm rm -f -t 0 "$C" >/dev/null 2>&1 || true
  CONTAINERS+=("$C")
  pm run -d --name "$C" --health-interval disable "${RUN_OPTS[@]}" "${publish[@]}" \
    "$IMAGE" "${args[@]}" --node-id "$name" "$@" >/dev/null
  for _ in $(seq 1 300); do
    pm logs "$C" 2>/dev/null | grep -q " ready " && break
    [ "$(pm inspect -f '{{.State.Running}}' "$C")" = true ] || { pm logs "$C" | tail; die "$name exited"; }
    sleep 0.2
  done
  pm logs "$C" 2>/dev/null | grep " ready " || die "$name: no ready line within 60 s"
  [ "$port" != 0 ] || port=$(pm port "$C" 1883/tcp | head -n 1 | sed 's/.*://')
  [ "$http" != 0 ] || http=$(pm port "$C" 8080/tcp | head -n 1 | sed 's/.*://')
  PORT=$port HTTP_PORT=$http
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# http_get URL: prints "STATUS BODY" (the body's first line), from the host.
http_get() {
  python3 - "$1" <<'PY'
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=5)
    code, body = r.status, r.read()
except urllib.error.HTTPError as e:
    code, body = e.code, e.read()
except OSError as e:
    code, body = 0, str(e).encode()
print(code, body.decode(errors="replace").splitlines()[0] if body else "")
PY
}
# until_ready URL: waits (30 s at most) for 200 from URL; prints the last answer.
until_ready() {
  local got
  for _ in $(seq 1 60); do
    got=$(http_get "$1")
    [ "${got%% *}" = 200 ] && break
    sleep 0.5
  done
  echo "$got"
}

check_node() {
  local name=$1 c port http uid got; shift
  start "$name" "$@"
  c=$C port=$PORT http=$HTTP_PORT
  uid=$(pm exec "$c" awk '/^Uid:/ { print $2 }' /proc/1/status)
  [ "$uid" = 10001 ] || die "$name: mqttd runs as uid $uid, not 10001"
  log "$name: mqttd (pid 1 in the container) runs as uid $uid; MQTT on 127.0.0.1:$port, HTTP on 127.0.0.1:$http"
  got=$(until_ready "http://127.0.0.1:$http/readyz")
  [ "${got%% *}" = 200 ] || die "$name: GET /readyz: $got"
  log "$name: GET /readyz through the mapped port: $got"
  got=$(http_get "http://127.0.0.1:$http/metrics")
  [ "${got%% *}" = 200 ] || die "$name: GET /metrics: $got"
  log "$name: GET /metrics: 200"
  mosquitto_sub -h 127.0.0.1 -p "$port" -t "check/$name" -C 1 -W 20 >"$WORK_DIR/sub.out" &
  local sub=$!
  for _ in $(seq 1 50); do  # until the subscription is in place: retained-free re-publish
    mosquitto_pub -h 127.0.0.1 -p "$port" -t "check/$name" -m "hello from $name" -q 1 || true
    sleep 0.2
    kill -0 "$sub" 2>/dev/null || break
  done
  wait "$sub" || die "$name: mosquitto_sub got nothing"
  got=$(cat "$WORK_DIR/sub.out")
  [ "$got" = "hello from $name" ] || die "$name: mosquitto_sub got '$got'"
  log "$name: mosquitto_pub -> mosquitto_sub through the mapped port: '$got'"
  if ! pm healthcheck run "$c"; then
    pm exec "$c" mqttd-healthcheck || true
    die "$name: podman healthcheck run failed"
  fi
  log "$name: podman healthcheck run: exit 0; mqttd-healthcheck says: $(pm exec "$c" mqttd-healthcheck)"
  if [ $# -gt 0 ]; then
    log "$name: mqttctl members:"
    pm exec "$c" mqttctl --server 127.0.0.1:7946 members
  fi
  pm stop -t 20 "$c" >/dev/null
  got=$(pm inspect -f '{{.State.ExitCode}}' "$c")
  [ "$got" = 0 ] || die "$name: exit code $got after podman stop"
  log "$name: podman stop: mqttd exited 0"
}

# The image's metadata, and no build tool or -dev package in it.
log "config: user $(pm image inspect --format '{{.Config.User}}' "$IMAGE"), ports" \
  "$(pm image inspect --format '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}' "$IMAGE")"
log "healthcheck: $(pm image inspect --format '{{.Config.Healthcheck.Test}}' "$IMAGE")"
extra=$(pm run --rm "${RUN_OPTS[@]}" --entrypoint dpkg-query "$IMAGE" -W -f '${Package}\n' |
  grep -E -- '-dev(:|$)|^(gcc|g\+\+|cpp|cmake|make|ninja-build)(-[0-9]+)?$' || true)
[ -z "$extra" ] || die "build packages in the runtime image: $extra"
log "runtime image: no compiler, no -dev package"

check_node single
check_node clustered --cluster-listen 0.0.0.0:7946
log "image $IMAGE OK: $(pm images --format '{{.ID}} {{.Size}}' "$IMAGE" | head -n 1)"
