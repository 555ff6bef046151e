// SPDX-License-Identifier: Apache-2.0
#include "node/session/publish_cache.h"

namespace mqtt {

// Find() answered the common case (the variant is encoded already): what is left is a new
// message, or a variant seen for the first or the second time.
const SharedPublish* PublishCache::FindSlow(const MessagePtr& message, Version version, uint8_t qos,
                                            bool retain) {
  if (message->payload.size() > kMaxPayload) return nullptr;
  if (message != message_) {
    message_ = message;
    for (Variant& variant : variants_) variant.state = State::kUnseen;
  }
  Variant& variant = variants_[Index(version, qos, retain)];
  switch (variant.state) {
    case State::kUnseen:
      variant.state = State::kSeenOnce;
      return nullptr;
    case State::kSeenOnce:
      variant.bytes.Encode(message->topic, message->payload, qos, retain,
                           version == Version::kV5 ? message->properties.get() : nullptr, version);
      variant.state = State::kEncoded;
      break;
    case State::kEncoded:
      break;
  }
  return &variant.bytes;
}

void PublishCache::Release() {
  message_.reset();
  for (Variant& variant : variants_) {
    variant.state = State::kUnseen;
    variant.bytes.Release();
  }
}

}  // namespace mqtt
