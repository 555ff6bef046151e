// SPDX-License-Identifier: Apache-2.0
#include "node/http/metrics.h"

#include <cctype>
#include <set>
#include <sstream>

#include "gtest/gtest.h"

namespace mqtt::http {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

bool IsMetricName(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != ':') return false;
  }
  return true;
}

// The metric name of a sample line `name{labels} value` or `name value`; empty if malformed.
// (No std::regex: GCC 12 warns inside <regex> under the asan preset's -O1, and -Werror.)
std::string SampleName(const std::string& line) {
  const size_t space = line.rfind(' ');
  if (space == std::string::npos || space + 1 == line.size()) return "";
  std::string head = line.substr(0, space);
  const size_t brace = head.find('{');
  if (brace != std::string::npos) {
    if (head.back() != '}') return "";
    head = head.substr(0, brace);
  }
  return IsMetricName(head) ? head : "";
}

// Every line is a comment (# HELP / # TYPE) or `name{labels} value`; every sample's family has
// HELP and TYPE lines.
void ExpectValidExposition(const std::string& text) {
  std::set<std::string> help, type;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream words(line);
    std::string hash, kind, name;
    if (line[0] == '#') {
      words >> hash >> kind >> name;
      ASSERT_TRUE((kind == "HELP" || kind == "TYPE") && IsMetricName(name)) << line;
      (kind == "HELP" ? help : type).insert(name);
      continue;
    }
    name = SampleName(line);
    ASSERT_FALSE(name.empty()) << "not a sample: " << line;
    // A histogram's samples are NAME_bucket, NAME_sum and NAME_count of the family NAME.
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string s = suffix;
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0 &&
          type.count(name.substr(0, name.size() - s.size()))) {
        name = name.substr(0, name.size() - s.size());
        break;
      }
    }
    EXPECT_TRUE(help.count(name) && type.count(name)) << "no HELP/TYPE before " << line;
  }
}

TEST(MetricsTest, NodeMetricsAlone) {
  MetricSources s;
  s.version = "1.2.3";
  s.started_at = absl::FromUnixSeconds(1000);
  s.ready = [] { return true; };
  s.clients_connected = [] { return uint64_t{3}; };
  s.subscriptions = [] { return uint64_t{7}; };
  s.retained_messages = [] { return uint64_t{2}; };
  const std::string text = RenderMetrics(s, absl::FromUnixSeconds(1060));
  ExpectValidExposition(text);
  EXPECT_TRUE(Has(text, "mqttd_build_info{version=\"1.2.3\"} 1")) << text;
  EXPECT_TRUE(Has(text, "mqttd_uptime_seconds 60")) << text;
  EXPECT_TRUE(Has(text, "mqttd_start_time_seconds 1000")) << text;
  EXPECT_TRUE(Has(text, "mqttd_ready 1")) << text;
  EXPECT_TRUE(Has(text, "# TYPE mqttd_clients_connected gauge")) << text;
  EXPECT_TRUE(Has(text, "mqttd_clients_connected 3")) << text;
  EXPECT_TRUE(Has(text, "mqttd_subscriptions 7")) << text;
  EXPECT_TRUE(Has(text, "mqttd_retained_messages 2")) << text;
  // No store, no cluster: their metrics are left out.
  EXPECT_EQ(text.find("mqttd_store_"), std::string::npos);
  EXPECT_EQ(text.find("mqttd_cluster_"), std::string::npos);
  EXPECT_EQ(text.find("mqttd_registry_"), std::string::npos);
}

