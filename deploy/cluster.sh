#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A local mqttd cluster to try things out: N nodes on this host behind HAProxy, one MQTT address.
#   deploy/cluster.sh up N     start nodes 0..N-1 (node 0 is the seed the others --join) and
#                              HAProxy (TCP, leastconn, health-checked) on LB_ADDR
#   deploy/cluster.sh status   each node's pid, ports and whether it is alive, HAProxy's view of
#                              them, and `mqttctl members` asked of a live node
#   deploy/cluster.sh down [--purge]   stop HAProxy and every node (pids in the state dir);
#                              --purge also removes the state dir (data, logs)
# Node i: id node-i, data and log in STATE_DIR/node-i/, MQTT on MQTT_BASE_PORT+i, cluster gRPC
# (--cluster-listen, mqttctl) on CLUSTER_BASE_PORT+2i, client-id registry Raft
# (--cluster-raft-listen) on the cluster port + 1, HTTP (/healthz, /readyz, /metrics) on a free
# port (the log's ready line says which: http=HOST:PORT), all on NODE_HOST.
# Environment (defaults):
#   STATE_DIR (/tmp/mqttd-cluster-UID)  LB_ADDR (127.0.0.1:1883)  NODE_HOST (127.0.0.1)
#   MQTT_BASE_PORT (11883)  CLUSTER_BASE_PORT (17000)
#   MQTT_PORTS / CLUSTER_PORTS / RAFT_PORTS: explicit space-separated port lists, one per node
#   MQTTD_BIN / MQTTCTL_BIN (build/release/node/{mqttd,mqttctl})  HAPROXY_BIN (haproxy)
#   MQTTD_ARGS: more mqttd options for every node (split on spaces)
#   READY_TIMEOUT (30): seconds a node has to print its ready line
#   LB_MAXCONN: HAProxy's maxconn (default: what the open-file limit allows, at most 20000)
# `up` and `down` record and read everything in STATE_DIR, so `status` and `down` need only it.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"
STATE_DIR="$(realpath -m "${STATE_DIR:-/tmp/mqttd-cluster-$(id -u)}")"  # absolute: see ours()
LB_ADDR="${LB_ADDR:-127.0.0.1:1883}"
NODE_HOST="${NODE_HOST:-127.0.0.1}"
MQTT_BASE_PORT="${MQTT_BASE_PORT:-11883}"
CLUSTER_BASE_PORT="${CLUSTER_BASE_PORT:-17000}"
MQTTD_BIN="${MQTTD_BIN:-$REPO/build/release/node/mqttd}"
MQTTCTL_BIN="${MQTTCTL_BIN:-$REPO/build/release/node/mqttctl}"
HAPROXY_BIN="${HAPROXY_BIN:-haproxy}"
READY_TIMEOUT="${READY_TIMEOUT:-30}"

