// SPDX-License-Identifier: Apache-2.0
// Traffic counters of one worker: MQTT messages and bytes in and out, for $SYS (node/sys) and
// /metrics (node/http). One set per Shard, so that the publish path never shares a cache line
// or an atomic read-modify-write with another worker.
//
// Threading: written only by the owning worker's thread (Add: a relaxed load and store, no
// locked instruction); read from any thread with relaxed loads (Read). Totals over workers are
// monotonic per worker, not a consistent snapshot across workers.
#pragma once

#include <atomic>
#include <cstdint>

namespace mqtt {

struct TrafficTotals {
  uint64_t messages_received[3] = {0, 0, 0};  // PUBLISH packets from clients, by QoS
  uint64_t messages_sent[3] = {0, 0, 0};      // PUBLISH packets to clients (resends too), by QoS
  uint64_t bytes_received = 0;                // every MQTT packet read from clients
  uint64_t bytes_sent = 0;                    // PUBLISH, PUBACK and PUBREC packets written

  uint64_t received() const {
    return messages_received[0] + messages_received[1] + messages_received[2];
  }
  uint64_t sent() const { return messages_sent[0] + messages_sent[1] + messages_sent[2]; }
  void Add(const TrafficTotals& o) {
    for (int q = 0; q < 3; ++q) {
      messages_received[q] += o.messages_received[q];
      messages_sent[q] += o.messages_sent[q];
    }
    bytes_received += o.bytes_received;
    bytes_sent += o.bytes_sent;
  }
};

class alignas(64) WorkerCounters {
 public:
  void MessageReceived(uint8_t qos) { Add(messages_received_[qos % 3], 1); }
  void MessageSent(uint8_t qos) { Add(messages_sent_[qos % 3], 1); }
  void BytesReceived(uint64_t n) { Add(bytes_received_, n); }
  void BytesSent(uint64_t n) { Add(bytes_sent_, n); }

  TrafficTotals Read() const {
    TrafficTotals t;
    for (int q = 0; q < 3; ++q) {
      t.messages_received[q] = messages_received_[q].load(std::memory_order_relaxed);
      t.messages_sent[q] = messages_sent_[q].load(std::memory_order_relaxed);
    }
    t.bytes_received = bytes_received_.load(std::memory_order_relaxed);
    t.bytes_sent = bytes_sent_.load(std::memory_order_relaxed);
    return t;
  }

 private:
  // Single writer: no fetch_add (a locked instruction) is needed.
  static void Add(std::atomic<uint64_t>& c, uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  std::atomic<uint64_t> messages_received_[3] = {0, 0, 0};
  std::atomic<uint64_t> messages_sent_[3] = {0, 0, 0};
  std::atomic<uint64_t> bytes_received_{0};
  std::atomic<uint64_t> bytes_sent_{0};
};

}  // namespace mqtt
