// SPDX-License-Identifier: Apache-2.0
// Framing, fixed header checks, error mapping and the helpers shared by the packet decoders.
// The packets themselves live in codec_connect.cc, codec_publish.cc, codec_subscribe.cc and
// codec_control.cc; MQTT 5.0 properties in properties.cc.
#include "node/protocol/codec.h"

#include <array>
#include <initializer_list>

#include "absl/strings/str_cat.h"
#include "node/protocol/codec_internal.h"
#include "node/protocol/reason_codes.h"
#include "node/protocol/utf8.h"

namespace mqtt {

absl::Status MalformedError(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("malformed packet: ", internal::AbslView(what)));
}

absl::Status ProtocolError(std::string_view what) {
  return absl::FailedPreconditionError(absl::StrCat("protocol error: ", internal::AbslView(what)));
}

uint8_t ReasonCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return rc::kMalformedPacket;
    case absl::StatusCode::kFailedPrecondition:
      return rc::kProtocolError;
    case absl::StatusCode::kUnimplemented:
      return rc::kUnsupportedProtocolVersion;
    case absl::StatusCode::kOutOfRange:
      return rc::kPacketTooLarge;
    default:
      return rc::kUnspecifiedError;
  }
}

// The remaining length is read here byte by byte rather than with wire::Reader because a short
// buffer means "need more", not "malformed". Like ReadVarInt, non-minimal encodings are
// accepted (lenient, as most brokers are); only a 5th length byte is malformed [MQTT-1.5.5-1].
FrameResult PeekFrame(const uint8_t* data, size_t size, FrameHeader* header) {
  *header = FrameHeader{};
  uint32_t length = 0;
  for (size_t i = 1; i <= 4; ++i) {
    if (i >= size) return FrameResult::kNeedMore;
    const uint8_t byte = data[i];
    length |= uint32_t{byte & 0x7Fu} << (7 * (i - 1));
    if ((byte & 0x80) == 0) {
      header->first_byte = data[0];
      header->header_size = static_cast<uint8_t>(i + 1);
      header->remaining_length = length;
      return size - header->header_size >= length ? FrameResult::kComplete : FrameResult::kNeedMore;
    }
  }
  return FrameResult::kMalformed;
}

namespace {

// Flags [MQTT-2.2.2-1] fixes for a non-PUBLISH packet type: 0b0010 for PUBREL, SUBSCRIBE and
// UNSUBSCRIBE, 0 for the rest.
uint8_t RequiredFlags(PacketType type) {
  switch (type) {
    case PacketType::kPubrel:
    case PacketType::kSubscribe:
    case PacketType::kUnsubscribe:
      return 0x02;
    default:
      return 0x00;
  }
}

}  // namespace

absl::Status CheckFixedHeader(uint8_t first_byte, Version version) {
  const auto type = static_cast<PacketType>(first_byte >> 4);
  uint8_t flags = first_byte & 0x0F;
  if (type == PacketType::kReserved) return MalformedError("reserved packet type 0");
  if (type == PacketType::kAuth && version != Version::kV5) {
    return MalformedError("reserved packet type 15 before MQTT 5.0");
  }
  if (type == PacketType::kPublish) return absl::OkStatus();  // checked by DecodePublish
  const uint8_t required = RequiredFlags(type);
  // 3.1 let clients set DUP on a retried PUBREL/SUBSCRIBE/UNSUBSCRIBE; 3.1.1 reserved the bit.
  if (version == Version::kV31 && required != 0) flags &= 0x07;
  if (flags != required) {
    return MalformedError(absl::StrCat("fixed header flags 0x", absl::Hex(flags),
                                       " invalid for packet type ", static_cast<int>(type),
                                       " [MQTT-2.2.2-2]"));
  }
  return absl::OkStatus();
}

