// SPDX-License-Identifier: Apache-2.0
// /healthz and /readyz. Liveness is the HTTP thread answering at all. Readiness is, in order:
// not shutting down, storage open, listeners up, and (clustered) joined with the peers' routes
// and the client-id registry ready; the first that fails is the 503's one-line reason.
//
// Threading: every method from any thread; the checks run on the caller's (the HTTP thread).
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "node/http/server.h"

namespace mqtt::http {

struct ReadinessChecks {
  std::function<bool()> storage_open;    // null: no storage to wait for
  std::function<std::string()> cluster;  // null: not clustered; else "" when ready, or why not
};

class Readiness {
 public:
  explicit Readiness(ReadinessChecks checks) : checks_(std::move(checks)) {}

  void SetListening(bool listening) { listening_.store(listening); }
  void SetShuttingDown() { shutting_down_.store(true); }

  // Empty when ready, else why not ("shutting down", "listeners not up", ...).
  std::string NotReadyReason() const;
  bool ready() const { return NotReadyReason().empty(); }

  Response Healthz() const;  // 200 "ok"
  Response Readyz() const;   // 200 "ready", or 503 with the reason

 private:
  const ReadinessChecks checks_;
  std::atomic<bool> listening_{false};
  std::atomic<bool> shutting_down_{false};
};

}  // namespace mqtt::http
