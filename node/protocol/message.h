// SPDX-License-Identifier: Apache-2.0
// An application message as the broker carries it from one publisher to many subscribers.
//
// Contract: immutable once published. Shared by every subscriber (and the retained store)
// through MessagePtr, across worker threads: only the fixed header, packet id and the per-
// subscriber properties differ per receiver, and those are built when encoding.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "node/protocol/packets.h"

namespace mqtt {

// Which publish a message is a copy of, cluster-wide: `node` is random per process and `seq`
// unique within it (NewOriginId). Zero on a single node, which never needs it: a session that
// moves between nodes uses it to drop a copy that reached it twice (issue 12).
struct OriginId {
  uint64_t node = 0;
  uint64_t seq = 0;
  bool empty() const { return node == 0 && seq == 0; }
  bool operator==(const OriginId&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const OriginId& id) {
    return H::combine(std::move(h), id.node, id.seq);
  }
};
// A fresh id; any thread, no shared atomic per call (each thread takes blocks of sequence numbers).
OriginId NewOriginId();

struct Message {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
  // 5.0 properties carried with the message (payload format, content type, response topic,
  // correlation data, user properties, message expiry); null when there are none.
  std::shared_ptr<const Properties> properties;
  // Client id of the publisher (hash strategies of shared subscriptions, logs); empty for
  // system messages. The session id serves 5.0 No Local.
  std::string publisher_id;
  uint64_t publisher_session_id = 0;
  // 5.0 Message Expiry: steady-clock deadline in ms (MonotonicMs()); 0 = never expires.
  int64_t expires_at_ms = 0;
  OriginId origin;
  // The publisher's AckToken is the only record of this message's receipt: nothing in the
  // publishing worker's batch refers to it (a local client's QoS 1 PUBLISH; not QoS 2, whose
  // inbound packet id is stored, nor a forwarded message, whose progress counter is, nor a will,
  // whose removal from the session record is). Then a persistent session on another worker needs
  // no copy in the publishing worker's outbox: the acknowledgement waits for that worker's write,
  // and a crash before it makes the publisher send the message again.
  bool ack_is_only_record = false;
  // Id of the stored copy (storage::Store::NewMessageId), set by the first worker that persists
  // the message for a persistent session; 0 until then. Atomic: workers race to set it, and
  // the loser's id is simply not used.
  struct StoredId {
    mutable std::atomic<uint64_t> value{0};
    StoredId() = default;
    StoredId(const StoredId& other) : value(other.value.load()) {}
    StoredId& operator=(const StoredId& other) {
      value.store(other.value.load());
      return *this;
    }
  } stored_id;
};

// Milliseconds of a monotonic clock, the time base of expires_at_ms.
int64_t MonotonicMs();
// Milliseconds since the Unix epoch: the time base of deadlines written to storage.
uint64_t UnixMs();

using MessagePtr = std::shared_ptr<const Message>;

}  // namespace mqtt