namespace internal {

absl::Status Truncated(std::string_view what) {
  return MalformedError(absl::StrCat(AbslView(what), " runs past the end of the packet"));
}

absl::Status ReadUtf8(wire::Reader* reader, std::string_view what, std::string_view* value) {
  if (!reader->ReadLengthPrefixed(value)) return Truncated(what);
  if (!IsValidMqttUtf8(*value)) {
    return MalformedError(absl::StrCat(AbslView(what), " is not valid UTF-8 [MQTT-1.5.4-1]"));
  }
  return absl::OkStatus();
}

absl::Status ReadUtf8(wire::Reader* reader, std::string_view what, std::string* value) {
  std::string_view view;
  MQTT_RETURN_IF_ERROR(ReadUtf8(reader, what, &view));
  value->assign(view);
  return absl::OkStatus();
}

absl::Status ReadBinary(wire::Reader* reader, std::string_view what, std::string* value) {
  std::string_view view;
  if (!reader->ReadLengthPrefixed(&view)) return Truncated(what);
  value->assign(view);
  return absl::OkStatus();
}

absl::Status ReadPacketId(wire::Reader* reader, uint16_t* packet_id) {
  if (!reader->ReadU16(packet_id)) return Truncated("packet identifier");
  if (*packet_id == 0) return ProtocolError("packet identifier 0 [MQTT-2.3.1-1]");
  return absl::OkStatus();
}

absl::Status ExpectEnd(const wire::Reader& reader, std::string_view packet) {
  if (reader.empty()) return absl::OkStatus();
  return MalformedError(
      absl::StrCat(reader.remaining(), " unexpected trailing bytes in ", AbslView(packet)));
}

absl::Status ReadTopicFilter(wire::Reader* reader, std::string* filter) {
  MQTT_RETURN_IF_ERROR(ReadUtf8(reader, "topic filter", filter));
  if (filter->empty()) return MalformedError("empty topic filter [MQTT-4.7.3-1]");
  return absl::OkStatus();
}

namespace {

// A set of reason codes, one bit per value.
struct ReasonSet {
  std::array<uint64_t, 4> bits{};
  constexpr ReasonSet(std::initializer_list<uint8_t> codes) {
    for (uint8_t code : codes) bits[code >> 6] |= uint64_t{1} << (code & 63);
  }
  constexpr bool Has(uint8_t code) const { return (bits[code >> 6] >> (code & 63)) & 1; }
};

// MQTT 5.0 reason code tables, by packet.
constexpr ReasonSet kConnackCodes = {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
                                     0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
                                     0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F};
constexpr ReasonSet kPubackCodes = {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99};
constexpr ReasonSet kPubrelCodes = {0x00, 0x92};  // PUBREL and PUBCOMP
constexpr ReasonSet kSubackCodes = {0x00, 0x01, 0x02, 0x80, 0x83, 0x87,
                                    0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2};
constexpr ReasonSet kUnsubackCodes = {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91};
constexpr ReasonSet kDisconnectCodes = {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D,
                                        0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
                                        0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2};
constexpr ReasonSet kAuthCodes = {0x00, 0x18, 0x19};
// 3.1 / 3.1.1.
constexpr ReasonSet kV3ConnackCodes = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05};
constexpr ReasonSet kV3SubackCodes = {0x00, 0x01, 0x02, 0x80};  // [MQTT-3.9.3-2]
constexpr ReasonSet kNone = {};

const ReasonSet& ReasonCodesOf(PacketType type, Version version) {
  const bool v5 = version == Version::kV5;
  switch (type) {
    case PacketType::kConnack:
      return v5 ? kConnackCodes : kV3ConnackCodes;
    case PacketType::kPuback:
    case PacketType::kPubrec:
      return kPubackCodes;
    case PacketType::kPubrel:
    case PacketType::kPubcomp:
      return kPubrelCodes;
    case PacketType::kSuback:
      return v5 ? kSubackCodes : kV3SubackCodes;
    case PacketType::kUnsuback:
      return kUnsubackCodes;
    case PacketType::kDisconnect:
      return kDisconnectCodes;
    case PacketType::kAuth:
      return kAuthCodes;
    default:
      return kNone;
  }
}

}  // namespace

absl::Status CheckReasonCode(PacketType type, Version version, uint8_t code) {
  if (ReasonCodesOf(type, version).Has(code)) return absl::OkStatus();
  return ProtocolError(absl::StrCat("reason code 0x", absl::Hex(code),
                                    " not allowed in packet type ", static_cast<int>(type)));
}

}  // namespace internal
}  // namespace mqtt
