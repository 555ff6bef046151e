// SPDX-License-Identifier: Apache-2.0
// /metrics: every metric mqttd exports, declared in one place (RenderMetrics) and read at scrape
// time from the sources below, which the node fills in (node/http/node_sources.h). Nothing here
// is on the publish path: a per-worker hot-path counter is added as one more source.
//
// Threading: RenderMetrics runs on the HTTP server's thread; every source must be safe to call
// from any thread. A null source leaves its metrics out (no store, not clustered).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "node/base/latency_histogram.h"

namespace mqtt::http {

struct StoreFigures {  // storage::StoreStats
  uint64_t messages = 0;
  uint64_t queue_entries = 0;
  uint64_t batches = 0;
  uint64_t write_groups = 0;
  uint64_t bytes_written = 0;
  uint64_t synced_write_groups = 0;
};

struct DiskFigures {  // storage::DiskWatermark
  bool exceeded = false;
  uint64_t available_bytes = 0;
};

struct TrafficFigures {  // session/worker_counters.h TrafficTotals, summed over workers
  uint64_t messages_received[3] = {0, 0, 0};  // by QoS
  uint64_t messages_sent[3] = {0, 0, 0};
  uint64_t bytes_received = 0;
  uint64_t bytes_sent = 0;
  // Messages not delivered to a client, by reason (session/worker_counters.h DropReasonName).
  std::map<std::string, uint64_t> dropped;
  uint64_t throttled_message_rate = 0;  // reading paused: limits.message_rate
  uint64_t throttled_byte_rate = 0;     // reading paused: limits.byte_rate
};

struct ListenerFigures {  // net::ConnectionGate
  std::string name;       // "mqtt 0.0.0.0:1883"
  uint64_t open = 0;
  uint64_t refused_max_connections = 0;
  uint64_t refused_rate = 0;
};

struct BridgeFigures {  // node/bridge BridgeStats
  std::string name;
  bool connected = false;
  uint64_t connects = 0;
  uint64_t sent = 0;
  uint64_t received = 0;
};

struct PeerOutboxFigures {  // cluster::ForwardPeerStats
  std::string node_id;
  bool connected = false;
  uint64_t queued = 0;
  uint64_t queued_bytes = 0;
  uint64_t durable_queued = 0;
  uint64_t forwarded = 0;
  uint64_t dropped = 0;
  uint64_t held_acks = 0;
  uint64_t dropped_full = 0;  // of dropped: outbox full
};

struct RegistryFigures {  // cluster::Registry
  bool leader_known = false;
  bool is_leader = false;
  uint64_t entries_applied = 0;
  uint64_t entries_proposed = 0;
  uint64_t snapshots_taken = 0;
  uint64_t snapshots_restored = 0;
};

struct StorageDbFigures {  // storage::DbFigures
  uint64_t estimate_keys = 0;
  uint64_t sst_bytes = 0;
  uint64_t live_sst_bytes = 0;
  uint64_t memtable_bytes = 0;
  uint64_t pending_compaction_bytes = 0;
  uint64_t wal_bytes = 0;
};

// Connections by listener (tcp, tls, ws, wss) and protocol level - 3 (3.1, 3.1.1, 5.0), summed
// over workers: accepted CONNECTs since start, and those of them that ended.
struct ConnectionFigures {
  uint64_t opened[4][3] = {};
  uint64_t closed[4][3] = {};
};

struct SessionFigures {  // session/worker_counters.h SessionGauges, summed over workers
  uint64_t sessions = 0;
  uint64_t queued = 0;
  uint64_t inflight = 0;
};

struct MetricSources {
  std::string version;
  absl::Time started_at = absl::Now();
  std::function<bool()> ready;  // /readyz's answer
  std::function<uint64_t()> clients_connected;
  std::function<uint64_t()> subscriptions;
  std::function<uint64_t()> retained_messages;
  std::function<TrafficFigures()> traffic;  // relaxed reads of per-worker counters
  std::function<StoreFigures()> store;
  std::function<DiskFigures()> disk;  // null: no watermark (no store, or min_free_disk 0)
  std::function<std::map<std::string, uint64_t>()> members_by_state;  // "alive" -> 2, this node too
  std::function<std::vector<PeerOutboxFigures>()> outboxes;
  std::function<std::vector<BridgeFigures>()> bridges;  // node/bridge; null: none
  std::function<uint64_t()> forward_duplicates_dropped;
  std::function<RegistryFigures()> registry;
  std::function<std::vector<ListenerFigures>()> listeners;
  // Histograms, merged over their owners (workers) at scrape.
  std::function<LatencySnapshot(uint8_t qos)> ack_latency;  // qos 1 (PUBACK) or 2 (PUBCOMP)
  std::function<LatencySnapshot()> forward_latency;
  std::function<LatencySnapshot()> storage_write_latency;
  std::function<StorageDbFigures()> storage_db;  // RocksDB properties, read at scrape
  std::function<ConnectionFigures()> connections;
  std::function<SessionFigures()> sessions;
  std::function<uint64_t()> cluster_routes;  // remote routes this node knows
};

// The Prometheus text exposition (version 0.0.4) of every metric whose source is set.
std::string RenderMetrics(const MetricSources& sources, absl::Time now = absl::Now());

inline constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace mqtt::http
