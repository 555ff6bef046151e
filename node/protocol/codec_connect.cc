// SPDX-License-Identifier: Apache-2.0
// CONNECT and CONNACK (sections 3.1 and 3.2 of 3.1.1 and 5.0; 3.1 for "MQIsdp").
#include <string_view>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "node/protocol/codec.h"
#include "node/protocol/codec_internal.h"
#include "node/protocol/properties.h"

namespace mqtt {
namespace {

using internal::PropertyScope;
using wire::Reader;

// CONNECT flags byte, 3.1.2.3.
constexpr uint8_t kReservedFlag = 0x01;
constexpr uint8_t kCleanStartFlag = 0x02;
constexpr uint8_t kWillFlag = 0x04;
constexpr int kWillQosShift = 3;
constexpr uint8_t kWillRetainFlag = 0x20;
constexpr uint8_t kPasswordFlag = 0x40;
constexpr uint8_t kUsernameFlag = 0x80;

constexpr std::string_view kMqttName = "MQTT";
constexpr std::string_view kMqisdpName = "MQIsdp";

// Protocol name and level. A truncated field is malformed; an unknown name is kNotFound (not an
// MQTT client: closed without an answer [MQTT-3.1.2-1]); a known name with a level it does not
// have is kUnimplemented so the caller can answer CONNACK 0x01 [MQTT-3.1.2-2].
absl::Status ReadProtocol(Reader* reader, Version* version) {
  std::string_view name;
  uint8_t level;
  if (!reader->ReadLengthPrefixed(&name)) return internal::Truncated("protocol name");
  if (!reader->ReadByte(&level)) return internal::Truncated("protocol level");
  if (name == kMqttName && (level == 4 || level == 5)) {
    *version = static_cast<Version>(level);
  } else if (name == kMqisdpName && level == 3) {
    *version = Version::kV31;
  } else if (name != kMqttName && name != kMqisdpName) {
    return absl::NotFoundError(absl::StrCat("protocol name \"",
                                            absl::CHexEscape(internal::AbslView(name)),
                                            "\" is not MQTT [MQTT-3.1.2-1]"));
  } else {
    return absl::UnimplementedError(absl::StrCat("unsupported protocol \"",
                                                 absl::CHexEscape(internal::AbslView(name)),
                                                 "\" level ", level, " [MQTT-3.1.2-2]"));
  }
  return absl::OkStatus();
}

absl::Status CheckConnectFlags(uint8_t flags, Version version) {
  if (flags & kReservedFlag) return MalformedError("CONNECT reserved flag set [MQTT-3.1.2-3]");
  const uint8_t will_qos = (flags >> kWillQosShift) & 0x03;
  if ((flags & kWillFlag) == 0) {
    if (will_qos != 0) return MalformedError("will QoS without will flag [MQTT-3.1.2-13]");
    if (flags & kWillRetainFlag) {
      return MalformedError("will retain without will flag [MQTT-3.1.2-15]");
    }
  } else if (will_qos == 3) {
    return MalformedError("will QoS 3 [MQTT-3.1.2-14]");
  }
  // 5.0 dropped this rule so that a password can carry a token without a user name.
  if (version != Version::kV5 && (flags & kPasswordFlag) && !(flags & kUsernameFlag)) {
    return MalformedError("password flag without user name flag [MQTT-3.1.2-22]");
  }
  return absl::OkStatus();
}

absl::Status ReadWill(Reader* reader, uint8_t flags, Version version, Will* will) {
  will->qos = (flags >> kWillQosShift) & 0x03;
  will->retain = (flags & kWillRetainFlag) != 0;
  if (version == Version::kV5) {
    MQTT_RETURN_IF_ERROR(
        internal::DecodeProperties(reader, PropertyScope::kWill, &will->properties));
  }
  MQTT_RETURN_IF_ERROR(internal::ReadUtf8(reader, "will topic", &will->topic));
  return internal::ReadBinary(reader, "will payload", &will->payload);
}

absl::Status ReadConnectProperties(Reader* reader, Properties* properties) {
  MQTT_RETURN_IF_ERROR(internal::DecodeProperties(reader, PropertyScope::kConnect, properties));
  if (properties->authentication_data && !properties->authentication_method) {
    return ProtocolError("authentication data without authentication method");
  }
  return absl::OkStatus();
}

// Client identifier, will, user name, password, in that order [MQTT-3.1.3-1].
absl::Status ReadConnectPayload(Reader* reader, uint8_t flags, Connect* connect) {
  MQTT_RETURN_IF_ERROR(internal::ReadUtf8(reader, "client identifier", &connect->client_id));
  if (flags & kWillFlag) {
    MQTT_RETURN_IF_ERROR(ReadWill(reader, flags, connect->version, &connect->will.emplace()));
  }
  if (flags & kUsernameFlag) {
    MQTT_RETURN_IF_ERROR(internal::ReadUtf8(reader, "user name", &connect->username.emplace()));
  }
  if (flags & kPasswordFlag) {
    MQTT_RETURN_IF_ERROR(internal::ReadBinary(reader, "password", &connect->password.emplace()));
  }
  return internal::ExpectEnd(*reader, "CONNECT");
}

uint8_t ConnectFlags(const Connect& connect) {
  uint8_t flags = connect.clean_start ? kCleanStartFlag : 0;
  if (connect.will) {
    flags |= kWillFlag | static_cast<uint8_t>(connect.will->qos << kWillQosShift);
    if (connect.will->retain) flags |= kWillRetainFlag;
  }
  if (connect.username) flags |= kUsernameFlag;
  if (connect.password) flags |= kPasswordFlag;
  return flags;
}

// Remaining length of `connect`, given the sizes of its two property blocks (0 for 3.x).
size_t ConnectBodySize(const Connect& connect, size_t properties_size, size_t will_size) {
  const bool v5 = connect.version == Version::kV5;
  std::string_view name = connect.version == Version::kV31 ? kMqisdpName : kMqttName;
  size_t size = wire::LengthPrefixedSize(name) + 1 + 1 + 2;  // name, level, flags, keep alive
  if (v5) size += internal::PropertyBlockSize(properties_size);
  size += wire::LengthPrefixedSize(connect.client_id);
  if (connect.will) {
    if (v5) size += internal::PropertyBlockSize(will_size);
    size += wire::LengthPrefixedSize(connect.will->topic);
    size += wire::LengthPrefixedSize(connect.will->payload);
  }
  if (connect.username) size += wire::LengthPrefixedSize(*connect.username);
  if (connect.password) size += wire::LengthPrefixedSize(*connect.password);
  return size;
}

}  // namespace

absl::StatusOr<Connect> DecodeConnect(std::string_view body) {
  Reader reader(body);
  Connect connect;
  MQTT_RETURN_IF_ERROR(ReadProtocol(&reader, &connect.version));
  uint8_t flags;
  if (!reader.ReadByte(&flags)) return internal::Truncated("connect flags");
  MQTT_RETURN_IF_ERROR(CheckConnectFlags(flags, connect.version));
  connect.clean_start = (flags & kCleanStartFlag) != 0;
  if (!reader.ReadU16(&connect.keep_alive)) return internal::Truncated("keep alive");
  if (connect.version == Version::kV5) {
    MQTT_RETURN_IF_ERROR(ReadConnectProperties(&reader, &connect.properties));
  }
  MQTT_RETURN_IF_ERROR(ReadConnectPayload(&reader, flags, &connect));
  return connect;
}

void EncodeConnect(const Connect& connect, std::string* out) {
  const bool v5 = connect.version == Version::kV5;
  const size_t properties_size = v5 ? internal::PropertiesSize(connect.properties) : 0;
  const size_t will_size =
      v5 && connect.will ? internal::PropertiesSize(connect.will->properties) : 0;
  const size_t length = ConnectBodySize(connect, properties_size, will_size);
  wire::PutFixedHeader(static_cast<uint8_t>(PacketType::kConnect) << 4,
                       static_cast<uint32_t>(length), out);
  wire::PutLengthPrefixed(connect.version == Version::kV31 ? kMqisdpName : kMqttName, out);
  wire::PutByte(static_cast<uint8_t>(connect.version), out);
  wire::PutByte(ConnectFlags(connect), out);
  wire::PutU16(connect.keep_alive, out);
  if (v5) internal::PutProperties(connect.properties, properties_size, out);
  wire::PutLengthPrefixed(connect.client_id, out);
  if (connect.will) {
    if (v5) internal::PutProperties(connect.will->properties, will_size, out);
    wire::PutLengthPrefixed(connect.will->topic, out);
    wire::PutLengthPrefixed(connect.will->payload, out);
  }
  if (connect.username) wire::PutLengthPrefixed(*connect.username, out);
  if (connect.password) wire::PutLengthPrefixed(*connect.password, out);
}

absl::StatusOr<Connack> DecodeConnack(std::string_view body, Version version) {
  Reader reader(body);
  Connack connack;
  uint8_t flags;
  if (!reader.ReadByte(&flags)) return internal::Truncated("connect acknowledge flags");
  if (!reader.ReadByte(&connack.reason_code)) return internal::Truncated("CONNACK reason code");
  // In 3.1 the first byte is reserved and unused; Session Present came with 3.1.1.
  if (version == Version::kV31) flags = 0;
  if (flags & 0xFE) return MalformedError("CONNACK reserved flags set [MQTT-3.2.2-1]");
  connack.session_present = (flags & 0x01) != 0;
  MQTT_RETURN_IF_ERROR(
      internal::CheckReasonCode(PacketType::kConnack, version, connack.reason_code));
  if (connack.session_present && connack.reason_code != 0) {
    return ProtocolError("session present with a non-zero reason code [MQTT-3.2.2-4]");
  }
  if (version == Version::kV5) {
    MQTT_RETURN_IF_ERROR(
        internal::DecodeProperties(&reader, PropertyScope::kConnack, &connack.properties));
  }
  MQTT_RETURN_IF_ERROR(internal::ExpectEnd(reader, "CONNACK"));
  return connack;
}

void EncodeConnack(const Connack& connack, Version version, std::string* out) {
  const bool v5 = version == Version::kV5;
  const size_t properties_size = v5 ? internal::PropertiesSize(connack.properties) : 0;
  const size_t length = 2 + (v5 ? internal::PropertyBlockSize(properties_size) : 0);
  wire::PutFixedHeader(static_cast<uint8_t>(PacketType::kConnack) << 4,
                       static_cast<uint32_t>(length), out);
  const bool session_present = connack.session_present && version != Version::kV31;
  wire::PutByte(session_present ? 0x01 : 0x00, out);
  wire::PutByte(connack.reason_code, out);
  if (v5) internal::PutProperties(connack.properties, properties_size, out);
}

}  // namespace mqtt
