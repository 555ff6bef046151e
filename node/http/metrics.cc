// SPDX-License-Identifier: Apache-2.0
#include "node/http/metrics.h"

#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace mqtt::http {
namespace {

using Labels = std::map<std::string, std::string>;

// One scrape's registry: each family is declared where its value is set, with its HELP text.
class Scrape {
 public:
  void Gauge(const std::string& name, const std::string& help, double value,
             const Labels& labels = {}) {
    prometheus::BuildGauge().Name(name).Help(help).Register(registry_).Add(labels).Set(value);
  }
  // A monotonic figure the node keeps itself: exposed as a counter with its current value.
  void Counter(const std::string& name, const std::string& help, double value,
               const Labels& labels = {}) {
    prometheus::BuildCounter().Name(name).Help(help).Register(registry_).Add(labels).Increment(
        value);
  }
  // A histogram merged from its owners: `h` counts per bucket (kLatencyBounds, then +Inf).
  void Histogram(const std::string& name, const std::string& help, const LatencySnapshot& h,
                 const Labels& labels = {}) {
    static const prometheus::Histogram::BucketBoundaries kBounds(kLatencyBounds.begin(),
                                                                 kLatencyBounds.end());
    std::vector<double> increments(h.buckets.begin(), h.buckets.end());
    prometheus::BuildHistogram()
        .Name(name)
        .Help(help)
        .Register(registry_)
        .Add(labels, kBounds)
        .ObserveMultiple(increments, static_cast<double>(h.sum_ns) * 1e-9);
  }
  std::string Text() const { return prometheus::TextSerializer().Serialize(registry_.Collect()); }

