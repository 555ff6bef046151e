// SPDX-License-Identifier: Apache-2.0
// AckToken: "this publish is durable everywhere it must be", as a reference-counted completion
// that any origin of a publish can wait on: a local client (its PUBACK/PUBREC), a peer node's
// forwarding stream, the HTTP publish API, a bridge.
//
// One token per QoS 1/2 publish. Every party that must make part of the message durable (the
// publisher's batch with its inbound QoS 2 id or retained copy, the batch of each worker that
// queues it for a persistent session, a remote node that has yet to confirm) holds a reference
// until that is done; a delivery that persists nothing drops its reference at once. When the
// last reference goes, the listener is told that acknowledgement `seq` may be sent.
//
// Threading: a token may be released on any thread. OnDurable runs on the listener's executor
// (posted there unless the release already happens on it), or inline on the releasing thread
// when the executor is null (the listener is then thread-safe).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "node/base/executor.h"

namespace mqtt {

class AckListener {
 public:
  // Acknowledgement `seq` may go: everything that had to be durable is.
  virtual void OnDurable(uint64_t seq) = 0;

 protected:
  ~AckListener() = default;
};

class AckToken {
 public:
  // `listener` may expire first (a client that disconnected): then nobody is told.
  AckToken(Executor* executor, std::weak_ptr<AckListener> listener, uint64_t seq)
      : executor_(executor), listener_(std::move(listener)), seq_(seq) {}
  ~AckToken();
  AckToken(const AckToken&) = delete;
  AckToken& operator=(const AckToken&) = delete;

  // The message could not be made durable: no acknowledgement when the token goes; the
  // publisher re-sends (after reconnecting, or on its forwarding timeout). Any thread, any
  // number of times (two workers whose writes fail may cancel one token at once).
  void Cancel() { cancelled_.store(true, std::memory_order_relaxed); }

 private:
  Executor* const executor_;
  std::weak_ptr<AckListener> listener_;  // read by the destructor only
  const uint64_t seq_;
  // The last reference's release orders every Cancel before the destructor reads this.
  std::atomic<bool> cancelled_{false};
};

using AckTokenPtr = std::shared_ptr<AckToken>;

}  // namespace mqtt
