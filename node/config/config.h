// SPDX-License-Identifier: Apache-2.0
// Node configuration: one table of options, read from the command line and from a config file.
//
// Contract: every option has one name, used as `--name VALUE` on the command line and as
// `name VALUE` (or `name = VALUE`) on a line of the config file. Command-line values override
// the file's, whatever their order. A bad option or value is an error naming it (and the file
// and line); nothing starts with a half-read configuration.
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
  uint16_t port = 0;  // 0: pick a free port (reported on the ready line)
};

struct Config {
  std::vector<ListenAddress> listeners;  // MQTT over TCP; default 0.0.0.0:1883
  std::string data_dir = "./data";
  std::string node_id;  // default: the host name
  LogLevel log_level = LogLevel::kInfo;
  uint32_t workers = 0;                    // 0: one per core
  uint32_t max_inflight = 20;              // outbound QoS 1/2 messages awaiting ack, per client
  uint32_t max_queued_messages = 1000;     // per client, behind the inflight window
  uint32_t max_packet_size = 1024 * 1024;  // bytes, whole packet, inbound
  uint32_t max_outbound_buffer = 4 * 1024 * 1024;  // bytes of unwritten output before QoS 0 drops
  uint32_t max_queued_bytes = 64 * 1024 * 1024;    // per client, topic + payload; 0 = no limit
  bool queue_qos0_offline = false;
  uint32_t connect_timeout_seconds = 10;  // time allowed between accept and CONNECT
  uint32_t receive_maximum = 1024;        // 5.0: inbound unacknowledged QoS 2 per client
  uint32_t topic_alias_maximum = 64;      // 5.0: inbound topic aliases per connection
  uint32_t max_keep_alive = 65535;        // 5.0: larger (or 0) client values are capped
  std::string shared_subscription_strategy = "round_robin";
  bool shared_subscription_prefer_local = false;  // cluster: an online local member first
  std::string auth_hmac_secret;  // enables the HMAC-SHA256-CHALLENGE enhanced auth method
  bool fsync = false;            // fsync each storage write (power-loss durability)
  bool persistence = true;       // keep persistent sessions and retained messages in RocksDB
  uint32_t storage_wal_budget = 64 * 1024 * 1024;  // bytes of RocksDB WAL (and memtables)
  // Cluster (issue 11). Without cluster_listen the node runs alone.
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
  uint32_t cluster_bootstrap_expect = 1;  // members a pristine registry waits for to bootstrap
  bool cluster_allow_register_during_netsplit = false;  // availability over one-session-per-id
  bool help = false;
};

// Parses argv (argv[0] is the program). `--config FILE` is read first, then the other flags.
absl::StatusOr<Config> ParseCommandLine(int argc, const char* const* argv);

// Parses the text of a config file; `file_name` is used in error messages only.
absl::Status ParseConfigText(absl::string_view text, absl::string_view file_name, Config* config);

// The --help text: every option with its default and meaning.
std::string HelpText();

}  // namespace mqtt