 private:
  prometheus::Registry registry_;  // Merge: a second Register of a name returns the family
};

void AddNode(const MetricSources& s, absl::Time now, Scrape* out) {
  out->Gauge("mqttd_build_info", "Build of this mqttd (value 1; the version is a label).", 1,
             {{"version", s.version}});
  out->Gauge("mqttd_start_time_seconds", "When this process started, in Unix seconds.",
             absl::ToDoubleSeconds(s.started_at - absl::UnixEpoch()));
  out->Gauge("mqttd_uptime_seconds", "Seconds since this process started.",
             absl::ToDoubleSeconds(now - s.started_at));
  if (s.ready) out->Gauge("mqttd_ready", "1 when /readyz answers 200, else 0.", s.ready() ? 1 : 0);
  if (s.clients_connected) {
    out->Gauge("mqttd_clients_connected", "MQTT connections open on this node.",
               static_cast<double>(s.clients_connected()));
  }
  if (s.subscriptions) {
    out->Gauge("mqttd_subscriptions", "Subscriptions held by this node's sessions.",
               static_cast<double>(s.subscriptions()));
  }
  if (s.retained_messages) {
    out->Gauge("mqttd_retained_messages", "Retained messages held by this node.",
               static_cast<double>(s.retained_messages()));
  }
}

void AddTraffic(const TrafficFigures& f, Scrape* out) {
  for (int qos = 0; qos < 3; ++qos) {
    const Labels labels = {{"qos", std::to_string(qos)}};
    out->Counter("mqttd_messages_received_total", "PUBLISH packets received from clients.",
                 static_cast<double>(f.messages_received[qos]), labels);
    out->Counter("mqttd_messages_sent_total", "PUBLISH packets sent to clients (resends included).",
                 static_cast<double>(f.messages_sent[qos]), labels);
  }
  out->Counter("mqttd_clients_throttled_total",
               "Times reading from a client paused because it went over its rate, by limit.",
               static_cast<double>(f.throttled_message_rate), {{"limit", "message_rate"}});
  out->Counter("mqttd_clients_throttled_total",
               "Times reading from a client paused because it went over its rate, by limit.",
               static_cast<double>(f.throttled_byte_rate), {{"limit", "byte_rate"}});
  out->Counter("mqttd_bytes_received_total", "Bytes of MQTT packets received from clients.",
               static_cast<double>(f.bytes_received));
  out->Counter("mqttd_bytes_sent_total",
               "Bytes of PUBLISH, PUBACK and PUBREC packets sent to clients (other packet types "
               "are not counted).",
               static_cast<double>(f.bytes_sent));
}

// Every message a client did not get, by reason: the workers' counts, and the cluster's
// per-peer outboxes that were full (outbox_full, 0 on a node alone).
void AddDrops(const MetricSources& s, Scrape* out) {
  if (!s.traffic && !s.outboxes) return;
  std::map<std::string, uint64_t> dropped;
  if (s.traffic) dropped = s.traffic().dropped;
  uint64_t outbox_full = 0;
  if (s.outboxes) {
    for (const PeerOutboxFigures& p : s.outboxes()) outbox_full += p.dropped_full;
  }
  dropped["outbox_full"] = outbox_full;
  for (const auto& [reason, n] : dropped) {
    out->Counter("mqttd_messages_dropped_total",
                 "Messages not delivered to a client, by reason: queue_full (the session's queue "
                 "was full), outbound_buffer (QoS 0 to a client not reading), expired (5.0 "
                 "Message Expiry), acl (read denied), packet_too_large (above the client's "
                 "Maximum Packet Size), quota (disk watermark), outbox_full (a cluster peer's "
                 "outbox).",
                 static_cast<double>(n), {{"reason", reason}});
  }
}

void AddStore(const StoreFigures& f, Scrape* out) {
  out->Gauge("mqttd_store_messages", "Message records in the store.",
             static_cast<double>(f.messages));
  out->Gauge("mqttd_store_queue_entries",
             "Queued messages of persistent sessions in the store, over all clients.",
             static_cast<double>(f.queue_entries));
  out->Counter("mqttd_store_batches_total", "Write batches committed to the store.",
               static_cast<double>(f.batches));
  out->Counter("mqttd_store_write_groups_total",
               "RocksDB writes the committed batches took (batches are grouped).",
               static_cast<double>(f.write_groups));
  out->Counter("mqttd_store_synced_write_groups_total",
               "RocksDB writes that waited for fsync (--fsync true; a write that only removes "
               "acknowledged deliveries does not).",
               static_cast<double>(f.synced_write_groups));
  out->Counter("mqttd_store_written_bytes_total", "Bytes of committed write batches (~ WAL bytes).",
               static_cast<double>(f.bytes_written));
}

void AddListeners(const std::vector<ListenerFigures>& listeners, Scrape* out) {
  for (const ListenerFigures& l : listeners) {
    out->Gauge("mqttd_listener_connections", "MQTT connections open on the listener.",
               static_cast<double>(l.open), {{"listener", l.name}});
    for (const auto& [reason, n] :
         {std::pair<const char*, uint64_t>{"max_connections", l.refused_max_connections},
          {"connection_rate", l.refused_rate}}) {
      out->Counter("mqttd_connections_refused_total",
                   "Accepted sockets closed at once by the listener's limits, by reason.",
                   static_cast<double>(n), {{"listener", l.name}, {"reason", reason}});
    }
  }
}

void AddDisk(const DiskFigures& f, Scrape* out) {
  out->Gauge("mqttd_disk_watermark_exceeded",
             "1 while the data directory's free space is below storage.min_free_disk (new "
             "persistent sessions and stored QoS 1/2 messages are refused), else 0.",
             f.exceeded ? 1 : 0);
  out->Gauge("mqttd_disk_available_bytes",
             "Free bytes of the data directory's file system at the last watermark check.",
             static_cast<double>(f.available_bytes));
}

void AddBridges(const std::vector<BridgeFigures>& bridges, Scrape* out) {
  for (const BridgeFigures& b : bridges) {
    const Labels bridge = {{"bridge", b.name}};
    out->Gauge("mqttd_bridge_connected", "1 when the bridge is connected to its remote broker.",
               b.connected ? 1 : 0, bridge);
    out->Counter("mqttd_bridge_connects_total", "Successful connections of the bridge.",
                 static_cast<double>(b.connects), bridge);
    out->Counter("mqttd_bridge_messages_sent_total", "PUBLISH sent by the bridge to its remote.",
                 static_cast<double>(b.sent), bridge);
    out->Counter("mqttd_bridge_messages_received_total",
                 "PUBLISH received by the bridge from its remote.", static_cast<double>(b.received),
                 bridge);
  }
}

void AddCluster(const MetricSources& s, Scrape* out) {
  if (s.members_by_state) {
    std::map<std::string, uint64_t> counts = {
        {"alive", 0}, {"suspect", 0}, {"dead", 0}, {"left", 0}};
    for (const auto& [state, n] : s.members_by_state()) counts[state] = n;
    for (const auto& [state, n] : counts) {
      out->Gauge("mqttd_cluster_members",
                 "Cluster members this node knows, itself included, by state.",
                 static_cast<double>(n), {{"state", state}});
    }
  }
  if (s.outboxes) {
    for (const PeerOutboxFigures& p : s.outboxes()) {
      const Labels peer = {{"peer", p.node_id}};
      out->Gauge("mqttd_cluster_peer_connected", "1 when the forwarding stream to the peer is up.",
                 p.connected ? 1 : 0, peer);
      out->Gauge("mqttd_cluster_outbox_messages",
                 "Messages forwarded to the peer and not acknowledged yet.",
                 static_cast<double>(p.queued), peer);
      out->Gauge("mqttd_cluster_outbox_bytes", "Bytes of the messages in the peer's outbox.",
                 static_cast<double>(p.queued_bytes), peer);
      out->Gauge("mqttd_cluster_outbox_durable_messages",
                 "Messages of the peer's outbox written to the store.",
                 static_cast<double>(p.durable_queued), peer);
      out->Gauge("mqttd_cluster_outbox_held_acks",
                 "Publishers' acknowledgements waiting for the peer (congested outbox).",
                 static_cast<double>(p.held_acks), peer);
      out->Counter("mqttd_cluster_forwarded_messages_total",
                   "Messages forwarded to the peer and acknowledged by it.",
                   static_cast<double>(p.forwarded), peer);
      out->Counter("mqttd_cluster_forward_dropped_messages_total",
                   "Messages for the peer dropped (outbox full, or the peer was removed).",
                   static_cast<double>(p.dropped), peer);
    }
  }
  if (s.forward_duplicates_dropped) {
    out->Counter("mqttd_cluster_forward_duplicates_dropped_total",
                 "Forwarded messages received again (after a reconnect) and dropped.",
                 static_cast<double>(s.forward_duplicates_dropped()));
  }
}

void AddRegistry(const RegistryFigures& f, Scrape* out) {
  out->Gauge("mqttd_registry_leader_known",
             "1 when this node knows the client-id registry's leader.", f.leader_known ? 1 : 0);
  out->Gauge("mqttd_registry_is_leader", "1 when this node is the client-id registry's leader.",
             f.is_leader ? 1 : 0);
  out->Counter("mqttd_registry_entries_applied_total",
               "Client-id registry entries applied on this node.",
               static_cast<double>(f.entries_applied));
  out->Counter("mqttd_registry_entries_proposed_total",
               "Client-id registry entries proposed by this node as leader.",
               static_cast<double>(f.entries_proposed));
  out->Counter("mqttd_registry_snapshots_taken_total", "Client-id registry snapshots taken here.",
               static_cast<double>(f.snapshots_taken));
  out->Counter("mqttd_registry_snapshots_restored_total",
               "Client-id registry snapshots restored here (start or from the leader).",
               static_cast<double>(f.snapshots_restored));
}

constexpr const char* kListenerNames[4] = {"tcp", "tls", "ws", "wss"};
constexpr const char* kProtocolNames[3] = {"3.1", "3.1.1", "5.0"};

void AddConnections(const ConnectionFigures& f, Scrape* out) {
  for (int l = 0; l < 4; ++l) {
    for (int v = 0; v < 3; ++v) {
      const Labels labels = {{"listener", kListenerNames[l]}, {"protocol", kProtocolNames[v]}};
      // Opened and closed are read one after the other: never show a negative count.
      const uint64_t open = f.opened[l][v] >= f.closed[l][v] ? f.opened[l][v] - f.closed[l][v] : 0;
      out->Gauge("mqttd_connections",
                 "MQTT connections open (CONNECT accepted) by listener and protocol version.",
                 static_cast<double>(open), labels);
      out->Counter("mqttd_connections_total",
                   "MQTT connections accepted (CONNACK 0) since start, by listener and protocol.",
                   static_cast<double>(f.opened[l][v]), labels);
    }
  }
}

void AddSessions(const SessionFigures& f, Scrape* out) {
  out->Gauge("mqttd_sessions", "Sessions on this node, connected or not (updated every second).",
             static_cast<double>(f.sessions));
  out->Gauge("mqttd_queued_messages",
             "Messages queued for sessions behind their inflight window or while offline, in "
             "memory and on disk (updated every second).",
             static_cast<double>(f.queued));
  out->Gauge("mqttd_inflight_messages",
             "QoS 1/2 messages sent to clients and not acknowledged yet (updated every second).",
             static_cast<double>(f.inflight));
}

void AddStorageDb(const StorageDbFigures& f, Scrape* out) {
  out->Gauge("mqttd_storage_estimated_keys", "RocksDB estimate of the keys stored (all families).",
             static_cast<double>(f.estimate_keys));
  out->Gauge("mqttd_storage_sst_bytes", "Bytes of all RocksDB SST files (every version).",
             static_cast<double>(f.sst_bytes));
  out->Gauge("mqttd_storage_live_sst_bytes", "Bytes of the SST files of the current version.",
             static_cast<double>(f.live_sst_bytes));
  out->Gauge("mqttd_storage_memtable_bytes", "Bytes of RocksDB memtables (active and immutable).",
             static_cast<double>(f.memtable_bytes));
  out->Gauge("mqttd_storage_pending_compaction_bytes",
             "RocksDB estimate of the bytes compaction has to rewrite.",
             static_cast<double>(f.pending_compaction_bytes));
  out->Gauge("mqttd_storage_wal_bytes", "Bytes of the live RocksDB write-ahead log files.",
             static_cast<double>(f.wal_bytes));
}

void AddLatencies(const MetricSources& s, Scrape* out) {
  if (s.ack_latency) {
    for (uint8_t qos : {1, 2}) {
      out->Histogram("mqttd_puback_latency_seconds",
                     "From sending a QoS 1/2 PUBLISH to a client to its PUBACK (qos 1) or PUBCOMP "
                     "(qos 2); a resend on reconnect counts from the resend.",
                     s.ack_latency(qos), {{"qos", std::to_string(qos)}});
    }
  }
  if (s.forward_latency) {
    out->Histogram("mqttd_forward_latency_seconds",
                   "From sending a batch of forwarded messages to a peer to the peer's "
                   "acknowledgement of it.",
                   s.forward_latency());
  }
  if (s.storage_write_latency) {
    out->Histogram("mqttd_storage_write_seconds",
                   "Time of one RocksDB write of a group commit (fsync included when on).",
                   s.storage_write_latency());
  }
}

}  // namespace

std::string RenderMetrics(const MetricSources& sources, absl::Time now) {
  Scrape scrape;
  AddNode(sources, now, &scrape);
  if (sources.traffic) AddTraffic(sources.traffic(), &scrape);
  AddDrops(sources, &scrape);
  if (sources.store) AddStore(sources.store(), &scrape);
  if (sources.disk) AddDisk(sources.disk(), &scrape);
  if (sources.listeners) AddListeners(sources.listeners(), &scrape);
  AddCluster(sources, &scrape);
  if (sources.bridges) AddBridges(sources.bridges(), &scrape);
  if (sources.registry) AddRegistry(sources.registry(), &scrape);
  if (sources.connections) AddConnections(sources.connections(), &scrape);
  if (sources.sessions) AddSessions(sources.sessions(), &scrape);
  if (sources.storage_db) AddStorageDb(sources.storage_db(), &scrape);
  if (sources.cluster_routes) {
    scrape.Gauge("mqttd_cluster_routes",
                 "Routes of other nodes this node knows (filter, node), from the route table.",
                 static_cast<double>(sources.cluster_routes()));
  }
  AddLatencies(sources, &scrape);
  return scrape.Text();
}

}  // namespace mqtt::http