TEST(MetricsTest, StoreClusterAndRegistry) {
  MetricSources s;
  s.store = [] { return StoreFigures{10, 4, 100, 50, 4096}; };
  s.members_by_state = [] { return std::map<std::string, uint64_t>{{"alive", 2}, {"dead", 1}}; };
  s.outboxes = [] {
    return std::vector<PeerOutboxFigures>{{"n2", true, 5, 500, 3, 42, 1, 0},
                                          {"n3", false, 0, 0, 0, 7, 0, 2}};
  };
  s.forward_duplicates_dropped = [] { return uint64_t{9}; };
  s.registry = [] { return RegistryFigures{true, false, 12, 0, 1, 2}; };
  const std::string text = RenderMetrics(s);
  ExpectValidExposition(text);
  EXPECT_TRUE(Has(text, "mqttd_store_messages 10")) << text;
  EXPECT_TRUE(Has(text, "mqttd_store_queue_entries 4")) << text;
  EXPECT_TRUE(Has(text, "# TYPE mqttd_store_batches_total counter")) << text;
  EXPECT_TRUE(Has(text, "mqttd_store_batches_total 100")) << text;
  EXPECT_TRUE(Has(text, "mqttd_store_written_bytes_total 4096")) << text;
  EXPECT_TRUE(Has(text, "mqttd_cluster_members{state=\"alive\"} 2")) << text;
  EXPECT_TRUE(Has(text, "mqttd_cluster_members{state=\"dead\"} 1")) << text;
  EXPECT_TRUE(Has(text, "mqttd_cluster_members{state=\"suspect\"} 0")) << text;
  EXPECT_TRUE(Has(text, "mqttd_cluster_members{state=\"left\"} 0")) << text;
  EXPECT_TRUE(Has(text, "mqttd_cluster_peer_connected{peer=\"n2\"} 1")) << text;
  EXPECT_TRUE(Has(text, "mqttd_cluster_peer_connected{peer=\"n3\"} 0")) << text;
  EXPECT_TRUE(Has(text, "mqttd_cluster_outbox_messages{peer=\"n2\"} 5")) << text;
  EXPECT_TRUE(Has(text, "mqttd_cluster_outbox_bytes{peer=\"n2\"} 500")) << text;
  EXPECT_TRUE(Has(text, "mqttd_cluster_outbox_held_acks{peer=\"n3\"} 2")) << text;
  EXPECT_TRUE(Has(text, "mqttd_cluster_forwarded_messages_total{peer=\"n2\"} 42")) << text;
  EXPECT_TRUE(Has(text, "mqttd_cluster_forward_dropped_messages_total{peer=\"n2\"} 1")) << text;
  EXPECT_TRUE(Has(text, "mqttd_cluster_forward_duplicates_dropped_total 9")) << text;
  EXPECT_TRUE(Has(text, "mqttd_registry_leader_known 1")) << text;
  EXPECT_TRUE(Has(text, "mqttd_registry_is_leader 0")) << text;
  EXPECT_TRUE(Has(text, "mqttd_registry_entries_applied_total 12")) << text;
}

// Drops by reason: the workers' reasons plus the cluster's outbox_full summed over peers; the
// disk watermark; each listener's connections and refusals.
TEST(MetricsTest, DropsDiskAndListeners) {
  MetricSources s;
  s.traffic = [] {
    TrafficFigures f;
    f.dropped = {{"queue_full", 5}, {"quota", 2}};
    f.throttled_message_rate = 3;
    return f;
  };
  s.outboxes = [] {
    PeerOutboxFigures a{"n2", true, 0, 0, 0, 0, 4, 0, 3};
    PeerOutboxFigures b{"n3", true, 0, 0, 0, 0, 1, 0, 1};
    return std::vector<PeerOutboxFigures>{a, b};
  };
  s.disk = [] { return DiskFigures{true, 12345}; };
  s.listeners = [] { return std::vector<ListenerFigures>{{"mqtt 0.0.0.0:1883", 7, 2, 9}}; };
  const std::string text = RenderMetrics(s);
  ExpectValidExposition(text);
  EXPECT_TRUE(Has(text, "mqttd_messages_dropped_total{reason=\"queue_full\"} 5")) << text;
  EXPECT_TRUE(Has(text, "mqttd_messages_dropped_total{reason=\"quota\"} 2")) << text;
  EXPECT_TRUE(Has(text, "mqttd_messages_dropped_total{reason=\"outbox_full\"} 4")) << text;
  EXPECT_TRUE(Has(text, "mqttd_clients_throttled_total{limit=\"message_rate\"} 3")) << text;
  EXPECT_TRUE(Has(text, "mqttd_disk_watermark_exceeded 1")) << text;
  EXPECT_TRUE(Has(text, "mqttd_disk_available_bytes 12345")) << text;
  EXPECT_TRUE(Has(text, "mqttd_listener_connections{listener=\"mqtt 0.0.0.0:1883\"} 7")) << text;
  EXPECT_TRUE(Has(text,
                  "mqttd_connections_refused_total{listener=\"mqtt 0.0.0.0:1883\",reason=\""
                  "connection_rate\"} 9"))
      << text;
}

