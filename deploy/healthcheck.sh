#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Container health check of mqttd (deploy/Dockerfile installs it as mqttd-healthcheck): exit 0
# when `GET /healthz` on mqttd's HTTP server answers 200, 1 otherwise. The request is made by
# bash itself (/dev/tcp), so the image needs no curl. When the node runs without an HTTP
# server (http.listen ""), the check falls back to a TCP connect to the MQTT listener and, on a
# clustered node, `mqttctl status` on the cluster port.
# The addresses are those of the running mqttd: `mqttd --print-config` run with its arguments
# and environment (file, MQTTD_* variables and flags all applied), or, from an mqttd without
# --print-config, its --listen, --cluster-listen and --http-listen flags. Needs bash, coreutils
# and mqttctl.
set -uo pipefail
TIMEOUT="${MQTTD_HEALTH_TIMEOUT:-2}"

# The pid of the mqttd process: PID 1 normally, another one under an init (podman --init).
mqttd_pid() {
  local d
  for d in /proc/1 /proc/[0-9]*; do
    [ "$(cat "$d/comm" 2>/dev/null)" = mqttd ] && { echo "${d#/proc/}"; return 0; }
  done
  return 1
}

# Sets LISTEN (the first MQTT listener), CLUSTER (empty: not clustered) and HTTP (empty: no
# HTTP server) for process PID.
read_addresses() {
  local pid=$1 args=() env=() exe
  mapfile -d '' -t args <"/proc/$pid/cmdline"
  mapfile -d '' -t env <"/proc/$pid/environ"
  exe="${args[0]}"
  [ -x "$exe" ] || exe=$(command -v mqttd)
  LISTEN="" CLUSTER="" HTTP="0.0.0.0:8080"
  if "$exe" --help 2>/dev/null | grep -q -- --print-config; then
    # Its YAML: `listeners:` / `  - ...` / `    address: A`, and `cluster:` / `  listen: A`.
    read -r LISTEN CLUSTER HTTP < <(env -i "${env[@]}" "$exe" "${args[@]:1}" --print-config 2>/dev/null |
      awk '/^[^ #]/ { section = $1 }
           section == "listeners:" && $1 ~ /^(- )?address:$/ && !mqtt { mqtt = $NF }
           section == "listeners:" && $1 == "-" && $2 == "address:" && !mqtt { mqtt = $3 }
           section == "cluster:" && $1 == "listen:" { cluster = $2 }
           section == "http:" && $1 == "listen:" { http = $2 }
           END { gsub(/["'\'']/, "", mqtt); gsub(/["'\'']/, "", cluster); gsub(/["'\'']/, "", http)
                 if (cluster == "~" || cluster == "null") cluster = ""
                 if (http == "~" || http == "null") http = ""
                 print (mqtt == "" ? "-" : mqtt), (cluster == "" ? "-" : cluster), (http == "" ? "-" : http) }')
    [ "$LISTEN" = - ] && LISTEN=""
    [ "$CLUSTER" = - ] && CLUSTER=""
    [ "$HTTP" = - ] && HTTP=""
  else
    local i a v
    for ((i = 1; i < ${#args[@]}; i++)); do
      a="${args[i]}" v="${args[i + 1]:-}"
      case "$a" in --*=*) v="${a#*=}" a="${a%%=*}" ;; esac
      case "$a" in
        --listen) [ -z "$LISTEN" ] && LISTEN="${v%%,*}" ;;
        --cluster-listen) CLUSTER="$v" ;;
        --http-listen) HTTP="$v" ;;
      esac
    done
  fi
  LISTEN="${LISTEN:-0.0.0.0:1883}"
}

# HOST:PORT as something to dial: a wildcard host becomes loopback.
dial_address() {
  local host="${1%:*}" port="${1##*:}"
  host="${host#[}" host="${host%]}"
  case "$host" in ""|0.0.0.0) host=127.0.0.1 ;; ::) host=::1 ;; esac
  echo "$host $port"
}

# http_status HOST PORT PATH: the status code of `GET PATH` (HTTP/1.1, Connection: close), or
# nothing when the connection or the read fails within TIMEOUT.
http_status() {
  timeout "$TIMEOUT" bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" "$3" "$1" >&3
    read -r _ code _ <&3 && echo "$code"' _ "$1" "$2" "$3" 2>/dev/null
}

pid=$(mqttd_pid) || { echo "unhealthy: no mqttd process"; exit 1; }
read_addresses "$pid"
if [ -n "$HTTP" ]; then
  read -r host port <<<"$(dial_address "$HTTP")"
  code=$(http_status "$host" "$port" /healthz)
  if [ "$code" = 200 ]; then
    echo "healthy: GET http://$host:$port/healthz answered 200"
    exit 0
  fi
  echo "unhealthy: GET http://$host:$port/healthz answered '${code:-nothing}'"
  exit 1
fi
read -r host port <<<"$(dial_address "$LISTEN")"
if [ "$port" != 0 ] && ! timeout "$TIMEOUT" bash -c ": >/dev/tcp/$host/$port" 2>/dev/null; then
  echo "unhealthy: MQTT listener $host:$port does not accept connections"
  exit 1
fi
if [ -n "$CLUSTER" ]; then
  read -r host port <<<"$(dial_address "$CLUSTER")"
  if [ "$port" != 0 ] && ! timeout "$TIMEOUT" mqttctl --server "$host:$port" status >/dev/null; then
    echo "unhealthy: cluster port $host:$port does not answer mqttctl status"
    exit 1
  fi
fi
echo "healthy: mqtt $LISTEN${CLUSTER:+, cluster $CLUSTER}"
