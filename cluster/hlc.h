// SPDX-License-Identifier: Apache-2.0
// Hlc: a hybrid logical clock (Kulkarni et al. 2014), packed in 64 bits as
// (wall-clock milliseconds since the Unix epoch << 16) | logical counter. It orders the
// retained messages of a cluster (retained_sync.h): a value stamped by Now() is above every value
// this clock returned or observed before, and stays close to wall-clock time.
//
// Contract: Now() is strictly increasing, and Now() > v for every v passed to Observe() earlier.
// When the wall clock stands still or steps back, the counter carries on (past 65,535 events in
// one millisecond it spills into the millisecond part, which stays monotonic). A remote value
// far in the future (a peer with a bad clock) drags this clock along: nothing bounds it today.
//
// Threading: every method may be called from any thread (one atomic word, no lock).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

namespace mqtt::cluster {

class Hlc {
 public:
  // Milliseconds since the Unix epoch. Tests inject one; the default reads the system clock.
  using WallClock = std::function<uint64_t()>;

  explicit Hlc(WallClock wall_clock = nullptr);

  // A value for a local event: > every value returned or observed before, and >= the wall
  // clock's milliseconds << 16.
  uint64_t Now();
  // A value received from another node: the next Now() is above it.
  void Observe(uint64_t remote);
  // The last value returned or observed (0 if none).
  uint64_t last() const { return last_.load(std::memory_order_acquire); }

  static uint64_t FromWallMs(uint64_t wall_ms) { return wall_ms << kLogicalBits; }
  static uint64_t WallMs(uint64_t hlc) { return hlc >> kLogicalBits; }
  static uint64_t Logical(uint64_t hlc) { return hlc & ((uint64_t{1} << kLogicalBits) - 1); }

 private:
  static constexpr int kLogicalBits = 16;

  const WallClock wall_clock_;
  std::atomic<uint64_t> last_{0};
};

}  // namespace mqtt::cluster
