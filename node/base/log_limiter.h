// SPDX-License-Identifier: Apache-2.0
// Rate limits for log lines: "may I log this now?", yes at most once per period, and how many
// events were refused since the last yes, so that the next line can say how many it stands for.
//
// LogLimiter: one stream of lines (e.g. "messages dropped"). Lock-free: inside the period a call
// is one atomic load and one atomic increment, so it may sit on a hot path (a drop under load).
// KeyedLogLimiter: one stream per key (e.g. per peer address), at most `max_keys` remembered;
// a mutex on every call, for paths that are not hot.
//
// Time: `now` is on a steady clock expressed as absl::Time (LogLimiterNow(), or
// FromSteadyClock(t) for a caller that already holds a steady_clock time): a wall clock set
// back would silence a limiter for as long as it was set back. Use one clock per limiter.
//
// Threading: every method of both classes may be called from any thread at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace mqtt {

inline absl::Time FromSteadyClock(std::chrono::steady_clock::time_point t) {
  return absl::UnixEpoch() + absl::FromChrono(t.time_since_epoch());
}
inline absl::Time LogLimiterNow() { return FromSteadyClock(std::chrono::steady_clock::now()); }

// The answer to one event: log it (true) or not. When true, `suppressed` is the number of
// events of the same stream refused since the previous true answer.
struct LogPermit {
  bool allowed = false;
  uint64_t suppressed = 0;
  explicit operator bool() const { return allowed; }
};

class LogLimiter {
 public:
  // `period` > 0: two allowed events are at least this far apart.
  explicit LogLimiter(absl::Duration period) : period_ns_(absl::ToInt64Nanoseconds(period)) {}
  LogLimiter(const LogLimiter&) = delete;
  LogLimiter& operator=(const LogLimiter&) = delete;

  // The first event is allowed; then one a period after the last allowed one. Every refused
  // event is counted exactly once, in the `suppressed` of a later allowed one (an event refused
  // while another thread is being allowed may be counted by the allowed one after that).
  LogPermit Allow(absl::Time now = LogLimiterNow());
  // As if an event had been allowed at `now`: the next is allowed a period later (a line that
  // should not appear before the condition has lasted a period).
  void Defer(absl::Time now = LogLimiterNow());

 private:
  const int64_t period_ns_;
  // Unix ns on the steady clock before which events are refused. Only a CAS moves it forward.
  std::atomic<int64_t> next_ns_{std::numeric_limits<int64_t>::min()};
  std::atomic<uint64_t> suppressed_{0};  // refused since the last allowed event
};

class KeyedLogLimiter {
 public:
  // `period` > 0, `max_keys` > 0.
  KeyedLogLimiter(absl::Duration period, size_t max_keys) : period_(period), max_keys_(max_keys) {}
  KeyedLogLimiter(const KeyedLogLimiter&) = delete;
  KeyedLogLimiter& operator=(const KeyedLogLimiter&) = delete;

  // As LogLimiter::Allow, for the stream of `key`, each key independent of the others. A key
  // whose period has passed is forgotten (with its count) when room is needed for a new one;
  // while `max_keys` keys are all inside their period a new key is refused and not counted:
  // that many streams at once is a flood whose lines would not help.
  LogPermit Allow(std::string_view key, absl::Time now = LogLimiterNow()) ABSL_LOCKS_EXCLUDED(mu_);

  size_t keys() const ABSL_LOCKS_EXCLUDED(mu_);  // remembered now (tests)

 private:
  struct Stream {
    absl::Time allowed_at;  // of its last allowed event
    uint64_t suppressed = 0;
  };
  // Drops the keys whose period has passed.
  void ForgetExpiredLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::Duration period_;
  const size_t max_keys_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Stream> streams_ ABSL_GUARDED_BY(mu_);
  // At most the earliest allowed_at in streams_ (set by a scan, lowered by an insert; a renewal
  // only raises an allowed_at): no stream expires before oldest_ + period_, so a full map is not
  // scanned again before then, and a flood of new keys costs no scan per key.
  absl::Time oldest_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
};

}  // namespace mqtt