die() { echo "cluster.sh: $*" >&2; exit 1; }
usage() { sed -n '3,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# ours PID: PID is alive and its command line names our state dir (not a recycled pid).
ours() { [ -n "$1" ] && tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -qF "$STATE_DIR/"; }

# port_of LIST BASE STEP I: element I of the space-separated list, or BASE + STEP * I.
port_of() {
  local list=($1)
  if [ ${#list[@]} -gt 0 ]; then
    [ -n "${list[$4]:-}" ] || die "port list '$1' has no entry for node $4"
    echo "${list[$4]}"
  else
    echo $(($2 + $3 * $4))
  fi
}

# stop_pid NAME PID: SIGTERM, up to 15 s for it to exit, then SIGKILL.
stop_pid() {
  local name=$1 pid=$2
  ours "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 150); do ours "$pid" || return 0; sleep 0.1; done
  echo "cluster.sh: $name (pid $pid) ignored SIGTERM for 15 s: SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

cmd_down() {
  local f id pid
  [ -d "$STATE_DIR" ] || { echo "nothing to stop: no $STATE_DIR"; return 0; }
  if [ -f "$STATE_DIR/haproxy.pid" ]; then
    stop_pid haproxy "$(cat "$STATE_DIR/haproxy.pid")"
    rm -f "$STATE_DIR/haproxy.pid"
  fi
  for f in "$STATE_DIR"/node-*/pid; do
    [ -f "$f" ] || continue
    id=$(basename "$(dirname "$f")") pid=$(cat "$f")
    stop_pid "$id" "$pid" &
  done
  wait
  rm -f "$STATE_DIR"/node-*/pid
  if [ "${1:-}" = --purge ]; then rm -rf "$STATE_DIR"; echo "stopped; removed $STATE_DIR"; else
    echo "stopped; data and logs kept in $STATE_DIR"; fi
}

# start_node I: starts node I in the background, its pid in STATE_DIR/node-I/pid.
start_node() {
  local i=$1 dir="$STATE_DIR/node-$1" mqtt cport rport join=() extra=()
  mqtt=$(port_of "${MQTT_PORTS:-}" "$MQTT_BASE_PORT" 1 "$i")
  cport=$(port_of "${CLUSTER_PORTS:-}" "$CLUSTER_BASE_PORT" 2 "$i")
  rport=$(port_of "${RAFT_PORTS:-}" $((cport + 1)) 0 "$i")
  [ "$i" -gt 0 ] && join=(--join "$NODE_HOST:$(port_of "${CLUSTER_PORTS:-}" "$CLUSTER_BASE_PORT" 2 0)")
  read -r -a extra <<<"${MQTTD_ARGS:-}"
  mkdir -p "$dir/data"
  echo "node-$i $mqtt $cport $rport" >"$dir/ports"
  # setsid: the node outlives this script and the terminal; exec keeps $! the node's pid.
  setsid "$MQTTD_BIN" --node-id "node-$i" --data-dir "$dir/data" --listen "$NODE_HOST:$mqtt" \
    --cluster-listen "$NODE_HOST:$cport" --cluster-raft-listen "$NODE_HOST:$rport" \
    --http-listen "$NODE_HOST:0" "${join[@]}" "${extra[@]}" </dev/null >>"$dir/mqttd.log" 2>&1 &
  echo $! >"$dir/pid"
}

# log_tail I: the last lines node I logged since this start, to stderr.
log_tail() {
  local dir="$STATE_DIR/node-$1"
  tail -c +"$(cat "$dir/log-start")" "$dir/mqttd.log" | tail -n 20 >&2
}

# wait_ready I: until node I's log has its ready line (since this start), or READY_TIMEOUT.
wait_ready() {
  local dir="$STATE_DIR/node-$1" pid
  pid=$(cat "$dir/pid")
  for _ in $(seq 1 $((READY_TIMEOUT * 10))); do
    grep -q " ready " <(tail -c +"$(cat "$dir/log-start")" "$dir/mqttd.log") && return 0
    kill -0 "$pid" 2>/dev/null || { log_tail "$1"; die "node-$1 exited at start-up"; }
    sleep 0.1
  done
  log_tail "$1"
  die "node-$1: no ready line within $READY_TIMEOUT s ($dir/mqttd.log)"
}

# lb_maxconn: LB_MAXCONN, or as many client connections as the open-file limit allows HAProxy
# (each takes two descriptors, client and node side), at most 20000.
lb_maxconn() {
  local hard
  hard=$(ulimit -Hn)
  [ "$hard" = unlimited ] && hard=40100
  local m=$(((hard - 100) / 2))
  [ "$m" -gt 20000 ] && m=20000
  echo "${LB_MAXCONN:-$m}"
}

start_haproxy() {
  local servers="" f id mqtt _c _r
  for f in "$STATE_DIR"/node-*/ports; do
    read -r id mqtt _c _r <"$f"
    servers+="    server $id $NODE_HOST:$mqtt"$'\n'
  done
  # Template fields: @STATE_DIR@ @LB_BIND@ @MAXCONN@ @SERVERS@ (one `server` line per node).
  awk -v state="$STATE_DIR" -v bind="$LB_ADDR" -v maxconn="$(lb_maxconn)" \
      -v servers="${servers%$'\n'}" '
      $0 == "@SERVERS@" { print servers; next }
      { gsub(/@STATE_DIR@/, state); gsub(/@LB_BIND@/, bind); gsub(/@MAXCONN@/, maxconn); print }' \
    "$HERE/haproxy.cfg.in" >"$STATE_DIR/haproxy.cfg"
  "$HAPROXY_BIN" -c -q -f "$STATE_DIR/haproxy.cfg" || die "invalid $STATE_DIR/haproxy.cfg"
  "$HAPROXY_BIN" -f "$STATE_DIR/haproxy.cfg" >"$STATE_DIR/haproxy.log" 2>&1 \
    || { cat "$STATE_DIR/haproxy.log" >&2; die "haproxy did not start"; }
}

cmd_up() {
  local n=${1:-} i
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || usage
  [ -x "$MQTTD_BIN" ] || die "no mqttd at $MQTTD_BIN (build it or set MQTTD_BIN)"
  command -v "$HAPROXY_BIN" >/dev/null || die "no $HAPROXY_BIN (apt-get install haproxy)"
  for f in "$STATE_DIR"/node-*/pid "$STATE_DIR/haproxy.pid"; do
    [ -f "$f" ] && ours "$(cat "$f")" && die "already up in $STATE_DIR: run '$0 down' first"
  done
  mkdir -p "$STATE_DIR"
  rm -rf "$STATE_DIR"/node-*/ports "$STATE_DIR"/node-*/pid
  UP_DONE=0
  trap '[ "$UP_DONE" = 1 ] || { echo "cluster.sh: up failed, stopping what it started" >&2; cmd_down >/dev/null; }' EXIT
  for ((i = 0; i < n; i++)); do
    mkdir -p "$STATE_DIR/node-$i"
    echo $(($(stat -c %s "$STATE_DIR/node-$i/mqttd.log" 2>/dev/null || echo 0) + 1)) \
      >"$STATE_DIR/node-$i/log-start"
  done
  start_node 0 && wait_ready 0                              # the seed first
  for ((i = 1; i < n; i++)); do start_node "$i"; done
  for ((i = 1; i < n; i++)); do wait_ready "$i"; done
  start_haproxy
  echo "$LB_ADDR $NODE_HOST" >"$STATE_DIR/lb"
  UP_DONE=1
  echo "up: $n nodes, MQTT through HAProxy on $LB_ADDR (state in $STATE_DIR)"
  cmd_status
}

# haproxy_states: "server status" lines from HAProxy's stats socket (python3 speaks to it).
haproxy_states() {
  [ -S "$STATE_DIR/haproxy.sock" ] && command -v python3 >/dev/null || return 0
  python3 - "$STATE_DIR/haproxy.sock" <<'PY' 2>/dev/null || true
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[1])
s.sendall(b"show stat\n"); data = b""
while chunk := s.recv(65536): data += chunk
for row in data.decode().splitlines()[1:]:
    f = row.split(",")
    if len(f) > 17 and f[0] == "mqttd" and f[1] != "BACKEND":
        print(f[1], f[17], "current-connections=" + f[4])
PY
}

cmd_status() {
  local f dir id mqtt cport rport pid alive first="" hp states
  [ -d "$STATE_DIR" ] || die "no cluster in $STATE_DIR"
  [ -f "$STATE_DIR/lb" ] && read -r LB_ADDR NODE_HOST <"$STATE_DIR/lb"   # what `up` used
  states=$(haproxy_states)
  printf '%-8s %-8s %-6s %-8s %-8s %-6s %s\n' NODE PID MQTT CLUSTER RAFT ALIVE HAPROXY
  for f in "$STATE_DIR"/node-*/ports; do
    [ -f "$f" ] || continue
    dir=$(dirname "$f")
    read -r id mqtt cport rport <"$f"
    pid=$(cat "$dir/pid" 2>/dev/null || echo -)
    if ours "$pid"; then alive=yes; first="${first:-$NODE_HOST:$cport}"; else alive=no; fi
    printf '%-8s %-8s %-6s %-8s %-8s %-6s %s\n' "$id" "$pid" "$mqtt" "$cport" "$rport" "$alive" \
      "$(awk -v id="$id" '$1 == id { print $2 }' <<<"$states")"
  done
  hp=$(cat "$STATE_DIR/haproxy.pid" 2>/dev/null || echo -)
  if ours "$hp"; then echo "haproxy pid $hp on $LB_ADDR: alive"; else echo "haproxy: not running"; fi
  if [ -n "$first" ] && [ -x "$MQTTCTL_BIN" ]; then
    echo "mqttctl --server $first members:"
    "$MQTTCTL_BIN" --server "$first" members || true
  fi
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down "$@" ;;
  status) cmd_status ;;
  *) usage ;;
esac
