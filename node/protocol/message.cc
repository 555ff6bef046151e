// SPDX-License-Identifier: Apache-2.0
#include "node/protocol/message.h"

#include <atomic>
#include <chrono>
#include <random>

namespace mqtt {

int64_t MonotonicMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

OriginId NewOriginId() {
  static const uint64_t process = [] {
    std::random_device random;
    uint64_t id = 0;
    while (id == 0) id = (uint64_t{random()} << 32) ^ random();
    return id;
  }();
  static std::atomic<uint64_t> next_block{0};
  constexpr uint64_t kBlock = 1 << 16;
  thread_local uint64_t next = 0;
  thread_local uint64_t end = 0;
  if (next == end) {
    next = next_block.fetch_add(kBlock, std::memory_order_relaxed) + 1;
    end = next + kBlock - 1;
  }
  return OriginId{process, next++};
}

uint64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace mqtt
