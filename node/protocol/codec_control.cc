// SPDX-License-Identifier: Apache-2.0
// PINGREQ, PINGRESP, DISCONNECT and AUTH (sections 3.12 to 3.15).
#include <string_view>

#include "node/protocol/codec.h"
#include "node/protocol/codec_internal.h"
#include "node/protocol/properties.h"

namespace mqtt {
namespace {

using internal::PropertyScope;
using wire::Reader;

// Reason code + properties, as DISCONNECT and AUTH carry them. The caller handles the empty
// body (reason 0x00, no properties).
absl::Status ReadReasonAndProperties(Reader* reader, PacketType type, PropertyScope scope,
                                     uint8_t* reason_code, Properties* properties) {
  if (!reader->ReadByte(reason_code)) return internal::Truncated("reason code");
  MQTT_RETURN_IF_ERROR(internal::CheckReasonCode(type, Version::kV5, *reason_code));
  MQTT_RETURN_IF_ERROR(internal::DecodeProperties(reader, scope, properties));
  return internal::ExpectEnd(*reader, type == PacketType::kAuth ? "AUTH" : "DISCONNECT");
}

// Writes DISCONNECT or AUTH in the long form: reason code, property length, properties.
void PutReasonAndProperties(PacketType type, uint8_t reason_code, const Properties& properties,
                            size_t properties_size, std::string* out) {
  const size_t length = 1 + internal::PropertyBlockSize(properties_size);
  wire::PutFixedHeader(static_cast<uint8_t>(type) << 4, static_cast<uint32_t>(length), out);
  wire::PutByte(reason_code, out);
  internal::PutProperties(properties, properties_size, out);
}

void PutEmpty(PacketType type, std::string* out) {
  wire::PutFixedHeader(static_cast<uint8_t>(type) << 4, 0, out);
}

}  // namespace

absl::Status DecodePing(std::string_view body) {
  if (!body.empty()) return MalformedError("PINGREQ/PINGRESP with a body");
  return absl::OkStatus();
}

void EncodePingreq(std::string* out) { PutEmpty(PacketType::kPingreq, out); }

void EncodePingresp(std::string* out) { PutEmpty(PacketType::kPingresp, out); }

// 3.x DISCONNECT has no body. In 5.0 the reason code may be omitted (remaining length 0, reason
// 0x00) and so may the property length (remaining length 1) (3.14.2.1, 3.14.2.2.1).
absl::StatusOr<Disconnect> DecodeDisconnect(std::string_view body, Version version) {
  Disconnect disconnect;
  if (version != Version::kV5) {
    if (!body.empty()) return MalformedError("DISCONNECT with a body before MQTT 5.0");
    return disconnect;
  }
  if (body.empty()) return disconnect;
  Reader reader(body);
  if (body.size() == 1) {
    reader.ReadByte(&disconnect.reason_code);  // cannot fail: one byte
    MQTT_RETURN_IF_ERROR(
        internal::CheckReasonCode(PacketType::kDisconnect, version, disconnect.reason_code));
    return disconnect;
  }
  MQTT_RETURN_IF_ERROR(ReadReasonAndProperties(&reader, PacketType::kDisconnect,
                                               PropertyScope::kDisconnect, &disconnect.reason_code,
                                               &disconnect.properties));
  return disconnect;
}

// Shortest form: empty for reason 0 without properties, reason only without properties.
void EncodeDisconnect(const Disconnect& disconnect, Version version, std::string* out) {
  const size_t properties_size =
      version == Version::kV5 ? internal::PropertiesSize(disconnect.properties) : 0;
  if (version != Version::kV5 || (disconnect.reason_code == 0 && properties_size == 0)) {
    return PutEmpty(PacketType::kDisconnect, out);
  }
  if (properties_size == 0) {
    wire::PutFixedHeader(static_cast<uint8_t>(PacketType::kDisconnect) << 4, 1, out);
    return wire::PutByte(disconnect.reason_code, out);
  }
  PutReasonAndProperties(PacketType::kDisconnect, disconnect.reason_code, disconnect.properties,
                         properties_size, out);
}

// AUTH exists only in 5.0. Remaining length 0 means reason 0x00 without properties; otherwise
// the property length must be there (3.15.2.1 allows no other short form), and the properties
// must name the authentication method (3.15.2.2.2).
absl::StatusOr<Auth> DecodeAuth(std::string_view body, Version version) {
  if (version != Version::kV5) return MalformedError("AUTH before MQTT 5.0");
  Auth auth;
  if (body.empty()) return auth;
  Reader reader(body);
  MQTT_RETURN_IF_ERROR(ReadReasonAndProperties(&reader, PacketType::kAuth, PropertyScope::kAuth,
                                               &auth.reason_code, &auth.properties));
  if (!auth.properties.authentication_method) {
    return ProtocolError("AUTH without authentication method");
  }
  return auth;
}

void EncodeAuth(const Auth& auth, std::string* out) {
  const size_t properties_size = internal::PropertiesSize(auth.properties);
  if (auth.reason_code == 0 && properties_size == 0) return PutEmpty(PacketType::kAuth, out);
  PutReasonAndProperties(PacketType::kAuth, auth.reason_code, auth.properties, properties_size,
                         out);
}

}  // namespace mqtt
