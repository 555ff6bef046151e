// SPDX-License-Identifier: Apache-2.0
// The option table: for each option its flag, YAML key path, help text and value binding. The
// readers (command line, environment, YAML) and writers (--help, --print-config, the
// reference) all walk this one table, so they cannot drift apart.
#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "node/base/host_port.h"
#include "node/config/option_table.h"

namespace mqtt::config_internal {
namespace {

using Items = std::vector<std::string>;

absl::Status ParseUint(absl::string_view value, uint32_t min, uint32_t max, uint32_t* out) {
  uint64_t parsed;
  if (!absl::SimpleAtoi(value, &parsed)) {
    return absl::InvalidArgumentError(
        absl::StrCat("must be an integer between ", min, " and ", max, ", not '", value, "'"));
  }
  if (parsed < min || parsed > max) {
    return absl::InvalidArgumentError(absl::StrCat("must be between ", min, " and ", max));
  }
  *out = static_cast<uint32_t>(parsed);
  return absl::OkStatus();
}

absl::Status ParseBool(absl::string_view value, bool* out) {
  std::string lower = absl::AsciiStrToLower(value);
  if (lower == "true" || lower == "on" || lower == "1") {
    *out = true;
  } else if (lower == "false" || lower == "off" || lower == "0") {
    *out = false;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("must be true or false, not '", value, "'"));
  }
  return absl::OkStatus();
}

// HOST:PORT (node/base/host_port.h) with a non-empty host and a port from 1 (0 if
// `port_zero`) to 65535. The value is kept as written: peers and libraft are given it as is.
absl::Status CheckHostPort(absl::string_view value, bool port_zero) {
  if (!ParseHostPort(value, {.allow_port_zero = port_zero}).ok()) {
    return absl::InvalidArgumentError(absl::StrCat("'", value, "' is not HOST:PORT with a port in ",
                                                   port_zero ? 0 : 1, "..65535"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseBoolText(absl::string_view value, bool* out) { return ParseBool(value, out); }
absl::Status ParseUintText(absl::string_view value, uint32_t min, uint32_t max, uint32_t* out) {
  return ParseUint(value, min, max, out);
}

// [HOST]:PORT for a listener: an empty host is 0.0.0.0; port 0 picks a free port.
absl::Status ParseListen(absl::string_view value, ListenAddress* out) {
  absl::StatusOr<HostPort> parsed =
      ParseHostPort(value, {.allow_empty_host = true, .allow_port_zero = true});
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("'", value, "' is not HOST:PORT"));
  }
  *out = {parsed->host.empty() ? "0.0.0.0" : std::move(parsed->host), parsed->port};
  return absl::OkStatus();
}

std::string FormatListen(const ListenAddress& address) {
  return JoinHostPort(address.host, address.port);
}

namespace {

Binding Uint(uint32_t Config::*field, uint32_t min, uint32_t max) {
  return {Kind::kScalar, absl::StrCat("integer, ", min, "..", max),
          [=](absl::string_view v, Config* c) { return ParseUint(v, min, max, &(c->*field)); },
          nullptr, [=](const Config& c) { return Items{absl::StrCat(c.*field)}; }};
}

Binding Bool(bool Config::*field) {
  return {Kind::kScalar, "boolean",
          [=](absl::string_view v, Config* c) { return ParseBool(v, &(c->*field)); }, nullptr,
          [=](const Config& c) { return Items{c.*field ? "true" : "false"}; }};
}

// A string that must not be empty.
Binding Text(std::string Config::*field) {
  return {Kind::kScalar, "string",
          [=](absl::string_view v, Config* c) {
            if (v.empty()) return absl::InvalidArgumentError("must not be empty");
            c->*field = std::string(v);
            return absl::OkStatus();
          },
          nullptr, [=](const Config& c) { return Items{c.*field}; }};
}

// A string that may be empty (a path, a secret, an OpenSSL list; empty: none or the default).
// A secret is masked by the option's kSecret trait, not by its binding.
Binding OptionalText(std::string Config::*field) {
  Binding b = Text(field);
  b.set = [=](absl::string_view v, Config* c) {
    c->*field = std::string(v);
    return absl::OkStatus();
  };
  return b;
}

// cluster.name: 1 to 64 characters of [A-Za-z0-9._-], so that it reads the same in logs, in a
// YAML file and in a Kubernetes name (the chart sets the release's full name).
Binding ClusterName(std::string Config::*field) {
  constexpr size_t kMaxLength = 64;
  return {Kind::kScalar, "string, 1..64 of A-Z a-z 0-9 . _ -",
          [=](absl::string_view v, Config* c) {
            const bool valid = !v.empty() && v.size() <= kMaxLength &&
                               std::all_of(v.begin(), v.end(), [](char ch) {
                                 return absl::ascii_isalnum(static_cast<unsigned char>(ch)) ||
                                        ch == '.' || ch == '_' || ch == '-';
                               });
            if (!valid) {
              return absl::InvalidArgumentError(absl::StrCat(
                  "must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-', not '", v, "'"));
            }
            c->*field = std::string(v);
            return absl::OkStatus();
          },
          nullptr, [=](const Config& c) { return Items{c.*field}; }};
}

// HOST:PORT, or empty for none.
Binding Address(std::string Config::*field, bool port_zero) {
  return {Kind::kScalar, port_zero ? "HOST:PORT (port 0: any free port)" : "HOST:PORT",
          [=](absl::string_view v, Config* c) {
            if (v.empty()) {
              (c->*field).clear();
              return absl::OkStatus();
            }
            if (absl::Status s = CheckHostPort(v, port_zero); !s.ok()) return s;
            c->*field = std::string(v);
            return absl::OkStatus();
          },
          nullptr, [=](const Config& c) { return Items{c.*field}; }};
}

Binding OneOf(std::string Config::*field, std::vector<std::string> names) {
  std::string list = absl::StrJoin(names, ", ");
  return {Kind::kScalar, absl::StrCat("one of ", list),
          [=](absl::string_view v, Config* c) {
            if (std::find(names.begin(), names.end(), v) == names.end()) {
              return absl::InvalidArgumentError(
                  absl::StrCat("must be one of ", list, ", not '", v, "'"));
            }
            c->*field = std::string(v);
            return absl::OkStatus();
          },
          nullptr, [=](const Config& c) { return Items{c.*field}; }};
}

// storage.min_free_disk: N% of the file system, or BYTES with an optional KiB, MiB, GiB or TiB
// suffix; 0 turns the watermark off.
absl::Status ParseMinFreeDisk(absl::string_view v, Config* c) {
  uint32_t percent = 0;
  if (absl::ConsumeSuffix(&v, "%")) {
    if (!ParseUint(v, 0, 100, &percent).ok()) {
      return absl::InvalidArgumentError("a percentage must be between 0% and 100%");
    }
    c->min_free_disk_percent = percent;
    c->min_free_disk_bytes = 0;
    return absl::OkStatus();
  }
  static constexpr std::pair<const char*, uint64_t> kUnits[] = {
      {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}, {"TiB", 1ull << 40}};
  uint64_t unit = 1;
  for (const auto& [suffix, size] : kUnits) {
    if (absl::ConsumeSuffix(&v, suffix)) unit = size;
  }
  uint64_t n = 0;
  if (!absl::SimpleAtoi(v, &n) || n > (1ull << 50) / unit) {
    return absl::InvalidArgumentError(
        "must be N% or BYTES (an integer, optionally with KiB, MiB, GiB or TiB)");
  }
  c->min_free_disk_bytes = n * unit;
  c->min_free_disk_percent = 0;
  return absl::OkStatus();
}

Binding MinFreeDisk() {
  return {Kind::kScalar, "N% or BYTES (KiB, MiB, GiB, TiB suffixes)", ParseMinFreeDisk, nullptr,
          [](const Config& c) {
            return Items{c.min_free_disk_percent != 0 ? absl::StrCat(c.min_free_disk_percent, "%")
                                                      : absl::StrCat(c.min_free_disk_bytes)};
          }};
}

Binding Level() {
  static const char* kNames[] = {"debug", "info", "warn", "error"};
  return {Kind::kScalar, "one of debug, info, warn, error",
          [](absl::string_view v, Config* c) {
            if (!ParseLogLevel(std::string_view(v.data(), v.size()), &c->log_level)) {
              return absl::InvalidArgumentError(
                  absl::StrCat("must be one of debug, info, warn, error, not '", v, "'"));
            }
            return absl::OkStatus();
          },
          nullptr, [](const Config& c) { return Items{kNames[static_cast<int>(c.log_level)]}; }};
}

Binding Seeds() {
  return {Kind::kList, "list of HOST:PORT",
          [](absl::string_view v, Config* c) {
            if (absl::Status s = CheckHostPort(v, /*port_zero=*/false); !s.ok()) return s;
            c->join.emplace_back(v);
            return absl::OkStatus();
          },
          [](Config* c) { c->join.clear(); }, [](const Config& c) { return c.join; }};
}

// A list of node ids.
Binding NodeIds(std::vector<std::string> Config::*field) {
  return {Kind::kList, "list of node ids",
          [=](absl::string_view v, Config* c) {
            if (v.empty()) return absl::InvalidArgumentError("empty node id");
            (c->*field).emplace_back(v);
            return absl::OkStatus();
          },
          [=](Config* c) { (c->*field).clear(); }, [=](const Config& c) { return c.*field; }};
}

Binding Listeners() {
  return {Kind::kListeners,
          "list of {protocol: mqtt|mqtts|ws|wss, address: HOST:PORT, ...}",
          [](absl::string_view v, Config* c) {
            ListenAddress address;
            if (absl::Status s = ParseListen(v, &address); !s.ok()) return s;
            c->listeners.push_back(address);
            return absl::OkStatus();
          },
          [](Config* c) { c->listeners.clear(); },  // --listen: the mqtt listeners only
          [](const Config& c) {
            Items items;
            for (const ListenAddress& a : c.listeners) items.push_back(FormatListen(a));
            return items;
          },
          /*min_items=*/1};
}

// Addresses of TLS or WebSocket listeners of one protocol (command line only: in the file they
// are items of `listeners`). A source that sets them replaces that protocol's listeners only.
Binding SecureListeners(const char* protocol) {
  return {Kind::kList, "list of HOST:PORT",
          [=](absl::string_view v, Config* c) {
            SecureListener listener;
            listener.protocol = protocol;
            if (absl::Status s = ParseListen(v, &listener.address); !s.ok()) return s;
            c->secure_listeners.push_back(listener);
            return absl::OkStatus();
          },
          [=](Config* c) {
            std::erase_if(c->secure_listeners,
                          [&](const SecureListener& l) { return l.protocol == protocol; });
          },
          [=](const Config& c) {
            Items items;
            for (const SecureListener& l : c.secure_listeners) {
              if (l.protocol == protocol) items.push_back(FormatListen(l.address));
            }
            return items;
          }};
}

// The YAML `bridges` list (yaml.cc reads and writes the maps); no flag or variable syntax.
Binding Bridges() {
  return {Kind::kBridges, "list of bridge maps (docs/bridges.md)",
          [](absl::string_view, Config*) {
            return absl::InvalidArgumentError(
                "bridges are set in the config file only (docs/bridges.md)");
          },
          [](Config* c) { c->bridges.clear(); },
          [](const Config& c) {
            Items names;
            for (const BridgeConfig& b : c.bridges) names.push_back(b.name);
            return names;
          }};
}

// A boolean that is also a switch on the command line (--flag alone means true).
Binding SwitchOrBool(bool Config::*field) {
  Binding b = Bool(field);
  b.set = [=](absl::string_view v, Config* c) {
    if (v.empty()) {
      c->*field = true;
      return absl::OkStatus();
    }
    return ParseBool(v, &(c->*field));
  };
  return b;
}

// A command-line switch without a value.
Binding Switch(bool Config::*field) {
  return {Kind::kScalar, "",
          [=](absl::string_view, Config* c) {
            c->*field = true;
            return absl::OkStatus();
          },
          nullptr, nullptr};
}

std::vector<Option> MakeOptions() {
  return {
      {"config", nullptr, "FILE",
       "read options from the YAML FILE (docs/configuration.md); the environment and flags "
       "override it",
       Binding()},  // read first, by ParseCommandLine
      {"node-id", "node_id", "ID", "name of this node in logs and in a cluster",
       Text(&Config::node_id), "the host name"},
      {"data-dir", "data_dir", "DIR", "directory for persistent state", Text(&Config::data_dir)},
      {"log-level", "log.level", "LEVEL", "debug, info, warn or error", Level()},
      {"log-format", "log.format", "FORMAT",
       "text (TIME LEVEL MESSAGE key=value ...) or json (one object per line: ts, level, msg "
       "and the event's fields)",
       OneOf(&Config::log_format, {"text", "json"})},
      {"listen", "listeners", "HOST:PORT",
       "MQTT over TCP on HOST:PORT; repeatable (or comma-separated); port 0 picks a free port; "
       "in the file a list of {protocol, address} maps, protocol mqtt, mqtts (TLS), ws or wss "
       "(WebSocket), with per-listener keys (docs/security.md)",
       Listeners(), "0.0.0.0:1883"},
      {"tls-listen", nullptr, "HOST:PORT",
       "MQTT over TLS on HOST:PORT with the tls.* settings; repeatable (or comma-separated); in "
       "the file a listener {protocol: mqtts, address: HOST:PORT}",
       SecureListeners("mqtts")},
      {"ws-listen", nullptr, "HOST:PORT",
       "MQTT over WebSocket on HOST:PORT (path websocket.path); repeatable; in the file a "
       "listener {protocol: ws, address: HOST:PORT}",
       SecureListeners("ws")},
      {"wss-listen", nullptr, "HOST:PORT",
       "MQTT over WebSocket over TLS on HOST:PORT; repeatable; in the file a listener "
       "{protocol: wss, address: HOST:PORT}",
       SecureListeners("wss")},
      {"workers", "limits.workers", "N", "worker threads, each with its own event loop",
       Uint(&Config::workers, 1, 256), "one per core, at most 256"},
      {"idle-poll-us", "limits.idle_poll_us", "MICROSECONDS",
       "a busy worker (over 50,000 messages/s) that runs out of work polls this long for "
       "more before it sleeps, while polling finds work: a sleeping thread's wake-up costs "
       "tens of microseconds on virtual machines, the round trip of each QoS 1 exchange "
       "(docs/performance.md: 2-3 times the rate of a QoS 1/2 stream here); a busy worker "
       "then shows more CPU use; 0: never poll",
       Uint(&Config::idle_poll_us, 0, 10'000)},
      {"max-inflight", "limits.max_inflight", "N",
       "outbound QoS 1/2 messages sent to a client and not yet acknowledged",
       Uint(&Config::max_inflight, 1, 65535)},
      {"max-queued-messages", "limits.max_queued_messages", "N",
       "messages queued per client behind the inflight window; when full, a message is dropped "
       "as limits.queue_full_policy says",
       Uint(&Config::max_queued_messages, 1, 10'000'000)},
      {"max-queued-bytes", "limits.max_queued_bytes", "BYTES",
       "topic + payload bytes queued per client (memory and disk); when full, messages are "
       "dropped as limits.queue_full_policy says; 0 = no limit",
       Uint(&Config::max_queued_bytes, 0, 4'000'000'000u)},
      {"queue-full-policy", "limits.queue_full_policy", "POLICY",
       "which message a full queue drops: drop_newest (the one arriving; what is queued keeps "
       "its order) or drop_oldest (the oldest queued ones, as EMQX does); counted in "
       "mqttd_messages_dropped_total{reason=\"queue_full\"}",
       OneOf(&Config::queue_full_policy, {"drop_newest", "drop_oldest"})},
      {"queue-qos0-offline", "limits.queue_qos0_offline", "true|false",
       "queue QoS 0 messages for offline persistent sessions (on disk) instead of dropping them",
       Bool(&Config::queue_qos0_offline)},
      {"max-packet-size", "limits.max_packet_size", "BYTES",
       "largest packet accepted from a client; a bigger one closes the connection (5.0: "
       "DISCONNECT 0x95); a client can make the node hold this much for a packet it is sending",
       Uint(&Config::max_packet_size, 64, 268'435'460)},
      {"max-outbound-buffer", "limits.max_outbound_buffer", "BYTES",
       "unwritten bytes per connection beyond which QoS 0 messages to it are dropped",
       Uint(&Config::max_outbound_buffer, 4096, 1u << 30)},
      {"max-connections", "limits.max_connections", "N",
       "connections open at once per listener (a listener's own max_connections overrides it); "
       "beyond it an accepted socket is closed at once, counted in "
       "mqttd_connections_refused_total{reason=\"max_connections\"}; 0 = no limit but the "
       "process's file descriptors",
       Uint(&Config::max_connections, 0, 10'000'000)},
      {"connection-rate", "limits.connection_rate", "N",
       "connections accepted per second per listener (token bucket, burst of one second); an "
       "excess socket is closed at once, counted in "
       "mqttd_connections_refused_total{reason=\"connection_rate\"}; 0 = no limit",
       Uint(&Config::connection_rate, 0, 1'000'000)},
      {"message-rate", "limits.message_rate", "N",
       "PUBLISH packets read per second from one client (token bucket, burst of one second): "
       "beyond it the node stops reading that socket until tokens are back, so the client slows "
       "down and nothing is dropped; counted in mqttd_clients_throttled_total; 0 = no limit",
       Uint(&Config::message_rate, 0, 10'000'000)},
      {"byte-rate", "limits.byte_rate", "BYTES",
       "bytes read per second from one client, as message_rate (a larger packet is let through "
       "and paid for afterwards); 0 = no limit",
       Uint(&Config::byte_rate, 0, 4'000'000'000u)},
      {"connect-timeout", "limits.connect_timeout", "SECONDS",
       "time a new connection has to send CONNECT",
       Uint(&Config::connect_timeout_seconds, 1, 3600)},
      {"receive-maximum", "limits.receive_maximum", "N",
       "5.0 Receive Maximum advertised: unacknowledged inbound QoS 2 messages per client",
       Uint(&Config::receive_maximum, 1, 65535)},
      {"topic-alias-maximum", "limits.topic_alias_maximum", "N",
       "5.0 topic aliases a client may set (0 = none)",
       Uint(&Config::topic_alias_maximum, 0, 65535)},
      {"max-keep-alive", "limits.max_keep_alive", "SECONDS",
       "5.0: a larger or zero client keep alive is replaced by this (Server Keep Alive); 65535 = "
       "no cap",
       Uint(&Config::max_keep_alive, 1, 65535)},
      {"max-session-expiry", "limits.max_session_expiry", "SECONDS",
       "longest a persistent session outlives its connection: a 3.x Clean Session 0 session "
       "ends this long after its client left, a 5.0 client's Session Expiry Interval is capped "
       "to it (and told in CONNACK); 4294967295: never (Mosquitto's default)",
       Uint(&Config::max_session_expiry, 1, 0xFFFFFFFF)},
      {"shared-subscription-strategy", "shared_subscriptions.strategy", "NAME",
       "member choice in a shared group: round_robin, random, sticky, hash_clientid, hash_topic",
       OneOf(&Config::shared_subscription_strategy,
             {"round_robin", "random", "sticky", "hash_clientid", "hash_topic"})},
      {"shared-subscription-prefer-local", "shared_subscriptions.prefer_local", "true|false",
       "in a cluster, a shared group picks an online member on the publisher's node when it has "
       "one, and a member on another node only otherwise (false: the strategy spreads over "
       "every member cluster-wide)",
       Bool(&Config::shared_subscription_prefer_local)},
      {"auth-hmac-secret", "auth.hmac_secret", "SECRET",
       "enable 5.0 enhanced authentication method HMAC-SHA256-CHALLENGE with this shared secret "
       "(prefer the config file or the environment to the command line for secrets)",
       OptionalText(&Config::auth_hmac_secret), nullptr, kSecret},
      {"password-file", "auth.password_file", "FILE",
       "password file in Mosquitto's format (mosquitto_passwd, mqttctl passwd); re-read on SIGHUP",
       OptionalText(&Config::password_file)},
      {"acl-file", "auth.acl_file", "FILE",
       "ACL file in Mosquitto's syntax plus client and address sections (docs/security.md); "
       "re-read on SIGHUP",
       OptionalText(&Config::acl_file)},
      {"auth-reload-interval", "auth.reload_interval", "SECONDS",
       "check the password and ACL files' modification time, size and inode this often and "
       "reload them when changed (Kubernetes Secret updates; a bad new file keeps the old one); "
       "0: only on SIGHUP",
       Uint(&Config::auth_reload_interval, 0, 86400)},
      {"allow-anonymous", "auth.allow_anonymous", "true|false|auto",
       "accept clients without a user name (auto: true without a password file, false with one)",
       OneOf(&Config::allow_anonymous, {"auto", "true", "false"})},
      {"persistence", "storage.persistence", "true|false",
       "keep persistent sessions, their queues and retained messages in RocksDB under data_dir",
       Bool(&Config::persistence)},
      {"fsync", "storage.fsync", "true|false",
       "fsync every storage write: survives power loss, not only a process kill",
       Bool(&Config::fsync)},
      {"storage-wal-budget", "storage.wal_budget", "BYTES",
       "write-ahead log (and memtable) budget of the store: disk use stays within live data plus "
       "a few times this (about once, measured), and a restart replays at most this much log",
       Uint(&Config::storage_wal_budget, 4u << 20, 4'000'000'000u)},
      {"min-free-disk", "storage.min_free_disk", "SIZE",
       "disk watermark: free space the data directory's file system keeps; below it new "
       "persistent sessions (5.0 CONNACK 0x97, 3.1.1 return code 3) and QoS 1/2 messages that "
       "would be stored (5.0 0x97; 3.1.1: the connection is closed) are refused, the rest goes "
       "on (docs/security.md); checked every 5 s; 0: off",
       MinFreeDisk()},
      {"cluster-name", "cluster.name", "NAME",
       "name of the cluster this node belongs to: a peer of another cluster (a wrong seed, an "
       "address reused by another cluster) is refused instead of merged; the same on every node",
       ClusterName(&Config::cluster_name)},
      {"cluster-listen", "cluster.listen", "HOST:PORT",
       "gRPC address for peer nodes and mqttctl; without it the node runs alone",
       Address(&Config::cluster_listen, /*port_zero=*/true)},
      {"cluster-advertise", "cluster.advertise", "HOST:PORT",
       "address peers use to reach this node (NAT, Kubernetes)",
       Address(&Config::cluster_advertise, /*port_zero=*/false), "the cluster.listen address"},
      {"join", "cluster.join", "HOST:PORT,...",
       "seed nodes to join, retried with backoff until one answers", Seeds()},
      {"join-dns", "cluster.join_dns", "NAME:PORT",
       "every address NAME resolves to is a seed (a Kubernetes headless Service)",
       Address(&Config::join_dns, /*port_zero=*/false)},
      {"cluster-remove-after", "cluster.remove_after", "SECONDS",
       "a dead member is forgotten after this long",
       Uint(&Config::cluster_remove_after, 1, 30 * 24 * 3600)},
      {"cluster-probe-interval", "cluster.probe_interval_ms", "MS",
       "membership: one member is probed per interval",
       Uint(&Config::cluster_probe_interval_ms, 10, 60000)},
      {"cluster-suspect-timeout", "cluster.suspect_timeout_ms", "MS",
       "membership: a suspected member not heard from within this is declared dead",
       Uint(&Config::cluster_suspect_timeout_ms, 50, 600000)},
      {"cluster-sync-timeout", "cluster.sync_timeout", "SECONDS",
       "at start-up, wait at most this long to join and hold the peers' routes before taking "
       "clients",
       Uint(&Config::cluster_sync_timeout, 0, 3600)},
      {"cluster-outbox-messages", "cluster.outbox_messages", "N",
       "messages forwarded to one peer and not yet acknowledged, at most; more are dropped and "
       "logged",
       Uint(&Config::cluster_outbox_messages, 1, 100'000'000)},
      {"cluster-outbox-bytes", "cluster.outbox_bytes", "BYTES",
       "bytes of messages forwarded to one peer and not yet acknowledged, at most",
       Uint(&Config::cluster_outbox_bytes, 4096, 4'000'000'000u)},
      {"cluster-raft-listen", "cluster.raft_listen", "HOST:PORT",
       "address of the client-id registry's Raft port, also what peers dial",
       Address(&Config::cluster_raft_listen, /*port_zero=*/true),
       "the cluster.listen address with port + 1"},
      {"cluster-bootstrap-members", "cluster.bootstrap_members", "ID,...",
       "the nodes that form the client-id registry when the cluster first starts (1, 3 or 5; "
       "every node must be given the same list); empty: a node without seeds forms it alone and "
       "the others join it",
       NodeIds(&Config::cluster_bootstrap_members)},
      {"cluster-allow-register-during-netsplit", "cluster.allow_register_during_netsplit",
       "true|false",
       "take CONNECTs on a side of a partition without a registry majority (two sessions with one "
       "client id may then live until the partition heals) instead of refusing them",
       Bool(&Config::cluster_allow_register_during_netsplit)},
      {"cluster-tls-cert", "cluster.tls.cert_file", "FILE",
       "mutual TLS on the cluster port: this node's PEM certificate (then its chain), issued by "
       "the cluster CA with a DNS SAN of cluster.tls.server_name; with key_file and ca_file "
       "(all three or none); re-read every minute",
       OptionalText(&Config::cluster_tls_cert_file)},
      {"cluster-tls-key", "cluster.tls.key_file", "FILE",
       "PEM private key of cluster.tls.cert_file", OptionalText(&Config::cluster_tls_key_file)},
      {"cluster-tls-ca", "cluster.tls.ca_file", "FILE",
       "PEM cluster CA: peers and mqttctl must present a certificate it issued",
       OptionalText(&Config::cluster_tls_ca_file)},
      {"cluster-tls-server-name", "cluster.tls.server_name", "NAME",
       "the name each node's certificate is verified against (whatever address was dialled)",
       Text(&Config::cluster_tls_server_name)},
      {"http-listen", "http.listen", "HOST:PORT",
       "HTTP server for /healthz, /readyz and /metrics (Prometheus); HOST an IP address; port 0 "
       "picks a free port (reported on the ready line); empty: no HTTP server",
       Address(&Config::http_listen, /*port_zero=*/true)},
      {"http-api-key-file", "http.api_key_file", "FILE",
       "enable the HTTP API (/api/v1/, docs/http-api.yaml) for requests with 'Authorization: "
       "Bearer KEY', KEY one line of FILE; empty (and no basic auth file): the API answers 404",
       OptionalText(&Config::http_api_key_file)},
      {"http-basic-auth-file", "http.basic_auth_file", "FILE",
       "enable the HTTP API for requests with 'Authorization: Basic ...' of a user of FILE, a "
       "password file in Mosquitto's format (mosquitto_passwd, mqttctl passwd; read at start)",
       OptionalText(&Config::http_basic_auth_file)},
      {"tls-cert", "tls.cert_file", "FILE",
       "PEM certificate (then its chain) of the TLS listeners; a listener's cert_file overrides it",
       OptionalText(&Config::tls_cert_file)},
      {"tls-key", "tls.key_file", "FILE", "PEM private key of the TLS listeners",
       OptionalText(&Config::tls_key_file)},
      {"tls-ca", "tls.ca_file", "FILE",
       "PEM CA certificates that client certificates are verified against; with it a client "
       "certificate is verified when sent",
       OptionalText(&Config::tls_ca_file)},
      {"tls-require-client-cert", "tls.require_client_cert", nullptr,
       "mutual TLS: refuse a handshake without a client certificate that verifies against "
       "tls.ca_file",
       SwitchOrBool(&Config::tls_require_client_cert)},
      {"tls-username-from-cert", "tls.username_from_cert", "SOURCE",
       "none, cn or san: the MQTT username of a client with a verified certificate is its "
       "subject CN or its first DNS/e-mail/URI subject alternative name",
       OneOf(&Config::tls_username_from_cert, {"none", "cn", "san"})},
      {"tls-min-version", "tls.min_version", "VERSION", "lowest TLS version accepted: 1.2 or 1.3",
       OneOf(&Config::tls_min_version, {"1.2", "1.3"})},
      {"tls-ciphers", "tls.ciphers", "LIST",
       "TLS 1.2 cipher list in OpenSSL syntax (ECDHE-ECDSA-AES128-GCM-SHA256:...)",
       OptionalText(&Config::tls_ciphers), "OpenSSL's default"},
      {"tls-ciphersuites", "tls.ciphersuites", "LIST",
       "TLS 1.3 ciphersuites (TLS_AES_128_GCM_SHA256:...)", OptionalText(&Config::tls_ciphersuites),
       "OpenSSL's default"},
      {"tls-groups", "tls.groups", "LIST", "key exchange groups (X25519:P-256:...)",
       OptionalText(&Config::tls_groups), "OpenSSL's default"},
      {"tls-handshake-timeout", "tls.handshake_timeout", "SECONDS",
       "time a TLS or WebSocket connection has for its TLS and HTTP Upgrade handshakes",
       Uint(&Config::tls_handshake_timeout, 1, 3600)},
      {"tls-reload-interval", "tls.reload_interval", "SECONDS",
       "check the certificate and key files' modification times this often and reload them when "
       "changed (Kubernetes Secret updates); 0: only on SIGHUP",
       Uint(&Config::tls_reload_interval, 0, 86400)},
      {"ws-path", "websocket.path", "PATH", "HTTP path of the WebSocket listeners",
       Text(&Config::ws_path)},
      {"sys-interval", "sys_interval", "SECONDS",
       "publish this node's $SYS topics (docs/sys-topics.md) every SECONDS, retained, to its own "
       "subscribers; 0: none",
       Uint(&Config::sys_interval, 0, 86400)},
      {"shutdown-timeout", "shutdown_timeout", "SECONDS",
       "SIGTERM, SIGINT and `mqttctl drain` stop accepting, disconnect the clients, hand the "
       "persistent sessions to other nodes (clustered) and exit within this time; what is not "
       "handed over by then stays in the data dir",
       Uint(&Config::shutdown_timeout, 1, 86400)},
      {"server-reference", "server_reference", "HOST[:PORT]",
       "sent to 5.0 clients disconnected by a shutdown or drain (DISCONNECT 0x9C Use another "
       "server with this Server Reference, e.g. the load balancer's address); empty: 0x8B Server "
       "shutting down",
       OptionalText(&Config::server_reference)},
      {"bridge", "bridges", "NAME",
       "connections to other MQTT brokers with Mosquitto's topic lines; config file only: a list "
       "of maps {name, addresses, protocol_version, client_id, username, password, tls, "
       "clean_session, session_expiry, keepalive, restart_timeout, try_private, topics} "
       "(docs/bridges.md)",
       Bridges(), "none"},
      {"strict-env", nullptr, nullptr,
       "make an MQTTD_* environment variable that is no key an error (otherwise it is ignored "
       "and listed by --print-config)",
       Switch(&Config::strict_env)},
      {"print-config", nullptr, nullptr,
       "print the effective configuration as a YAML config file (secrets masked) and exit",
       Switch(&Config::print_config)},
      {"print-config-reference", nullptr, nullptr,
       "print the key tables of docs/configuration.md and exit",
       Switch(&Config::print_config_reference), nullptr, kHidden},
      {"help", nullptr, nullptr, "print this help and exit", Switch(&Config::help)},
  };
}

}  // namespace

const std::vector<Option>& Options() {
  static const std::vector<Option>* options = new std::vector<Option>(MakeOptions());
  return *options;
}

const Option* FindByFlag(absl::string_view flag) {
  for (const Option& option : Options()) {
    if (flag == option.flag) return &option;
  }
  return nullptr;
}

const Option* FindByPath(absl::string_view path) {
  for (const Option& option : Options()) {
    if (option.path != nullptr && path == option.path) return &option;
  }
  return nullptr;
}

const Option* FindByEnvName(absl::string_view name) {
  for (const Option& option : Options()) {
    if (option.path != nullptr && name == EnvName(option)) return &option;
  }
  return nullptr;
}

bool IsSection(absl::string_view path) {
  for (const Option& option : Options()) {
    if (option.path != nullptr && absl::StartsWith(option.path, absl::StrCat(path, "."))) {
      return true;
    }
  }
  return false;
}

std::string EnvName(const Option& option) {
  return absl::StrCat(kEnvPrefix,
                      absl::AsciiStrToUpper(absl::StrReplaceAll(option.path, {{".", "_"}})));
}

absl::Status SetFromText(const Option& option, absl::string_view text, bool append,
                         Config* config) {
  if (option.value.kind == Kind::kScalar) return option.value.set(text, config);
  if (!append) option.value.clear(config);
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    if (absl::Status s = option.value.set(absl::StripAsciiWhitespace(item), config); !s.ok()) {
      return s;
    }
  }
  if (option.value.get(*config).size() < option.value.min_items) {
    return absl::InvalidArgumentError("needs at least one address");
  }
  return absl::OkStatus();
}

std::string DefaultText(const Option& option) {
  if (option.default_text != nullptr) return option.default_text;
  if (option.value.get == nullptr || (option.traits & kSecret)) return "none";
  Items items = option.value.get(Config{});
  if (option.value.kind != Kind::kScalar) return absl::StrCat("[", absl::StrJoin(items, ", "), "]");
  return items[0].empty() ? "none" : items[0];
}

}  // namespace mqtt::config_internal
