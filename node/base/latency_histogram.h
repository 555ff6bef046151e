// SPDX-License-Identifier: Apache-2.0
// LatencyHistogram: a fixed-bucket histogram of durations for /metrics (node/http/metrics.h),
// kept where the durations happen (a worker, the forwarder, the store) and merged at scrape.
// Header-only and std-only, so that storage/ and cluster/ may use it without linking mqtt_base.
//
// Buckets are upper bounds in seconds, from 50 us to 10 s (kLatencyBounds), plus +Inf. Counts
// per bucket are not cumulative here; the exposition makes them so.
//
// Threading: Record is for one writer at a time (a worker's own histogram, or one written under
// its owner's mutex): a relaxed load and store per counter, no locked instruction.
// RecordConcurrent may be called from several threads at once (fetch_add). Snapshot from any
// thread, with relaxed loads: each counter is exact, the set of them is not one instant (count
// may be ahead of a bucket by the records in progress).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace mqtt {

inline constexpr std::array<double, 17> kLatencyBounds = {
    50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3,
    50e-3, 100e-3, 250e-3, 500e-3, 1.0,  2.5,    5.0,  10.0};
inline constexpr size_t kLatencyBuckets = kLatencyBounds.size() + 1;  // the last one: +Inf

struct LatencySnapshot {
  std::array<uint64_t, kLatencyBuckets> buckets{};  // not cumulative
  uint64_t count = 0;
  uint64_t sum_ns = 0;

  void Add(const LatencySnapshot& o) {
    for (size_t i = 0; i < kLatencyBuckets; ++i) buckets[i] += o.buckets[i];
    count += o.count;
    sum_ns += o.sum_ns;
  }
};

// Steady-clock nanoseconds: the start and end of a measured duration.
inline int64_t MonotonicNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The bucket of a duration: the first whose bound is >= it (Prometheus' `le`).
inline size_t LatencyBucket(int64_t ns) {
  const double seconds = static_cast<double>(ns < 0 ? 0 : ns) * 1e-9;
  size_t i = 0;
  while (i < kLatencyBounds.size() && seconds > kLatencyBounds[i]) ++i;
  return i;
}

class LatencyHistogram {
 public:
  void Record(int64_t ns) {
    Bump(buckets_[LatencyBucket(ns)], 1);
    Bump(sum_ns_, static_cast<uint64_t>(ns < 0 ? 0 : ns));
    Bump(count_, 1);
  }
  void RecordConcurrent(int64_t ns) {
    buckets_[LatencyBucket(ns)].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(static_cast<uint64_t>(ns < 0 ? 0 : ns), std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
  }

  LatencySnapshot Snapshot() const {
    LatencySnapshot s;
    for (size_t i = 0; i < kLatencyBuckets; ++i) {
      s.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
    }
    s.count = count_.load(std::memory_order_relaxed);
    s.sum_ns = sum_ns_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  static void Bump(std::atomic<uint64_t>& c, uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  std::array<std::atomic<uint64_t>, kLatencyBuckets> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ns_{0};
};

}  // namespace mqtt