// Buckets: `le` is an upper bound (inclusive); the exposition is cumulative, ends with +Inf
// equal to _count, and _sum is in seconds.
TEST(MetricsTest, LatencyHistogramsMergedAndCumulative) {
  LatencyHistogram worker_a, worker_b;
  worker_a.Record(40'000);          // 40 us: the first bucket (le 5e-05)
  worker_a.Record(50'000);          // exactly 50 us: still the first bucket
  worker_b.Record(3'000'000);       // 3 ms: le 0.005
  worker_b.Record(60'000'000'000);  // 60 s: +Inf only
  EXPECT_EQ(LatencyBucket(50'000), 0u);
  EXPECT_EQ(LatencyBucket(50'001), 1u);
  EXPECT_EQ(LatencyBucket(10'000'000'000), kLatencyBounds.size() - 1);
  EXPECT_EQ(LatencyBucket(10'000'000'001), kLatencyBounds.size());
  MetricSources s;
  s.ack_latency = [&](uint8_t qos) {
    LatencySnapshot merged;
    if (qos == 1) {
      merged.Add(worker_a.Snapshot());
      merged.Add(worker_b.Snapshot());
    }
    return merged;
  };
  s.storage_write_latency = [&] { return worker_a.Snapshot(); };
  const std::string text = RenderMetrics(s);
  ExpectValidExposition(text);
  EXPECT_TRUE(Has(text, "# TYPE mqttd_puback_latency_seconds histogram")) << text;
  EXPECT_TRUE(Has(text, "mqttd_puback_latency_seconds_bucket{qos=\"1\",le=\"5e-05\"} 2")) << text;
  EXPECT_TRUE(Has(text, "mqttd_puback_latency_seconds_bucket{qos=\"1\",le=\"0.0025\"} 2")) << text;
  EXPECT_TRUE(Has(text, "mqttd_puback_latency_seconds_bucket{qos=\"1\",le=\"0.005\"} 3")) << text;
  EXPECT_TRUE(Has(text, "mqttd_puback_latency_seconds_bucket{qos=\"1\",le=\"10\"} 3")) << text;
  EXPECT_TRUE(Has(text, "mqttd_puback_latency_seconds_bucket{qos=\"1\",le=\"+Inf\"} 4")) << text;
  EXPECT_TRUE(Has(text, "mqttd_puback_latency_seconds_count{qos=\"1\"} 4")) << text;
  EXPECT_TRUE(Has(text, "mqttd_puback_latency_seconds_sum{qos=\"1\"} 60.00309")) << text;
  EXPECT_TRUE(Has(text, "mqttd_puback_latency_seconds_count{qos=\"2\"} 0")) << text;
  EXPECT_TRUE(Has(text, "mqttd_storage_write_seconds_count 2")) << text;
  // Not clustered: no forward latency.
  EXPECT_EQ(text.find("mqttd_forward_latency_seconds"), std::string::npos) << text;
}

TEST(MetricsTest, ConnectionsSessionsAndRocksDbFigures) {
  MetricSources s;
  s.connections = [] {
    ConnectionFigures f;
    f.opened[0][1] = 5;  // tcp, 3.1.1
    f.closed[0][1] = 2;
    f.opened[3][2] = 1;  // wss, 5.0
    return f;
  };
  s.sessions = [] { return SessionFigures{7, 30, 4}; };
  s.storage_db = [] { return StorageDbFigures{100, 2048, 1024, 512, 64, 4096}; };
  s.cluster_routes = [] { return uint64_t{12}; };
  const std::string text = RenderMetrics(s);
  ExpectValidExposition(text);
  EXPECT_TRUE(Has(text, "mqttd_connections{listener=\"tcp\",protocol=\"3.1.1\"} 3")) << text;
  EXPECT_TRUE(Has(text, "mqttd_connections_total{listener=\"tcp\",protocol=\"3.1.1\"} 5")) << text;
  EXPECT_TRUE(Has(text, "mqttd_connections{listener=\"wss\",protocol=\"5.0\"} 1")) << text;
  EXPECT_TRUE(Has(text, "mqttd_connections{listener=\"ws\",protocol=\"3.1\"} 0")) << text;
  EXPECT_TRUE(Has(text, "# TYPE mqttd_connections_total counter")) << text;
  EXPECT_TRUE(Has(text, "mqttd_sessions 7")) << text;
  EXPECT_TRUE(Has(text, "mqttd_queued_messages 30")) << text;
  EXPECT_TRUE(Has(text, "mqttd_inflight_messages 4")) << text;
  EXPECT_TRUE(Has(text, "mqttd_storage_estimated_keys 100")) << text;
  EXPECT_TRUE(Has(text, "mqttd_storage_sst_bytes 2048")) << text;
  EXPECT_TRUE(Has(text, "mqttd_storage_live_sst_bytes 1024")) << text;
  EXPECT_TRUE(Has(text, "mqttd_storage_memtable_bytes 512")) << text;
  EXPECT_TRUE(Has(text, "mqttd_storage_pending_compaction_bytes 64")) << text;
  EXPECT_TRUE(Has(text, "mqttd_storage_wal_bytes 4096")) << text;
  EXPECT_TRUE(Has(text, "mqttd_cluster_routes 12")) << text;
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  MetricSources s;
  s.version = "a\"b\\c";
  const std::string text = RenderMetrics(s);
  EXPECT_TRUE(Has(text, "mqttd_build_info{version=\"a\\\"b\\\\c\"} 1")) << text;
}

}  // namespace
}  // namespace mqtt::http
