// SPDX-License-Identifier: Apache-2.0
// NodeHttp: mqttd's HTTP server (--http-listen) with /healthz, /readyz, /metrics and the HTTP
// API (/api/v1/, api.h) over the node's parts. The one place that maps the broker, the store and
// the cluster onto the metric sources (metrics.h) and the readiness checks (health.h).
//
// Lifecycle: Start after the store, the broker and the cluster exist (it may be before the
// listeners: /readyz says 503 until SetListening), SetShuttingDown when SIGTERM arrives (then
// /readyz says 503 "shutting down"), Stop (or destroy) before those parts go.
// Threading: handlers run on the server's own thread; the other methods from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cluster/node.h"
#include "node/http/api.h"
#include "node/http/health.h"
#include "node/http/metrics.h"
#include "node/http/server.h"
#include "node/net/connection_gate.h"
#include "node/session/broker.h"
#include "storage/store.h"

namespace mqtt::http {

class NodeHttp {
 public:
  // Null (and OK) when `listen` is empty: the HTTP server is disabled. `store` and `cluster` may
  // be null (no persistence, alone). `api_auth` not enabled(): the HTTP API (api.h) is disabled.
  // `gates`: the MQTT listeners' connection limits (/metrics); `bridges`: the bridges' figures
  // (/metrics; called on the server's thread). Errors: Server::Start's.
  static absl::StatusOr<std::unique_ptr<NodeHttp>> Start(
      const std::string& listen, Broker* broker, storage::Store* store,
      cluster::ClusterNode* cluster, ApiAuth api_auth = {},
      std::vector<std::shared_ptr<const net::ConnectionGate>> gates = {},
      std::function<std::vector<BridgeFigures>()> bridges = nullptr);

  const std::string& address() const { return server_->address(); }
  void SetListening() { readiness_.SetListening(true); }
  void SetShuttingDown() { readiness_.SetShuttingDown(); }
  void Stop() { server_->Stop(); }

 private:
  explicit NodeHttp(ReadinessChecks checks) : readiness_(std::move(checks)) {}

  Readiness readiness_;
  std::unique_ptr<Server> server_;  // after readiness_: its handlers use it
};

}  // namespace mqtt::http
