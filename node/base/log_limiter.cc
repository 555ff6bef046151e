// SPDX-License-Identifier: Apache-2.0
#include "node/base/log_limiter.h"

#include <algorithm>
#include <utility>

namespace mqtt {

// Only the thread whose CAS moves next_ns_ forward is allowed, so two threads cannot both be
// allowed inside one period. The count is a separate atomic: a refusal racing with an allowed
// event lands either in that event's count or in the next one's, never in both.
LogPermit LogLimiter::Allow(absl::Time now) {
  const int64_t t = absl::ToUnixNanos(now);
  int64_t next = next_ns_.load(std::memory_order_relaxed);
  while (t >= next) {
    if (next_ns_.compare_exchange_weak(next, t + period_ns_, std::memory_order_relaxed)) {
      return LogPermit{true, suppressed_.exchange(0, std::memory_order_relaxed)};
    }
  }
  suppressed_.fetch_add(1, std::memory_order_relaxed);
  return LogPermit{};
}

void LogLimiter::Defer(absl::Time now) {
  const int64_t until = absl::ToUnixNanos(now) + period_ns_;
  int64_t next = next_ns_.load(std::memory_order_relaxed);
  while (next < until && !next_ns_.compare_exchange_weak(next, until, std::memory_order_relaxed)) {
  }
}

LogPermit KeyedLogLimiter::Allow(std::string_view key, absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (auto it = streams_.find(absl::string_view(key.data(), key.size())); it != streams_.end()) {
    Stream& stream = it->second;
    if (now - stream.allowed_at < period_) {
      ++stream.suppressed;
      return LogPermit{};
    }
    stream.allowed_at = now;
    return LogPermit{true, std::exchange(stream.suppressed, 0)};
  }
  if (streams_.size() >= max_keys_) {
    ForgetExpiredLocked(now);
    if (streams_.size() >= max_keys_) return LogPermit{};
  }
  streams_.emplace(std::string(key), Stream{now, 0});
  oldest_ = std::min(oldest_, now);
  return LogPermit{true, 0};
}

void KeyedLogLimiter::ForgetExpiredLocked(absl::Time now) {
  if (now - oldest_ < period_) return;  // none can have expired yet
  oldest_ = absl::InfiniteFuture();
  for (auto it = streams_.begin(); it != streams_.end();) {
    if (now - it->second.allowed_at >= period_) {
      streams_.erase(it++);
    } else {
      oldest_ = std::min(oldest_, it->second.allowed_at);
      ++it;
    }
  }
}

size_t KeyedLogLimiter::keys() const {
  absl::MutexLock lock(&mu_);
  return streams_.size();
}

}  // namespace mqtt
