// SPDX-License-Identifier: Apache-2.0
// Node configuration: one table of options, each with a command-line flag, a key path in the
// YAML config file and an environment variable (docs/configuration.md lists them all).
//
// Contract: the sources apply in the order defaults < config file (--config FILE, YAML) <
// environment (MQTTD_<KEY PATH>) < command-line flags, whatever the order of the flags. A list
// given by a source replaces the list of the sources below it; repeated flags add to each other.
// An unknown key, a bad type or value is an error naming the file, line and key path (or the
// variable, or the flag); nothing starts with a half-read configuration. Exceptions thrown by
// the YAML parser never leave this module.
// Thread-safety: parse once at start-up; Config is then read-only and shared.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "node/base/log.h"

namespace mqtt {

struct ListenAddress {
  std::string host;
  uint16_t port = 0;             // 0: pick a free port (reported on the ready line)
  uint32_t max_connections = 0;  // YAML listener key; 0: limits.max_connections

  bool operator==(const ListenAddress&) const = default;
};

// A TLS or WebSocket listener: an item of the YAML `listeners` list with protocol mqtts, ws or
// wss, or a --tls-listen, --ws-listen, --wss-listen flag. Empty fields take the tls.* and
// websocket.* settings.
struct SecureListener {
  std::string protocol;  // mqtts, ws or wss
  ListenAddress address;
  std::string cert_file;  // mqtts, wss
  std::string key_file;
  std::string ca_file;
  std::string require_client_cert;  // "", "true" or "false" ("": tls.require_client_cert)
  std::string path;                 // ws, wss ("": websocket.path)
  uint32_t max_connections = 0;     // 0: no limit

  bool operator==(const SecureListener&) const = default;
};

// TLS to a bridge's remote broker (present in BridgeConfig when `tls` is in its map).
struct BridgeTls {
  std::string ca_file;    // PEM CAs the remote's certificate must chain to; empty: system CAs
  std::string cert_file;  // PEM client certificate (mutual TLS); empty: none
  std::string key_file;
  bool verify = true;       // check the remote's certificate and host name
  std::string server_name;  // SNI and the name checked; empty: the address's host

  bool operator==(const BridgeTls&) const = default;
};

// One item of the YAML `bridges` list (docs/bridges.md): a connection to another broker with
// Mosquitto's topic lines (node/bridge/topic_line.h, checked when the file is read).
struct BridgeConfig {
  std::string name;                           // [A-Za-z0-9_-]+: $SYS/broker/connection/<name>/state
  std::vector<std::string> addresses;         // HOST:PORT, tried in order (failover)
  std::string protocol_version = "mqttv311";  // or mqttv50
  std::string client_id;                      // empty: the name
  std::string username;
  std::string password;  // secret
  bool tls = false;
  BridgeTls tls_options;
  bool clean_session = false;
  uint32_t session_expiry = 3600;  // 5.0, seconds, with clean_session false
  uint32_t keepalive = 60;         // seconds
  uint32_t restart_min = 5;        // seconds: first reconnect delay, doubled up to restart_max
  uint32_t restart_max = 30;
  bool try_private = true;          // 3.1.1: protocol level 0x84 (Mosquitto's bridge flag)
  std::vector<std::string> topics;  // Mosquitto `topic` lines, without the keyword

