// SPDX-License-Identifier: Apache-2.0
#include "node/session/publish_cache.h"

namespace mqtt {

// Find() answered the common case (the variant is encoded already): what is left is a variant
// asked for the first or the second time.
const SharedPublish* PublishCache::FindSlow(const MessagePtr& message, Version version, uint8_t qos,
                                            bool retain, size_t index) {
  if (message->payload.size() > kMaxPayload) return nullptr;
  const uint16_t bit = static_cast<uint16_t>(1u << index);
  if (message.get() != seen_) {
    seen_ = message.get();
    seen_variants_ = 0;
  }
  if ((seen_variants_ & bit) == 0) {
    seen_variants_ |= bit;
    return nullptr;
  }
  if (message != message_) {
    message_ = message;
    ++generation_;  // every variant's bytes are of the previous message
  }
  Variant& variant = variants_[index];
  variant.bytes.Encode(message->topic, message->payload, qos, retain,
                       version == Version::kV5 ? message->properties.get() : nullptr, version);
  variant.generation = generation_;
  return &variant.bytes;
}

void PublishCache::Release() {
  message_.reset();
  ++generation_;
  seen_ = nullptr;
  seen_variants_ = 0;
  for (Variant& variant : variants_) variant.bytes.Release();
}

}  // namespace mqtt
