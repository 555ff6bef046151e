// SPDX-License-Identifier: Apache-2.0
// Encode once for fan-out: the PUBLISH of the message a worker is delivering, kept per
// (3.x or 5.0, QoS, RETAIN flag) so that its receivers get copies of one encoding instead of an
// encoding each (Client::SendPublish). Only for receivers that see the message's own bytes: no
// DUP, and for 5.0 no per-receiver property (Subscription Identifier, Message Expiry, Topic
// Alias). 3.1 and 3.1.1 share an encoding: their PUBLISH is the same.
//
// The first receiver of a variant is encoded by the caller as before, so a message with one
// receiver costs no copy and no reference count; the second makes the shared encoding; the rest
// copy it. Encoded bytes are keyed on a MessagePtr the cache holds, so they are never handed
// out for another message that reuses the address. (The address of the message whose first
// receivers were seen is kept raw: a reused address only makes the encoding one receiver early.)
// Release() gives back the message and the bytes (the shard calls it once a second).
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

  // The shared encoding of `message` for a receiver of `version` at `qos` (<= 2) seeing
  // `retain`, or null when the caller must encode it itself (the first receiver of this
  // variant, or a large message).
  const SharedPublish* Find(const MessagePtr& message, Version version, uint8_t qos, bool retain) {
    const size_t index = Index(version, qos, retain);
    Variant& variant = variants_[index];
    if (message == message_ && variant.generation == generation_) return &variant.bytes;
    return FindSlow(message, version, qos, retain, index);
  }

  void Release();

 private:
  struct Variant {
    uint64_t generation = 0;  // == generation_: `bytes` encode message_
    SharedPublish bytes;
  };
  static size_t Index(Version version, uint8_t qos, bool retain) {
    return (version == Version::kV5 ? 6 : 0) + qos * 2 + (retain ? 1 : 0);
  }
  const SharedPublish* FindSlow(const MessagePtr& message, Version version, uint8_t qos,
                                bool retain, size_t index);

  MessagePtr message_;  // held: its address identifies it while its encodings are used
  uint64_t generation_ = 1;
  std::array<Variant, 12> variants_;
  const Message* seen_ = nullptr;  // never dereferenced; see the header comment
  uint16_t seen_variants_ = 0;     // bit per variant: a first receiver of seen_ was encoded
};

}  // namespace mqtt
