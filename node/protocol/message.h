// An application message as the broker carries it from one publisher to many subscribers.
//
// Contract: immutable once published. Shared by every subscriber (and the retained store)
// through MessagePtr, across worker threads: only the fixed header, packet id and the per-
// subscriber properties differ per receiver, and those are built when encoding.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "node/protocol/packets.h"

namespace mqtt {

struct Message {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
  // 5.0 properties carried with the message (payload format, content type, response topic,
  // correlation data, user properties, message expiry); null when there are none.
  std::shared_ptr<const Properties> properties;
  // Client id of the publisher, for 5.0 No Local; empty for will and system messages.
  std::string publisher_id;
};

using MessagePtr = std::shared_ptr<const Message>;

}  // namespace mqtt
