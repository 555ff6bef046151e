// SPDX-License-Identifier: Apache-2.0
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

// One row of the property table. Exactly one member pointer is set, the one matching `type`
// (kUtf8 and kBinary share `str`); Def() derives `type` from it so the two cannot disagree.
// Every 5.0 byte property is a 0/1 flag, so kByte values other than 0 and 1 are protocol
// errors.
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

  constexpr PropertyDef Nonzero() const {
    PropertyDef def = *this;
    def.nonzero = true;
    return def;
  }
  constexpr PropertyDef RepeatableIn(uint16_t where) const {
    PropertyDef def = *this;
    def.repeatable = where;
    return def;
  }
  constexpr PropertyDef Binary() const {
    PropertyDef def = *this;
    def.type = WireType::kBinary;
    return def;
  }
};

constexpr PropertyDef Def(uint8_t id, const char* name, uint16_t scopes,
                          std::optional<uint8_t> P::*member) {
  return {.id = id, .type = WireType::kByte, .name = name, .scopes = scopes, .byte = member};
}
constexpr PropertyDef Def(uint8_t id, const char* name, uint16_t scopes,
                          std::optional<uint16_t> P::*member) {
  return {.id = id, .type = WireType::kTwoByteInt, .name = name, .scopes = scopes, .two = member};
}
constexpr PropertyDef Def(uint8_t id, const char* name, uint16_t scopes,
                          std::optional<uint32_t> P::*member) {
  return {.id = id, .type = WireType::kFourByteInt, .name = name, .scopes = scopes, .four = member};
}
constexpr PropertyDef Def(uint8_t id, const char* name, uint16_t scopes,
                          std::optional<std::string> P::*member) {
  return {.id = id, .type = WireType::kUtf8, .name = name, .scopes = scopes, .str = member};
}
constexpr PropertyDef Def(uint8_t id, const char* name, uint16_t scopes,
                          std::vector<uint32_t> P::*member) {
  return {.id = id, .type = WireType::kVarInt, .name = name, .scopes = scopes, .varints = member};
}
constexpr PropertyDef Def(uint8_t id, const char* name, uint16_t scopes,
                          std::vector<UserProperty> P::*member) {
  return {.id = id, .type = WireType::kStringPair, .name = name, .scopes = scopes, .pairs = member};
}

constexpr uint16_t kAllScopes = (1u << (static_cast<int>(S::kAuth) + 1)) - 1;
constexpr uint16_t kMessage = In({S::kPublish, S::kWill});
constexpr uint16_t kConnectConnack = In({S::kConnect, S::kConnack});
constexpr uint16_t kAuthScopes = In({S::kConnect, S::kConnack, S::kAuth});
constexpr uint16_t kReasonStringScopes =
    In({S::kConnack, S::kPubAck, S::kSuback, S::kUnsuback, S::kDisconnect, S::kAuth});
constexpr uint16_t kConnack = Bit(S::kConnack);

// MQTT 5.0 section 2.2.2.2, table 2-4, in identifier order (also the encode order).
constexpr PropertyDef kProperties[] = {
    Def(0x01, "payload format indicator", kMessage, &P::payload_format_indicator),
    Def(0x02, "message expiry interval", kMessage, &P::message_expiry_interval),
    Def(0x03, "content type", kMessage, &P::content_type),
    Def(0x08, "response topic", kMessage, &P::response_topic),
    Def(0x09, "correlation data", kMessage, &P::correlation_data).Binary(),
    Def(0x0B, "subscription identifier", In({S::kPublish, S::kSubscribe}),
        &P::subscription_identifiers)
        .Nonzero()
        .RepeatableIn(Bit(S::kPublish)),
    Def(0x11, "session expiry interval", In({S::kConnect, S::kConnack, S::kDisconnect}),
        &P::session_expiry_interval),
    Def(0x12, "assigned client identifier", kConnack, &P::assigned_client_identifier),
    Def(0x13, "server keep alive", kConnack, &P::server_keep_alive),
    Def(0x15, "authentication method", kAuthScopes, &P::authentication_method),
    Def(0x16, "authentication data", kAuthScopes, &P::authentication_data).Binary(),
    Def(0x17, "request problem information", Bit(S::kConnect), &P::request_problem_information),
    Def(0x18, "will delay interval", Bit(S::kWill), &P::will_delay_interval),
    Def(0x19, "request response information", Bit(S::kConnect), &P::request_response_information),
    Def(0x1A, "response information", kConnack, &P::response_information),
    Def(0x1C, "server reference", In({S::kConnack, S::kDisconnect}), &P::server_reference),
    Def(0x1F, "reason string", kReasonStringScopes, &P::reason_string),
    Def(0x21, "receive maximum", kConnectConnack, &P::receive_maximum).Nonzero(),
    Def(0x22, "topic alias maximum", kConnectConnack, &P::topic_alias_maximum),
    // Alias 0 is refused by the session, which answers it with 0x94 Topic Alias invalid.
    Def(0x23, "topic alias", Bit(S::kPublish), &P::topic_alias),
    Def(0x24, "maximum QoS", kConnack, &P::maximum_qos),
    Def(0x25, "retain available", kConnack, &P::retain_available),
    Def(0x26, "user property", kAllScopes, &P::user_properties).RepeatableIn(kAllScopes),
    Def(0x27, "maximum packet size", kConnectConnack, &P::maximum_packet_size).Nonzero(),
    Def(0x28, "wildcard subscription available", kConnack, &P::wildcard_subscription_available),
    Def(0x29, "subscription identifier available", kConnack, &P::subscription_identifier_available),
    Def(0x2A, "shared subscription available", kConnack, &P::shared_subscription_available),
};

// Identifiers strictly increase: no duplicate rows, and encode order is identifier order.
constexpr bool IdsIncrease() {
  for (size_t i = 1; i < std::size(kProperties); ++i) {
    if (kProperties[i - 1].id >= kProperties[i].id) return false;
  }
  return true;
}
static_assert(IdsIncrease(), "kProperties must be sorted by identifier, without duplicates");

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
