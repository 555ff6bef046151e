// SPDX-License-Identifier: Apache-2.0
// PUBLISH and its acknowledgements PUBACK, PUBREC, PUBREL, PUBCOMP (sections 3.3 to 3.7).
#include <string_view>

#include "node/protocol/codec.h"
#include "node/protocol/codec_internal.h"
#include "node/protocol/properties.h"

namespace mqtt {
namespace {

using internal::PropertyScope;
using wire::Reader;

constexpr uint8_t kDupFlag = 0x08;
constexpr uint8_t kRetainFlag = 0x01;
constexpr int kQosShift = 1;

absl::Status CheckPublishFlags(uint8_t first_byte, PublishView* publish) {
  if (static_cast<PacketType>(first_byte >> 4) != PacketType::kPublish) {
    return MalformedError("DecodePublish called for another packet type");
  }
  publish->qos = (first_byte >> kQosShift) & 0x03;
  publish->dup = (first_byte & kDupFlag) != 0;
  publish->retain = (first_byte & kRetainFlag) != 0;
  if (publish->qos == 3) return MalformedError("PUBLISH QoS 3 [MQTT-3.3.1-4]");
  if (publish->dup && publish->qos == 0) {
    return MalformedError("DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2]");
  }
  return absl::OkStatus();
}

// An empty topic name is only allowed in 5.0, and only with a Topic Alias (3.3.2.1, 3.3.2.3.4).
absl::Status CheckTopicPresent(std::string_view topic, const Properties* properties,
                               Version version) {
  if (!topic.empty()) return absl::OkStatus();
  if (version != Version::kV5) return MalformedError("empty topic name [MQTT-4.7.3-1]");
  if (!properties->topic_alias) return ProtocolError("empty topic name without a topic alias");
  return absl::OkStatus();
}

bool IsPubAckType(PacketType type) {
  return type == PacketType::kPuback || type == PacketType::kPubrec ||
         type == PacketType::kPubrel || type == PacketType::kPubcomp;
}

// 5.0 reason code and properties after the packet identifier. Both may be omitted: remaining
// length 2 means reason 0x00 and no properties, 3 means no properties (3.4.2.1). Properties go
// to `*properties`, or are checked and dropped when it is null.
absl::Status ReadPubAckTail(Reader* reader, PubAckHeader* ack, Properties* properties) {
  if (reader->empty()) return absl::OkStatus();
  reader->ReadByte(&ack->reason_code);  // cannot fail: not empty
  MQTT_RETURN_IF_ERROR(internal::CheckReasonCode(ack->type, Version::kV5, ack->reason_code));
  if (reader->empty()) return absl::OkStatus();
  if (properties != nullptr) {
    return internal::DecodeProperties(reader, PropertyScope::kPubAck, properties);
  }
  Properties dropped;
  return internal::DecodeProperties(reader, PropertyScope::kPubAck, &dropped);
}

absl::Status DecodePubAckInto(uint8_t first_byte, std::string_view body, Version version,
                              PubAckHeader* ack, Properties* properties) {
  ack->type = static_cast<PacketType>(first_byte >> 4);
  if (!IsPubAckType(ack->type)) return MalformedError("DecodePubAck called for another type");
  MQTT_RETURN_IF_ERROR(CheckFixedHeader(first_byte, version));
  Reader reader(body);
  MQTT_RETURN_IF_ERROR(internal::ReadPacketId(&reader, &ack->packet_id));
  if (version == Version::kV5) MQTT_RETURN_IF_ERROR(ReadPubAckTail(&reader, ack, properties));
  return internal::ExpectEnd(reader, "PUBACK/PUBREC/PUBREL/PUBCOMP");
}

// 5.0 uses the shortest form the spec allows: no properties and reason 0 -> 2 bytes, no
// properties -> 3 bytes (3.4.2.1). `properties` may be null (none).
void PutPubAck(const PubAckHeader& ack, const Properties* properties, Version version,
               std::string* out) {
  const bool v5 = version == Version::kV5;
  const size_t properties_size = v5 && properties ? internal::PropertiesSize(*properties) : 0;
  const bool with_reason = v5 && (ack.reason_code != 0 || properties_size != 0);
  size_t length = 2;
  if (with_reason) length += 1;
  if (properties_size != 0) length += internal::PropertyBlockSize(properties_size);
  const uint8_t flags = ack.type == PacketType::kPubrel ? 0x02 : 0x00;
  wire::PutFixedHeader(static_cast<uint8_t>(static_cast<uint8_t>(ack.type) << 4 | flags),
                       static_cast<uint32_t>(length), out);
  wire::PutU16(ack.packet_id, out);
  if (with_reason) wire::PutByte(ack.reason_code, out);
  if (properties_size != 0) internal::PutProperties(*properties, properties_size, out);
}

}  // namespace

absl::Status DecodePublishView(uint8_t first_byte, std::string_view body, Version version,
                               PublishView* publish, Properties* properties) {
  MQTT_RETURN_IF_ERROR(CheckPublishFlags(first_byte, publish));
  Reader reader(body);
  MQTT_RETURN_IF_ERROR(internal::ReadUtf8(&reader, "topic name", &publish->topic));
  if (publish->qos > 0) MQTT_RETURN_IF_ERROR(internal::ReadPacketId(&reader, &publish->packet_id));
  if (version == Version::kV5) {
    MQTT_RETURN_IF_ERROR(internal::DecodeProperties(&reader, PropertyScope::kPublish, properties));
  }
  MQTT_RETURN_IF_ERROR(CheckTopicPresent(publish->topic, properties, version));
  publish->payload = reader.ReadRest();  // the payload is whatever remains [3.3.3]
  return absl::OkStatus();
}

absl::StatusOr<Publish> DecodePublish(uint8_t first_byte, std::string_view body, Version version) {
  Publish publish;
  PublishView view;
  MQTT_RETURN_IF_ERROR(DecodePublishView(first_byte, body, version, &view, &publish.properties));
  publish.topic.assign(view.topic);
  publish.payload.assign(view.payload);
  publish.qos = view.qos;
  publish.retain = view.retain;
  publish.dup = view.dup;
  publish.packet_id = view.packet_id;
  return publish;
}

void EncodePublish(const Publish& publish, Version version, std::string* out) {
  EncodePublishParts(publish.topic, publish.payload, publish.qos, publish.retain, publish.dup,
                     publish.packet_id, &publish.properties, version, out);
}

// Hot path: sizes everything first so that PutFixedHeader reserves once; no other allocation.
void EncodePublishParts(std::string_view topic, std::string_view payload, uint8_t qos, bool retain,
                        bool dup, uint16_t packet_id, const Properties* properties, Version version,
                        std::string* out) {
  const bool v5 = version == Version::kV5;
  const size_t properties_size = v5 && properties ? internal::PropertiesSize(*properties) : 0;
  size_t length = wire::LengthPrefixedSize(topic) + payload.size();
  if (qos > 0) length += 2;
  if (v5) length += internal::PropertyBlockSize(properties_size);
  uint8_t first_byte = static_cast<uint8_t>(PacketType::kPublish) << 4 | qos << kQosShift;
  if (dup) first_byte |= kDupFlag;
  if (retain) first_byte |= kRetainFlag;
  wire::PutFixedHeader(first_byte, static_cast<uint32_t>(length), out);
  wire::PutLengthPrefixed(topic, out);
  if (qos > 0) wire::PutU16(packet_id, out);
  if (v5 && properties) internal::PutProperties(*properties, properties_size, out);
  if (v5 && !properties) wire::PutByte(0, out);  // property length 0
  out->append(payload);
}

void SharedPublish::Encode(std::string_view topic, std::string_view payload, uint8_t qos,
                           bool retain, const Properties* properties, Version version) {
  bytes_.clear();
  EncodePublishParts(topic, payload, qos, retain, /*dup=*/false, /*packet_id=*/0, properties,
                     version, &bytes_);
  packet_id_offset_ = 0;
  if (qos == 0) return;
  // The packet identifier follows the fixed header and the topic name (3.3.2).
  size_t header_size = 2;
  while (static_cast<uint8_t>(bytes_[header_size - 1]) & 0x80) ++header_size;
  packet_id_offset_ = header_size + wire::LengthPrefixedSize(topic);
}

void SharedPublish::AppendTo(uint16_t packet_id, std::string* out) const {
  const size_t start = out->size();
  out->append(bytes_);
  if (packet_id_offset_ == 0) return;
  (*out)[start + packet_id_offset_] = static_cast<char>(packet_id >> 8);
  (*out)[start + packet_id_offset_ + 1] = static_cast<char>(packet_id & 0xFF);
}

absl::StatusOr<PubAck> DecodePubAck(uint8_t first_byte, std::string_view body, Version version) {
  PubAck ack;
  PubAckHeader header;
  MQTT_RETURN_IF_ERROR(DecodePubAckInto(first_byte, body, version, &header, &ack.properties));
  ack.type = header.type;
  ack.packet_id = header.packet_id;
  ack.reason_code = header.reason_code;
  return ack;
}

absl::Status DecodePubAckHeader(uint8_t first_byte, std::string_view body, Version version,
                                PubAckHeader* ack) {
  return DecodePubAckInto(first_byte, body, version, ack, nullptr);
}

void EncodePubAck(const PubAck& ack, Version version, std::string* out) {
  PutPubAck({ack.type, ack.packet_id, ack.reason_code}, &ack.properties, version, out);
}

void EncodePubAckHeader(const PubAckHeader& ack, Version version, std::string* out) {
  PutPubAck(ack, nullptr, version, out);
}

}  // namespace mqtt