  bool operator==(const BridgeConfig&) const = default;
};

struct Config {
  // MQTT over TCP. Default 0.0.0.0:1883 when no listener of any protocol is configured.
  std::vector<ListenAddress> listeners;
  std::vector<SecureListener> secure_listeners;  // mqtts, ws, wss (issue 14)
  std::string data_dir = "./data";
  std::string node_id;  // default: the host name
  LogLevel log_level = LogLevel::kInfo;
  std::string log_format = "text";      // text or json (node/base/log.h)
  uint32_t workers = 0;                 // default: one per core (at most 256)
  uint32_t idle_poll_us = 50;           // see IoWorker::set_idle_poll
  uint32_t max_inflight = 20;           // outbound QoS 1/2 messages awaiting ack, per client
  uint32_t max_queued_messages = 1000;  // per client, behind the inflight window
  uint32_t max_packet_size = 16 * 1024 * 1024;     // bytes, whole packet, inbound
  uint32_t max_outbound_buffer = 4 * 1024 * 1024;  // bytes of unwritten output before QoS 0 drops
  uint32_t max_queued_bytes = 64 * 1024 * 1024;    // per client, topic + payload; 0 = no limit
  std::string queue_full_policy = "drop_newest";   // or drop_oldest
  bool queue_qos0_offline = false;
  uint32_t connect_timeout_seconds = 10;        // time allowed between accept and CONNECT
  uint32_t max_connections = 0;                 // per listener; 0: no limit
  uint32_t connection_rate = 10000;             // accepts per second per listener; 0: no limit
  uint32_t message_rate = 0;                    // PUBLISH per second per client; 0: no limit
  uint32_t byte_rate = 0;                       // bytes read per second per client; 0: no limit
  uint32_t receive_maximum = 1024;              // 5.0: inbound unacknowledged QoS 2 per client
  uint32_t topic_alias_maximum = 64;            // 5.0: inbound topic aliases per connection
  uint32_t max_keep_alive = 65535;              // 5.0: larger (or 0) client values are capped
  uint32_t max_session_expiry = 7 * 24 * 3600;  // seconds; 0xFFFFFFFF: never
  std::string shared_subscription_strategy = "round_robin";
  bool shared_subscription_prefer_local = false;  // cluster: an online local member first
  std::string auth_hmac_secret;  // enables the HMAC-SHA256-CHALLENGE enhanced auth method
  bool fsync = false;            // fsync each storage write (power-loss durability)
  bool persistence = true;       // keep persistent sessions and retained messages in RocksDB
  uint32_t storage_wal_budget = 64 * 1024 * 1024;  // bytes of RocksDB WAL (and memtables)
  // Disk watermark: free space kept on the data directory's file system, as a percentage of
  // its size or in bytes (one of the two is non-zero; both 0: off).
  uint32_t min_free_disk_percent = 5;
  uint64_t min_free_disk_bytes = 0;
  // Password and ACL files (node/auth, docs/security.md); re-read on SIGHUP.
  std::string password_file;  // Mosquitto format; empty: user names are not checked
  std::string acl_file;       // Mosquitto syntax plus client/address sections; empty: no ACL
  std::string allow_anonymous = "auto";  // true, false, auto (true unless a password file)
  uint32_t auth_reload_interval = 0;     // seconds between password/ACL file checks; 0: off
  // Cluster (issue 11). Without cluster_listen the node runs alone.
  // Every node of one cluster has the same name; membership refuses a peer with another one
  // (cluster/README.md). 1-64 characters of [A-Za-z0-9._-].
  std::string cluster_name = "mqttd";
  std::string cluster_listen;                 // HOST:PORT of the cluster gRPC server
  std::string cluster_advertise;              // HOST:PORT peers dial; default: cluster_listen
  std::vector<std::string> join;              // seeds HOST:PORT
  std::string join_dns;                       // NAME:PORT: every address NAME resolves to is a seed
  uint32_t cluster_remove_after = 3600;       // seconds a dead member is remembered
  uint32_t cluster_probe_interval_ms = 1000;  // one member probed per interval
  uint32_t cluster_suspect_timeout_ms = 5000;  // an unrefuted suspect is then dead
  uint32_t cluster_sync_timeout = 10;  // seconds to wait for the peers' routes before serving
  uint32_t cluster_outbox_messages = 1'000'000;  // per peer, forwarded and not acknowledged
  uint32_t cluster_outbox_bytes = 256 << 20;     // per peer, approximate
  // Cluster, sessions (issue 12): the client-id registry (Raft).
  std::string cluster_raft_listen;  // HOST:PORT of the registry's Raft port; default listen + 1
  std::vector<std::string> cluster_bootstrap_members;   // node ids that form the registry
  bool cluster_allow_register_during_netsplit = false;  // availability over one-session-per-id
  // Cluster TLS (issue 14, cluster/cluster_tls.h): mutual TLS on the cluster port; all or none.
  std::string cluster_tls_cert_file;
  std::string cluster_tls_key_file;
  std::string cluster_tls_ca_file;
  std::string cluster_tls_server_name = "mqttd-cluster";  // the DNS SAN every node's cert has
  // TLS (mqtts, wss listeners) and WebSocket (ws, wss) settings, for every such listener.
  std::string tls_cert_file;  // PEM certificate chain
  std::string tls_key_file;   // PEM private key
  std::string tls_ca_file;    // PEM CAs for client certificates
  bool tls_require_client_cert = false;
  std::string tls_username_from_cert = "none";  // none, cn or san
  std::string tls_min_version = "1.2";          // 1.2 or 1.3
  std::string tls_ciphers;                      // TLS 1.2 cipher list; empty: OpenSSL's
  std::string tls_ciphersuites;                 // TLS 1.3 ciphersuites; empty: OpenSSL's
  std::string tls_groups;                       // key exchange groups; empty: OpenSSL's
  uint32_t tls_handshake_timeout = 10;          // seconds for the TLS and WebSocket handshakes
  uint32_t tls_reload_interval = 0;             // seconds between certificate mtime checks; 0: off
  std::string ws_path = "/mqtt";
  // HTTP server: /healthz, /readyz, /metrics (node/http). Empty: none.
  std::string http_listen = "0.0.0.0:8080";  // HOST:PORT; port 0 picks a free port
  std::string http_api_key_file;      // one API key per line; empty: no HTTP API (node/http/api.h)
  std::string http_basic_auth_file;   // users for HTTP basic auth, Mosquitto password format
  uint32_t sys_interval = 10;         // seconds between $SYS rounds (node/sys); 0: none
  uint32_t shutdown_timeout = 60;     // seconds a drain (SIGTERM, mqttctl drain) may take
  std::string server_reference;       // 5.0 Server Reference sent with DISCONNECT 0x9C on a drain
  std::vector<BridgeConfig> bridges;  // config file only (issue 16)
  // Command line only: what to do instead of running, and how to read the environment.
  bool help = false;
  bool print_config = false;             // print ConfigToYaml() and exit
  bool print_config_reference = false;   // print ConfigReference() and exit (hidden)
  bool strict_env = false;               // an MQTTD_* variable that is no key is an error
  std::vector<std::string> ignored_env;  // MQTTD_* variables that are no key (not strict)

  bool operator==(const Config&) const = default;
};

// Parses argv (argv[0] is the program) and the process environment: reads `--config FILE`,
// then the MQTTD_* variables, then the other flags.
absl::StatusOr<Config> ParseCommandLine(int argc, const char* const* argv);
// The same with the environment given as a null-terminated array of "NAME=VALUE" (as environ);
// `envp` may be null (no variables).
absl::StatusOr<Config> ParseCommandLine(int argc, const char* const* argv, const char* const* envp);

// Applies the YAML text of a config file over `config`; `file_name` is for error messages only.
// An empty file (or one of comments only) changes nothing.
absl::Status ParseConfigText(absl::string_view text, absl::string_view file_name, Config* config);

// The configuration as a YAML config file in the documented layout, every key present, secrets
// replaced by "********" (--print-config). Parsing it back gives `config` (secrets aside).
std::string ConfigToYaml(const Config& config);

// The --help text: every option with its default, meaning and key path.
std::string HelpText();

// The key tables of docs/configuration.md, in Markdown (--print-config-reference).
std::string ConfigReference();

}  // namespace mqtt
