// SPDX-License-Identifier: Apache-2.0
// ConnectionGate: the connection limits of one listener (docs/security.md, "Limits"): at most
// `max_connections` open at once, and at most `rate` accepted per second (a token bucket with a
// burst of one second's worth). A connection beyond either is refused: the listener's accept
// callback closes the socket at once, before any byte is read, and the gate counts it
// (mqttd_connections_refused_total) and logs it at most once a second.
//
// Admit() takes the connection's place (counts it open); its transport gives the place back
// with Closed() when it is destroyed (a connection handed over to another worker keeps its
// place: the transport that takes it over gives it back instead).
//
// Threading: every method from any thread (the listener accepts on every worker).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "node/base/log_limiter.h"

namespace mqtt::net {

class ConnectionGate {
 public:
  using Clock = std::chrono::steady_clock;

  // `name` for logs and metrics ("mqtt 127.0.0.1:1883"); 0: no limit.
  ConnectionGate(std::string name, uint32_t max_connections, uint32_t rate)
      : name_(std::move(name)), max_connections_(max_connections), rate_(rate), tokens_(rate) {}

  // Whether a connection accepted now may go on: true takes its place (see above); false counts
  // and logs the refusal.
  bool Admit(Clock::time_point now = Clock::now());
  // A place taken by Admit() is given back.
  void Closed() { open_.fetch_sub(1, std::memory_order_relaxed); }

  const std::string& name() const { return name_; }
  uint32_t max_connections() const { return max_connections_; }
  uint32_t open() const { return open_.load(std::memory_order_relaxed); }
  uint64_t refused_max_connections() const { return refused_max_.load(std::memory_order_relaxed); }
  uint64_t refused_rate() const { return refused_rate_.load(std::memory_order_relaxed); }

 private:
  bool TakePlace();
  bool TakeToken(Clock::time_point now);
  void LogRefusal(const char* why, Clock::time_point now);

  const std::string name_;
  const uint32_t max_connections_;
  const uint32_t rate_;  // per second
  std::atomic<uint32_t> open_{0};
  std::atomic<uint64_t> refused_max_{0};
  std::atomic<uint64_t> refused_rate_{0};
  absl::Mutex mu_;  // the bucket (only with a rate)
  double tokens_ ABSL_GUARDED_BY(mu_);
  Clock::time_point refilled_ ABSL_GUARDED_BY(mu_){};
  LogLimiter refusal_log_{absl::Seconds(1)};  // lock-free: a flood of refusals takes no lock
};

}  // namespace mqtt::net
