// SPDX-License-Identifier: Apache-2.0
// Traffic counters of one worker: MQTT messages and bytes in and out, messages dropped by reason,
// for $SYS (node/sys) and /metrics (node/http), and the latency from sending a QoS 1/2 PUBLISH to
// a client to its PUBACK or PUBCOMP (/metrics only). One set per Shard, so that the publish path
// never shares a cache line or an atomic read-modify-write with another worker.
//
// Threading: written only by the owning worker's thread (Add: a relaxed load and store, no
// locked instruction); read from any thread with relaxed loads (Read). Totals over workers are
// monotonic per worker, not a consistent snapshot across workers.
#pragma once

#include <atomic>
#include <cstdint>

#include "node/base/latency_histogram.h"

namespace mqtt {

// Why a message was not delivered to a client (mqttd_messages_dropped_total{reason}). The
// cluster's per-peer outbox drops (outbox_full) are counted by the forwarder (cluster/forward.h).
enum class DropReason : uint8_t {
  kQueueFull,       // the session's queue was full (limits.queue_full_policy says which one)
  kOutboundBuffer,  // QoS 0 to a client that does not read: limits.max_outbound_buffer
  kExpired,         // 5.0 Message Expiry Interval elapsed before delivery
  kAcl,             // the ACL denies the receiver read access to the topic
  kTooLarge,        // larger than the receiver's 5.0 Maximum Packet Size [MQTT-3.1.2-25]
  kQuota,           // refused above the disk watermark (storage.min_free_disk)
};
inline constexpr int kDropReasons = 6;
// The metric label: queue_full, outbound_buffer, expired, acl, packet_too_large, quota.
inline const char* DropReasonName(DropReason reason) {
  static constexpr const char* kNames[kDropReasons] = {"queue_full", "outbound_buffer",  "expired",
                                                       "acl",        "packet_too_large", "quota"};
  return kNames[static_cast<int>(reason)];
}

struct TrafficTotals {
  uint64_t messages_received[3] = {0, 0, 0};  // PUBLISH packets from clients, by QoS
  uint64_t messages_sent[3] = {0, 0, 0};      // PUBLISH packets to clients (resends too), by QoS
  uint64_t bytes_received = 0;                // every MQTT packet read from clients
  uint64_t bytes_sent = 0;                    // PUBLISH, PUBACK and PUBREC packets written
  uint64_t dropped[kDropReasons] = {};        // by DropReason
  uint64_t throttled[2] = {0, 0};             // reading paused: message_rate, byte_rate

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
    for (int r = 0; r < kDropReasons; ++r) dropped[r] += o.dropped[r];
    throttled[0] += o.throttled[0];
    throttled[1] += o.throttled[1];
  }
};

class alignas(64) WorkerCounters {
 public:
  void MessageReceived(uint8_t qos) { Add(messages_received_[qos % 3], 1); }
  void MessageSent(uint8_t qos) { Add(messages_sent_[qos % 3], 1); }
  void BytesReceived(uint64_t n) { Add(bytes_received_, n); }
  void BytesSent(uint64_t n) { Add(bytes_sent_, n); }
  void Dropped(DropReason reason) { Add(dropped_[static_cast<int>(reason)], 1); }
  // Reading from a client paused by its rate: `bytes` false for message_rate, true for byte_rate.
  void Throttled(bool bytes) { Add(throttled_[bytes ? 1 : 0], 1); }
  // A CONNECT accepted (CONNACK 0 sent) on a `listener` (net::ListenerKind) connection with
  // protocol level `level` (3, 4, 5); and that connection's end (called once per accept).
  void ConnectionOpened(int listener, uint8_t level) {
    Add(opened_[ConnIndex(listener, level)], 1);
  }
  void ConnectionClosed(int listener, uint8_t level) {
    Add(closed_[ConnIndex(listener, level)], 1);
  }
  // Accepted and ended connections by [listener][level - 3], since start. A connection may
  // open on one worker and close on another: only sums over workers are meaningful.
  void ReadConnections(uint64_t opened[4][3], uint64_t closed[4][3]) const {
    for (int i = 0; i < kConnSlots; ++i) {
      opened[i / 3][i % 3] += opened_[i].load(std::memory_order_relaxed);
      closed[i / 3][i % 3] += closed_[i].load(std::memory_order_relaxed);
    }
  }

  // The shard's session gauges, set by its once-a-second sweep (Shard::Sweep).
  struct SessionGauges {
    uint64_t sessions = 0;  // connected or not
    uint64_t queued = 0;    // messages queued for sessions (in memory and on disk)
    uint64_t inflight = 0;  // QoS 1/2 messages sent and not acknowledged yet
    void Add(const SessionGauges& o) {
      sessions += o.sessions;
      queued += o.queued;
      inflight += o.inflight;
    }
  };
  void SetSessionGauges(const SessionGauges& g) {
    sessions_.store(g.sessions, std::memory_order_relaxed);
    queued_.store(g.queued, std::memory_order_relaxed);
    inflight_.store(g.inflight, std::memory_order_relaxed);
  }
  SessionGauges ReadSessionGauges() const {
    return {sessions_.load(std::memory_order_relaxed), queued_.load(std::memory_order_relaxed),
            inflight_.load(std::memory_order_relaxed)};
  }

  // A client acknowledged a QoS `qos` (1: PUBACK, 2: PUBCOMP) PUBLISH `ns` after it was sent.
  void AckLatency(uint8_t qos, int64_t ns) { ack_latency_[qos == 2 ? 1 : 0].Record(ns); }
  // The histogram of AckLatency for `qos` (1 or 2).
  LatencySnapshot ReadAckLatency(uint8_t qos) const {
    return ack_latency_[qos == 2 ? 1 : 0].Snapshot();
  }

  TrafficTotals Read() const {
    TrafficTotals t;
    for (int q = 0; q < 3; ++q) {
      t.messages_received[q] = messages_received_[q].load(std::memory_order_relaxed);
      t.messages_sent[q] = messages_sent_[q].load(std::memory_order_relaxed);
    }
    t.bytes_received = bytes_received_.load(std::memory_order_relaxed);
    t.bytes_sent = bytes_sent_.load(std::memory_order_relaxed);
    for (int r = 0; r < kDropReasons; ++r)
      t.dropped[r] = dropped_[r].load(std::memory_order_relaxed);
    for (int r = 0; r < 2; ++r) t.throttled[r] = throttled_[r].load(std::memory_order_relaxed);
    return t;
  }

 private:
  // Single writer: no fetch_add (a locked instruction) is needed.
  static void Add(std::atomic<uint64_t>& c, uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  static constexpr int kConnSlots = 4 * 3;
  static int ConnIndex(int listener, uint8_t level) {
    return (listener & 3) * 3 + (level >= 3 && level <= 5 ? level - 3 : 1);
  }

  std::atomic<uint64_t> messages_received_[3] = {0, 0, 0};
  std::atomic<uint64_t> messages_sent_[3] = {0, 0, 0};
  std::atomic<uint64_t> bytes_received_{0};
  std::atomic<uint64_t> bytes_sent_{0};
  std::atomic<uint64_t> dropped_[kDropReasons] = {};
  std::atomic<uint64_t> throttled_[2] = {};
  std::atomic<uint64_t> sessions_{0};
  std::atomic<uint64_t> queued_{0};
  std::atomic<uint64_t> inflight_{0};
  std::atomic<uint64_t> opened_[kConnSlots] = {};
  std::atomic<uint64_t> closed_[kConnSlots] = {};
  LatencyHistogram ack_latency_[2];  // [0] QoS 1, [1] QoS 2
};

}  // namespace mqtt
