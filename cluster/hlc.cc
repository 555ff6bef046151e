// SPDX-License-Identifier: Apache-2.0
#include "cluster/hlc.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace mqtt::cluster {

Hlc::Hlc(WallClock wall_clock)
    : wall_clock_(wall_clock != nullptr ? std::move(wall_clock) : [] {
        return static_cast<uint64_t>(absl::ToUnixMillis(absl::Now()));
      }) {}

uint64_t Hlc::Now() {
  const uint64_t physical = FromWallMs(wall_clock_());
  uint64_t last = last_.load(std::memory_order_acquire);
  uint64_t next;
  do {
    // A wall clock ahead of everything seen starts a new millisecond at counter 0; otherwise
    // the counter of the latest value goes on.
    next = std::max(last + 1, physical);
  } while (!last_.compare_exchange_weak(last, next, std::memory_order_acq_rel));
  return next;
}

void Hlc::Observe(uint64_t remote) {
  uint64_t last = last_.load(std::memory_order_acquire);
  while (remote > last && !last_.compare_exchange_weak(last, remote, std::memory_order_acq_rel)) {
  }
}

}  // namespace mqtt::cluster
