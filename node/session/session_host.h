// SPDX-License-Identifier: Apache-2.0
// What a Session needs from the outside, as two narrow interfaces, so that a session is built
// and tested without a broker, a worker or a socket (tests/unit/session/ uses fakes):
// - SessionStorage: this loop turn's storage batch and the rules around it (implemented by the
//   worker's Shard);
// - SessionClient: the client connected to the session, if any (implemented by Client).
//
// Threading: both are called only on the session's home worker.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "node/protocol/message.h"
#include "node/router/ack_token.h"
#include "node/session/worker_counters.h"
#include "storage/store.h"

namespace mqtt {

struct OutboundMessage;

// What a worker's sessions hold, kept up to date by the sessions as they change
// (Session::ReportGauges), so that the gauges never visit every session.
struct SessionTotals {
  int64_t queued = 0;  // messages queued, in memory and on disk
  int64_t inflight = 0;
};

class SessionStorage {
 public:
  // Null when nothing is persisted (then batch() is null too).
  virtual storage::Store* store() const = 0;
  // This turn's batch; written at the end of the turn, before messages go to other workers and
  // before any output is written, so nothing leaves the node that a crash could take back.
  virtual storage::Batch* batch() = 0;
  // Puts `message` in this turn's batch unless already there; returns its stored id (0 after a
  // storage failure).
  virtual uint64_t PutMessage(const Message& message) = 0;
  // Keeps `token` until this turn's batch is written (a publisher's acknowledgement waits).
  virtual void HoldUntilCommitted(AckTokenPtr token) = 0;
  // Writes the batch now, because a read is about to need what it holds. False on an error.
  virtual bool CommitNow() = 0;
  // A read or write failed: the node stops rather than acknowledge what it cannot keep.
  virtual void StorageFailed(const absl::Status& status) = 0;
  // A message for a session of this worker was dropped (the worker's counters).
  virtual void CountDrop(DropReason reason) = 0;
  // Session `session_id`'s expiry (MonotonicMs; 0: none) went from `old_ms` to `new_ms`: the
  // worker keeps an index of offline sessions by expiry instead of visiting them all.
  virtual void ExpiryChanged(uint64_t session_id, int64_t old_ms, int64_t new_ms) = 0;
  // The totals this worker's sessions add to; must outlive them.
  virtual SessionTotals* totals() = 0;

 protected:
  ~SessionStorage() = default;
};

// What SendPublish did with a message: sent, or why not (it is then dropped for this client).
enum class SendResult : uint8_t {
  kSent,
  kTooLarge,       // above the client's 5.0 Maximum Packet Size [MQTT-3.1.2-25]
  kNotAuthorized,  // the ACL denies the client read access to the topic
};

class SessionClient {
 public:
  // Encodes a PUBLISH, or sends nothing and says why.
  virtual SendResult SendPublish(const OutboundMessage& out, bool dup, uint16_t packet_id) = 0;
  virtual void SendPubrel(uint16_t packet_id) = 0;
  // Output not yet written (QoS 0 is dropped above the outbound buffer limit).
  virtual size_t unsent_bytes() const = 0;
  // Another connection took the session over [MQTT-3.1.4-2]: stop driving it and close (5.0:
  // DISCONNECT 0x8E). `resumed`: the new connection continues the session, so a delayed will of
  // this one is not sent [MQTT-3.1.3-9].
  virtual void TakenOver(bool resumed) = 0;

 protected:
  ~SessionClient() = default;
};

}  // namespace mqtt
