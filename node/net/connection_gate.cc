// SPDX-License-Identifier: Apache-2.0
#include "node/net/connection_gate.h"

#include <algorithm>

#include "node/base/log.h"

namespace mqtt::net {

bool ConnectionGate::Admit(Clock::time_point now) {
  if (!TakePlace()) {
    refused_max_.fetch_add(1, std::memory_order_relaxed);
    LogRefusal("max_connections", now);
    return false;
  }
  if (rate_ != 0 && !TakeToken(now)) {
    Closed();
    refused_rate_.fetch_add(1, std::memory_order_relaxed);
    LogRefusal("connection_rate", now);
    return false;
  }
  return true;
}

// Counted before the connection goes on, so that workers accepting at the same instant cannot
// pass the limit together.
bool ConnectionGate::TakePlace() {
  if (max_connections_ == 0) {
    open_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  uint32_t open = open_.load(std::memory_order_relaxed);
  do {
    if (open >= max_connections_) return false;
  } while (!open_.compare_exchange_weak(open, open + 1, std::memory_order_relaxed));
  return true;
}

bool ConnectionGate::TakeToken(Clock::time_point now) {
  absl::MutexLock lock(&mu_);
  if (refilled_ != Clock::time_point{}) {
    const double seconds = std::chrono::duration<double>(now - refilled_).count();
    tokens_ = std::min<double>(rate_, tokens_ + seconds * rate_);
  }
  refilled_ = now;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

void ConnectionGate::LogRefusal(const char* why, Clock::time_point now) {
  if (!refusal_log_.Allow(FromSteadyClock(now))) return;
  MQTT_LOG_WARN(
      "listener %s: connection refused (%s: %u open, limit %u, rate %u/s); %d refused for "
      "max_connections and %d for connection_rate so far",
      name_, why, open(), max_connections_, rate_, refused_max_connections(), refused_rate());
}

}  // namespace mqtt::net
