// SPDX-License-Identifier: Apache-2.0
// Encode once for fan-out: the PUBLISH of the message a worker is delivering, kept per
// (3.x or 5.0, QoS, RETAIN flag) so that its receivers get copies of one encoding instead of an
// encoding each (Client::SendPublish). Only for receivers that see the message's own bytes: no
// DUP, and for 5.0 no per-receiver property (Subscription Identifier, Message Expiry, Topic
// Alias). 3.1 and 3.1.1 share an encoding: their PUBLISH is the same.
//
// The first receiver of a variant is encoded by the caller as before (a message with one
// receiver costs nothing more); the second makes the shared encoding; the rest copy it. The
// entry holds its MessagePtr, so a message is never mistaken for another that reuses its
// address. Release() gives back the message and the bytes (the shard calls it once a second).
//
// Threading: one per worker (Shard), used on that worker only.
#pragma once

#include <array>
#include <cstdint>

#include "node/protocol/codec.h"
#include "node/protocol/message.h"

namespace mqtt {

class PublishCache {
 public:
  // Payloads above this are encoded per receiver: the copy costs what encoding costs.
  static constexpr size_t kMaxPayload = 64 * 1024;

  // The shared encoding of `message` for a receiver of `version` at `qos` seeing `retain`, or
  // null when the caller must encode it itself (the first receiver of this variant, or a large
  // message).
  // `qos` <= 2.
  const SharedPublish* Find(const MessagePtr& message, Version version, uint8_t qos, bool retain) {
    Variant& variant = variants_[Index(version, qos, retain)];
    if (message == message_ && variant.state == State::kEncoded) return &variant.bytes;
    return FindSlow(message, version, qos, retain);
  }

  void Release();

 private:
  enum class State : uint8_t { kUnseen, kSeenOnce, kEncoded };
  struct Variant {
    State state = State::kUnseen;
    SharedPublish bytes;
  };
  const SharedPublish* FindSlow(const MessagePtr& message, Version version, uint8_t qos,
                                bool retain);
  static size_t Index(Version version, uint8_t qos, bool retain) {
    return (version == Version::kV5 ? 6 : 0) + qos * 2 + (retain ? 1 : 0);
  }

  MessagePtr message_;  // kept alive: its address identifies it while cached
  std::array<Variant, 12> variants_;
};

}  // namespace mqtt
