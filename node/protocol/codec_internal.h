// SPDX-License-Identifier: Apache-2.0
// Internal to node/protocol: helpers shared by the codec_*.cc files (one per packet family).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "node/protocol/packets.h"
#include "node/protocol/wire.h"

// Evaluates `expr` (an absl::Status) and returns it from the enclosing function when not OK.
#define MQTT_RETURN_IF_ERROR(expr)                      \
  do {                                                  \
    if (absl::Status _status = (expr); !_status.ok()) { \
      return _status;                                   \
    }                                                   \
  } while (false)

namespace mqtt::internal {

// absl here is built with its own string_view (ABSL_OPTION_USE_STD_STRING_VIEW is 0), so
// std::string_view has to be converted before it goes into absl::StrCat.
inline absl::string_view AbslView(std::string_view s) { return {s.data(), s.size()}; }

// Malformed: `what` ran past the end of the packet body.
absl::Status Truncated(std::string_view what);

// A UTF-8 encoded string [MQTT-1.5.4]: two-byte length, bytes, IsValidMqttUtf8.
absl::Status ReadUtf8(wire::Reader* reader, std::string_view what, std::string_view* value);
absl::Status ReadUtf8(wire::Reader* reader, std::string_view what, std::string* value);
// Binary data [MQTT-1.5.6]: two-byte length and bytes, not checked.
absl::Status ReadBinary(wire::Reader* reader, std::string_view what, std::string* value);

// A packet identifier that must be non-zero [MQTT-2.3.1-1] (5.0: [MQTT-2.2.1-3]); zero is a
// protocol error (the packet parses, but the protocol forbids the value).
absl::Status ReadPacketId(wire::Reader* reader, uint16_t* packet_id);

// Trailing bytes after the last expected field make the packet malformed.
absl::Status ExpectEnd(const wire::Reader& reader, std::string_view packet);

// A non-empty topic filter [MQTT-4.7.3-1] in valid UTF-8; wildcard syntax is checked elsewhere.
absl::Status ReadTopicFilter(wire::Reader* reader, std::string* filter);

// Reason codes a sender may use in `type` (5.0 tables in 3.2.2.2, 3.4.2.1, ..., 3.15.2.1; for
// 3.x the CONNACK return codes 0-5 and SUBACK 0, 1, 2, 0x80). An unlisted code is a protocol
// error: the packet parses, but the spec forbids the value [MQTT-3.4.2-1] etc.
absl::Status CheckReasonCode(PacketType type, Version version, uint8_t code);

}  // namespace mqtt::internal
