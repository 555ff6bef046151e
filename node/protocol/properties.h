// SPDX-License-Identifier: Apache-2.0
// Internal to node/protocol: MQTT 5.0 properties (section 2.2.2), decoded and encoded from one
// table (properties.cc) that gives each property its identifier, wire type, the packets it may
// appear in and where it lives in `Properties`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "node/protocol/packets.h"
#include "node/protocol/wire.h"

namespace mqtt::internal {

// Where a property block sits: one per packet kind, plus the will properties of CONNECT.
// PUBACK, PUBREC, PUBREL and PUBCOMP accept the same properties, hence one scope.
enum class PropertyScope : uint8_t {
  kConnect,
  kConnack,
  kPublish,
  kWill,
  kPubAck,
  kSubscribe,
  kSuback,
  kUnsubscribe,
  kUnsuback,
  kDisconnect,
  kAuth,
};

// Reads a property length and the properties it covers into `*properties` (which starts empty).
// Malformed: truncated block or value, unknown identifier, invalid UTF-8. Protocol error:
// property not allowed in `scope`, duplicate (except User Property, and Subscription Identifier
// in PUBLISH), or a value the spec forbids (0 where it must be non-zero, a byte other than 0/1).
absl::Status DecodeProperties(wire::Reader* reader, PropertyScope scope, Properties* properties);

// Bytes of the properties themselves, without the property length in front.
size_t PropertiesSize(const Properties& properties);

// Property length (varint) + property block bytes.
inline size_t PropertyBlockSize(size_t properties_size) {
  return wire::VarIntSize(static_cast<uint32_t>(properties_size)) + properties_size;
}

// Writes the property length `properties_size` (== PropertiesSize(properties)) and every present
// property, in table order; user properties and subscription identifiers in their order.
void PutProperties(const Properties& properties, size_t properties_size, std::string* out);

}  // namespace mqtt::internal
