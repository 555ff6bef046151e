// SPDX-License-Identifier: Apache-2.0
#include "node/http/node_http.h"

#include <map>
#include <vector>

#include "node/http/api.h"
#include "node/http/metrics.h"

#ifndef MQTTD_VERSION
#define MQTTD_VERSION "unknown"
#endif

namespace mqtt::http {
namespace {

// When the process started (dynamic initialisation, before main): mqttd_start_time_seconds and
// mqttd_uptime_seconds count from here, not from when the HTTP server started.
const absl::Time kProcessStart = absl::Now();

void AddBrokerSources(Broker* broker, storage::Store* store, MetricSources* s) {
  s->clients_connected = [broker] {
    uint64_t clients = 0;
    for (size_t i = 0; i < broker->worker_count(); ++i) clients += broker->shard(i).client_count();
    return clients;
  };
  s->subscriptions = [broker] { return broker->router().subscription_count(); };
  s->traffic = [broker] {
    TrafficTotals t;
    for (size_t i = 0; i < broker->worker_count(); ++i) t.Add(broker->shard(i).counters().Read());
    TrafficFigures f;
    for (int q = 0; q < 3; ++q) {
      f.messages_received[q] = t.messages_received[q];
      f.messages_sent[q] = t.messages_sent[q];
    }
    f.bytes_received = t.bytes_received;
    f.bytes_sent = t.bytes_sent;
    for (int r = 0; r < kDropReasons; ++r) {
      f.dropped[DropReasonName(static_cast<DropReason>(r))] = t.dropped[r];
    }
    f.throttled_message_rate = t.throttled[0];
    f.throttled_byte_rate = t.throttled[1];
    return f;
  };
  s->retained_messages = [broker] { return broker->router().retained_count(); };
  s->ack_latency = [broker](uint8_t qos) {
    LatencySnapshot merged;
    for (size_t i = 0; i < broker->worker_count(); ++i) {
      merged.Add(broker->shard(i).counters().ReadAckLatency(qos));
    }
    return merged;
  };
  s->connections = [broker] {
    ConnectionFigures f;
    for (size_t i = 0; i < broker->worker_count(); ++i) {
      broker->shard(i).counters().ReadConnections(f.opened, f.closed);
    }
    return f;
  };
  s->sessions = [broker] {
    WorkerCounters::SessionGauges g;
    for (size_t i = 0; i < broker->worker_count(); ++i) {
      g.Add(broker->shard(i).counters().ReadSessionGauges());
    }
    return SessionFigures{g.sessions, g.queued, g.inflight};
  };
  if (store == nullptr) return;
  if (std::shared_ptr<const storage::DiskWatermark> watermark = broker->options().disk_watermark) {
    s->disk = [watermark] {
      return DiskFigures{watermark->exceeded(), watermark->available_bytes()};
    };
  }
  s->storage_write_latency = [store] { return store->write_latency(); };
  s->storage_db = [store] {
    const storage::DbFigures f = store->db_figures();
    return StorageDbFigures{f.estimate_keys,
                            f.sst_bytes,
                            f.live_sst_bytes,
                            f.memtable_bytes,
                            f.pending_compaction_bytes,
                            f.wal_bytes};
  };
  s->store = [store] {
    const storage::StoreStats stats = store->stats();
    return StoreFigures{stats.messages,     stats.queue_entries, stats.batches,
                        stats.write_groups, stats.bytes_written, stats.synced_write_groups};
  };
}

void AddClusterSources(cluster::ClusterNode* cluster, MetricSources* s) {
  if (cluster == nullptr) return;
  s->members_by_state = [cluster] {
    std::map<std::string, uint64_t> counts;
    for (const cluster::MemberInfo& m : cluster->membership().Members()) {
      ++counts[cluster::MemberStateName(m.state)];
    }
    return counts;
  };
  if (cluster::Forwarder* forwarder = cluster->forwarder(); forwarder != nullptr) {
    s->outboxes = [forwarder] {
      std::vector<PeerOutboxFigures> out;
      for (const cluster::ForwardPeerStats& p : forwarder->Stats()) {
        out.push_back({p.node_id, p.connected, p.queued, p.queued_bytes, p.durable_queued,
                       p.forwarded, p.dropped, p.held_acks, p.dropped_full});
      }
      return out;
    };
    s->forward_duplicates_dropped = [forwarder] { return forwarder->duplicates_dropped(); };
    s->forward_latency = [forwarder] { return forwarder->forward_latency(); };
  }
  if (cluster::RouteTable* routes = cluster->routes(); routes != nullptr) {
    s->cluster_routes = [routes] { return routes->remote_route_count(); };
  }
  if (cluster::RegistryNode* node = cluster->registry(); node != nullptr) {
    s->registry = [node] {
      const cluster::Registry& registry = node->registry();
      const cluster::RegistryStats stats = registry.stats();
      return RegistryFigures{!registry.LeaderId().empty(), registry.IsLeader(),
                             stats.entries_applied,        stats.entries_proposed,
                             stats.snapshots_taken,        stats.snapshots_restored};
    };
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<NodeHttp>> NodeHttp::Start(
    const std::string& listen, Broker* broker, storage::Store* store, cluster::ClusterNode* cluster,
    ApiAuth api_auth, std::vector<std::shared_ptr<const net::ConnectionGate>> gates,
    std::function<std::vector<BridgeFigures>()> bridges) {
  if (listen.empty()) return nullptr;
  // No storage check: the store is open before the node gets here, and a storage failure stops
  // the node (SIGTERM to itself), which /readyz reports as "shutting down".
  ReadinessChecks checks;
  if (cluster != nullptr) {
    checks.cluster = [cluster] {
      std::string reason;
      return cluster->ready(&reason) ? std::string() : reason;
    };
  }
  std::unique_ptr<NodeHttp> node(new NodeHttp(std::move(checks)));
  const Readiness* readiness = &node->readiness_;
  auto sources = std::make_shared<MetricSources>();
  sources->version = MQTTD_VERSION;
  sources->started_at = kProcessStart;
  sources->ready = [readiness] { return readiness->ready(); };
  AddBrokerSources(broker, store, sources.get());
  AddClusterSources(cluster, sources.get());
  sources->bridges = std::move(bridges);
  if (!gates.empty()) {
    sources->listeners = [gates = std::move(gates)] {
      std::vector<ListenerFigures> out;
      for (const auto& g : gates) {
        out.push_back({g->name(), g->open(), g->refused_max_connections(), g->refused_rate()});
      }
      return out;
    };
  }

  Handlers handlers;
  handlers["/healthz"] = [readiness] { return readiness->Healthz(); };
  handlers["/readyz"] = [readiness] { return readiness->Readyz(); };
  handlers["/metrics"] = [sources] {
    return Response{200, RenderMetrics(*sources), kMetricsContentType, {}};
  };
  ServerOptions options;
  options.listen = listen;
  // A publish's payload comes in the body, as text or base64.
  if (api_auth.enabled()) options.max_body_bytes = 4u << 20;
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start(options, std::move(handlers), MakeApi(broker, cluster, std::move(api_auth)));
  if (!server.ok()) return server.status();
  node->server_ = std::move(*server);
  return node;
}

}  // namespace mqtt::http
