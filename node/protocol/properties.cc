#include "node/protocol/properties.h"

#include <array>
#include <initializer_list>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "node/protocol/codec.h"
#include "node/protocol/codec_internal.h"

namespace mqtt::internal {
namespace {

using wire::Reader;

// Data representation of a property value (section 1.5; 2.2.2.2 table 2-4).
enum class WireType : uint8_t {
  kByte,
  kTwoByteInt,
  kFourByteInt,
  kVarInt,
  kUtf8,
  kBinary,
  kStringPair,
};

constexpr uint16_t Bit(PropertyScope scope) { return uint16_t{1} << static_cast<int>(scope); }

constexpr uint16_t In(std::initializer_list<PropertyScope> scopes) {
  uint16_t mask = 0;
  for (PropertyScope scope : scopes) mask |= Bit(scope);
  return mask;
}

using S = PropertyScope;
using P = Properties;

// One row of the property table. Exactly one member pointer is set: the one matching `type`
// (kUtf8 and kBinary share `str`). Every 5.0 byte property is a 0/1 flag, so kByte values other
// than 0 and 1 are protocol errors.
struct PropertyDef {
  uint8_t id;
  WireType type;
  const char* name;
  uint16_t scopes;          // PropertyScope bits where the property may appear
  uint16_t repeatable = 0;  // scopes where it may appear more than once
  bool nonzero = false;     // the value 0 is a protocol error
  std::optional<uint8_t> P::*byte = nullptr;
  std::optional<uint16_t> P::*two = nullptr;
  std::optional<uint32_t> P::*four = nullptr;
  std::optional<std::string> P::*str = nullptr;
  std::vector<uint32_t> P::*varints = nullptr;
  std::vector<UserProperty> P::*pairs = nullptr;
};

constexpr uint16_t kAllScopes = (1u << (static_cast<int>(S::kAuth) + 1)) - 1;
constexpr uint16_t kMessage = In({S::kPublish, S::kWill});
constexpr uint16_t kReasonStringScopes =
    In({S::kConnack, S::kPubAck, S::kSuback, S::kUnsuback, S::kDisconnect, S::kAuth});

// MQTT 5.0 section 2.2.2.2, table 2-4, in identifier order (also the encode order).
constexpr PropertyDef kProperties[] = {
    {.id = 0x01,
     .type = WireType::kByte,
     .name = "payload format indicator",
     .scopes = kMessage,
     .byte = &P::payload_format_indicator},
    {.id = 0x02,
     .type = WireType::kFourByteInt,
     .name = "message expiry interval",
     .scopes = kMessage,
     .four = &P::message_expiry_interval},
    {.id = 0x03,
     .type = WireType::kUtf8,
     .name = "content type",
     .scopes = kMessage,
     .str = &P::content_type},
    {.id = 0x08,
     .type = WireType::kUtf8,
     .name = "response topic",
     .scopes = kMessage,
     .str = &P::response_topic},
    {.id = 0x09,
     .type = WireType::kBinary,
     .name = "correlation data",
     .scopes = kMessage,
     .str = &P::correlation_data},
    {.id = 0x0B,
     .type = WireType::kVarInt,
     .name = "subscription identifier",
     .scopes = In({S::kPublish, S::kSubscribe}),
     .repeatable = Bit(S::kPublish),
     .nonzero = true,
     .varints = &P::subscription_identifiers},
    {.id = 0x11,
     .type = WireType::kFourByteInt,
     .name = "session expiry interval",
     .scopes = In({S::kConnect, S::kConnack, S::kDisconnect}),
     .four = &P::session_expiry_interval},
    {.id = 0x12,
     .type = WireType::kUtf8,
     .name = "assigned client identifier",
     .scopes = Bit(S::kConnack),
     .str = &P::assigned_client_identifier},
    {.id = 0x13,
     .type = WireType::kTwoByteInt,
     .name = "server keep alive",
     .scopes = Bit(S::kConnack),
     .two = &P::server_keep_alive},
    {.id = 0x15,
     .type = WireType::kUtf8,
     .name = "authentication method",
     .scopes = In({S::kConnect, S::kConnack, S::kAuth}),
     .str = &P::authentication_method},
    {.id = 0x16,
     .type = WireType::kBinary,
     .name = "authentication data",
     .scopes = In({S::kConnect, S::kConnack, S::kAuth}),
     .str = &P::authentication_data},
    {.id = 0x17,
     .type = WireType::kByte,
     .name = "request problem information",
     .scopes = Bit(S::kConnect),
     .byte = &P::request_problem_information},
    {.id = 0x18,
     .type = WireType::kFourByteInt,
     .name = "will delay interval",
     .scopes = Bit(S::kWill),
     .four = &P::will_delay_interval},
    {.id = 0x19,
     .type = WireType::kByte,
     .name = "request response information",
     .scopes = Bit(S::kConnect),
     .byte = &P::request_response_information},
    {.id = 0x1A,
     .type = WireType::kUtf8,
     .name = "response information",
     .scopes = Bit(S::kConnack),
     .str = &P::response_information},
    {.id = 0x1C,
     .type = WireType::kUtf8,
     .name = "server reference",
     .scopes = In({S::kConnack, S::kDisconnect}),
     .str = &P::server_reference},
    {.id = 0x1F,
     .type = WireType::kUtf8,
     .name = "reason string",
     .scopes = kReasonStringScopes,
     .str = &P::reason_string},
    {.id = 0x21,
     .type = WireType::kTwoByteInt,
     .name = "receive maximum",
     .scopes = In({S::kConnect, S::kConnack}),
     .nonzero = true,
     .two = &P::receive_maximum},
    {.id = 0x22,
     .type = WireType::kTwoByteInt,
     .name = "topic alias maximum",
     .scopes = In({S::kConnect, S::kConnack}),
     .two = &P::topic_alias_maximum},
    {.id = 0x23,
     .type = WireType::kTwoByteInt,
     .name = "topic alias",
     .scopes = Bit(S::kPublish),
     .nonzero = true,
     .two = &P::topic_alias},
    {.id = 0x24,
     .type = WireType::kByte,
     .name = "maximum QoS",
     .scopes = Bit(S::kConnack),
     .byte = &P::maximum_qos},
    {.id = 0x25,
     .type = WireType::kByte,
     .name = "retain available",
     .scopes = Bit(S::kConnack),
     .byte = &P::retain_available},
    {.id = 0x26,
     .type = WireType::kStringPair,
     .name = "user property",
     .scopes = kAllScopes,
     .repeatable = kAllScopes,
     .pairs = &P::user_properties},
    {.id = 0x27,
     .type = WireType::kFourByteInt,
     .name = "maximum packet size",
     .scopes = In({S::kConnect, S::kConnack}),
     .nonzero = true,
     .four = &P::maximum_packet_size},
    {.id = 0x28,
     .type = WireType::kByte,
     .name = "wildcard subscription available",
     .scopes = Bit(S::kConnack),
     .byte = &P::wildcard_subscription_available},
    {.id = 0x29,
     .type = WireType::kByte,
     .name = "subscription identifier available",
     .scopes = Bit(S::kConnack),
     .byte = &P::subscription_identifier_available},
    {.id = 0x2A,
     .type = WireType::kByte,
     .name = "shared subscription available",
     .scopes = Bit(S::kConnack),
     .byte = &P::shared_subscription_available},
};

// Identifier -> index into kProperties, -1 when unknown. All 5.0 identifiers are below 0x80,
// so a one-byte read covers the variable byte integer the spec defines them as.
constexpr std::array<int8_t, 256> kIndexById = [] {
  std::array<int8_t, 256> index{};
  index.fill(-1);
  for (size_t i = 0; i < std::size(kProperties); ++i) {
    index[kProperties[i].id] = static_cast<int8_t>(i);
  }
  return index;
}();

constexpr const char* kScopeNames[] = {
    "CONNECT",   "CONNACK", "PUBLISH",     "will properties", "PUBACK/PUBREC/PUBREL/PUBCOMP",
    "SUBSCRIBE", "SUBACK",  "UNSUBSCRIBE", "UNSUBACK",        "DISCONNECT",
    "AUTH"};

absl::Status Duplicate(const PropertyDef& def) {
  return ProtocolError(absl::StrCat(def.name, " included more than once"));
}

template <typename T>
absl::Status StoreOnce(const PropertyDef& def, T value, std::optional<T>* slot) {
  if (slot->has_value()) return Duplicate(def);
  if (def.nonzero && value == 0) return ProtocolError(absl::StrCat(def.name, " is 0"));
  *slot = value;
  return absl::OkStatus();
}

absl::Status DecodeByte(const PropertyDef& def, Reader* reader, Properties* properties) {
  uint8_t value;
  if (!reader->ReadByte(&value)) return Truncated(def.name);
  if (value > 1) return ProtocolError(absl::StrCat(def.name, " is ", value, ", not 0 or 1"));
  return StoreOnce(def, value, &(properties->*def.byte));
}

absl::Status DecodeTwoByteInt(const PropertyDef& def, Reader* reader, Properties* properties) {
  uint16_t value;
  if (!reader->ReadU16(&value)) return Truncated(def.name);
  return StoreOnce(def, value, &(properties->*def.two));
}

absl::Status DecodeFourByteInt(const PropertyDef& def, Reader* reader, Properties* properties) {
  uint32_t value;
  if (!reader->ReadU32(&value)) return Truncated(def.name);
  return StoreOnce(def, value, &(properties->*def.four));
}

absl::Status DecodeVarInt(const PropertyDef& def, PropertyScope scope, Reader* reader,
                          Properties* properties) {
  uint32_t value;
  if (!reader->ReadVarInt(&value)) return MalformedError(absl::StrCat("invalid ", def.name));
  std::vector<uint32_t>& values = properties->*def.varints;
  if (!values.empty() && (def.repeatable & Bit(scope)) == 0) return Duplicate(def);
  if (def.nonzero && value == 0) return ProtocolError(absl::StrCat(def.name, " is 0"));
  values.push_back(value);
  return absl::OkStatus();
}

absl::Status DecodeString(const PropertyDef& def, Reader* reader, Properties* properties) {
  std::string_view value;
  if (def.type == WireType::kUtf8) {
    MQTT_RETURN_IF_ERROR(ReadUtf8(reader, def.name, &value));
  } else if (!reader->ReadLengthPrefixed(&value)) {
    return Truncated(def.name);
  }
  std::optional<std::string>& slot = properties->*def.str;
  if (slot.has_value()) return Duplicate(def);
  slot.emplace(value);
  return absl::OkStatus();
}

absl::Status DecodeStringPair(const PropertyDef& def, Reader* reader, Properties* properties) {
  std::string_view key;
  std::string_view value;
  MQTT_RETURN_IF_ERROR(ReadUtf8(reader, "user property name", &key));
  MQTT_RETURN_IF_ERROR(ReadUtf8(reader, "user property value", &value));
  (properties->*def.pairs).push_back(UserProperty{std::string(key), std::string(value)});
  return absl::OkStatus();
}

absl::Status DecodeValue(const PropertyDef& def, PropertyScope scope, Reader* reader,
                         Properties* properties) {
  switch (def.type) {
    case WireType::kByte:
      return DecodeByte(def, reader, properties);
    case WireType::kTwoByteInt:
      return DecodeTwoByteInt(def, reader, properties);
    case WireType::kFourByteInt:
      return DecodeFourByteInt(def, reader, properties);
    case WireType::kVarInt:
      return DecodeVarInt(def, scope, reader, properties);
    case WireType::kUtf8:
    case WireType::kBinary:
      return DecodeString(def, reader, properties);
    case WireType::kStringPair:
      return DecodeStringPair(def, reader, properties);
  }
  return MalformedError("bad property table");  // unreachable: the switch is exhaustive
}

absl::Status DecodeOne(PropertyScope scope, Reader* reader, Properties* properties) {
  uint8_t id;
  if (!reader->ReadByte(&id)) return Truncated("property identifier");
  const int index = kIndexById[id];
  if (index < 0) {
    return MalformedError(absl::StrCat("unknown property identifier 0x", absl::Hex(id)));
  }
  const PropertyDef& def = kProperties[index];
  if ((def.scopes & Bit(scope)) == 0) {
    return ProtocolError(
        absl::StrCat(def.name, " not allowed in ", kScopeNames[static_cast<int>(scope)]));
  }
  return DecodeValue(def, scope, reader, properties);
}

// Bytes of one table row's values in `properties`, identifiers included; 0 when absent.
size_t ValueSize(const PropertyDef& def, const Properties& properties) {
  switch (def.type) {
    case WireType::kByte:
      return (properties.*def.byte).has_value() ? 2 : 0;
    case WireType::kTwoByteInt:
      return (properties.*def.two).has_value() ? 3 : 0;
    case WireType::kFourByteInt:
      return (properties.*def.four).has_value() ? 5 : 0;
    case WireType::kVarInt: {
      size_t size = 0;
      for (uint32_t value : properties.*def.varints) size += 1 + wire::VarIntSize(value);
      return size;
    }
    case WireType::kUtf8:
    case WireType::kBinary: {
      const std::optional<std::string>& value = properties.*def.str;
      return value.has_value() ? 1 + wire::LengthPrefixedSize(*value) : 0;
    }
    case WireType::kStringPair: {
      size_t size = 0;
      for (const UserProperty& pair : properties.*def.pairs) {
        size += 1 + wire::LengthPrefixedSize(pair.key) + wire::LengthPrefixedSize(pair.value);
      }
      return size;
    }
  }
  return 0;
}

template <typename T, typename PutFn>
void PutOptional(uint8_t id, const std::optional<T>& value, PutFn put, std::string* out) {
  if (!value.has_value()) return;
  wire::PutByte(id, out);
  put(*value, out);
}

void PutValue(const PropertyDef& def, const Properties& properties, std::string* out) {
  switch (def.type) {
    case WireType::kByte:
      return PutOptional(def.id, properties.*def.byte, wire::PutByte, out);
    case WireType::kTwoByteInt:
      return PutOptional(def.id, properties.*def.two, wire::PutU16, out);
    case WireType::kFourByteInt:
      return PutOptional(def.id, properties.*def.four, wire::PutU32, out);
    case WireType::kUtf8:
    case WireType::kBinary:
      return PutOptional(def.id, properties.*def.str, wire::PutLengthPrefixed, out);
    case WireType::kVarInt:
      for (uint32_t value : properties.*def.varints) {
        wire::PutByte(def.id, out);
        wire::PutVarInt(value, out);
      }
      return;
    case WireType::kStringPair:
      for (const UserProperty& pair : properties.*def.pairs) {
        wire::PutByte(def.id, out);
        wire::PutLengthPrefixed(pair.key, out);
        wire::PutLengthPrefixed(pair.value, out);
      }
      return;
  }
}

}  // namespace

absl::Status DecodeProperties(Reader* reader, PropertyScope scope, Properties* properties) {
  uint32_t length;
  if (!reader->ReadVarInt(&length)) return MalformedError("invalid property length");
  std::string_view block;
  if (!reader->ReadBytes(length, &block)) return Truncated("properties");
  Reader block_reader(block);
  while (!block_reader.empty()) {
    MQTT_RETURN_IF_ERROR(DecodeOne(scope, &block_reader, properties));
  }
  return absl::OkStatus();
}

size_t PropertiesSize(const Properties& properties) {
  size_t size = 0;
  for (const PropertyDef& def : kProperties) size += ValueSize(def, properties);
  return size;
}

void PutProperties(const Properties& properties, size_t properties_size, std::string* out) {
  wire::PutVarInt(static_cast<uint32_t>(properties_size), out);
  if (properties_size == 0) return;
  for (const PropertyDef& def : kProperties) PutValue(def, properties, out);
}

}  // namespace mqtt::internal
