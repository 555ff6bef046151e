// SPDX-License-Identifier: Apache-2.0
// $SYS topics of one node, with Mosquitto's names ($SYS/broker/clients/connected, ...; the list
// is in docs/sys-topics.md). Every `interval` the node publishes the values that changed since
// the last round as retained QoS 0 messages, to its own subscribers only: $SYS is per node, never
// replicated to the cluster's retained store nor forwarded (Broker::PublishLocal). Clustered, a
// small summary of the membership goes under $SYS/cluster/.
//
// Lifecycle: Start after Broker::Start (the workers run); Stop before Broker::Shutdown.
// Threading: a round runs on worker 0: its timer fires there, each worker's session count is
// read on that worker (posted to it), the traffic counters are read with relaxed loads, and the
// messages are published from worker 0. Start and Stop from any thread but a worker's. The
// `cluster_members` source must be safe to call from worker 0.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "node/session/broker.h"

namespace mqtt::sys {

struct SysOptions {
  std::chrono::seconds interval{10};  // 0: no $SYS topics (SysPublisher::Start does nothing)
  std::string version;                // $SYS/broker/version, "mqttd <version>"
  std::string node_id;                // $SYS/cluster/node, when clustered
  // Clustered: members this node knows (itself too) by state ("alive" -> 3); null alone.
  std::function<std::map<std::string, uint64_t>()> cluster_members;
};

// Exponentially damped per-minute rates over 1, 5 and 15 minutes, as Mosquitto's
// $SYS/broker/load/*: each Update folds in the rate of the last `seconds`.
class LoadAverage {
 public:
  void Update(uint64_t total, double seconds);
  double per_minute(int window) const { return load_[window]; }  // 0: 1 min, 1: 5, 2: 15

 private:
  bool started_ = false;
  uint64_t last_total_ = 0;
  double load_[3] = {0, 0, 0};
};

// What one round publishes, before it is turned into topics.
struct SysFigures {
  int64_t uptime_seconds = 0;
  uint64_t clients_connected = 0;
  uint64_t sessions = 0;  // connected and disconnected persistent sessions
  TrafficTotals traffic;
  const LoadAverage* load[4] = {nullptr, nullptr, nullptr, nullptr};  // msgs rx, tx, bytes rx, tx
  uint64_t retained = 0;
  uint64_t subscriptions = 0;
  bool has_store = false;
  uint64_t stored_messages = 0;
  std::map<std::string, uint64_t> cluster_members;  // empty alone
};

// The (topic, payload) pairs of one round, in a fixed order (pure; for tests).
std::vector<std::pair<std::string, std::string>> SysValues(const SysOptions& options,
                                                           const SysFigures& figures);

class SysPublisher {
 public:
  SysPublisher(Broker* broker, SysOptions options);
  ~SysPublisher();
  void Start();
  void Stop();  // idempotent; waits until worker 0 has cancelled the timer

  struct State;  // sys_topics.cc

 private:
  std::shared_ptr<State> state_;
};

}  // namespace mqtt::sys
