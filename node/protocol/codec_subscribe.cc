// SPDX-License-Identifier: Apache-2.0
// SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK (sections 3.8 to 3.11).
#include <string_view>

#include "node/protocol/codec.h"
#include "node/protocol/codec_internal.h"
#include "node/protocol/properties.h"

namespace mqtt {
namespace {

using internal::PropertyScope;
using wire::Reader;

// Subscription options byte (3.8.3.1); 3.x only has the QoS bits.
constexpr uint8_t kQosMask = 0x03;
constexpr uint8_t kNoLocal = 0x04;
constexpr uint8_t kRetainAsPublished = 0x08;
constexpr int kRetainHandlingShift = 4;
constexpr uint8_t kV3ReservedOptions = 0xFC;
constexpr uint8_t kV5ReservedOptions = 0xC0;

// Number of (length-prefixed string + `suffix` bytes) entries up to the first truncated one,
// so that vectors are reserved once. `reader` is a copy: the caller's cursor does not move.
size_t CountEntries(Reader reader, size_t suffix) {
  size_t count = 0;
  std::string_view skipped;
  while (reader.ReadLengthPrefixed(&skipped) && reader.ReadBytes(suffix, &skipped)) ++count;
  return count;
}

absl::Status ParseV3Options(uint8_t options, SubscribeTopic* topic) {
  if (options & kV3ReservedOptions) {
    return MalformedError("reserved subscription option bits set [MQTT-3.8.3-4]");
  }
  if (topic->qos == 3) return MalformedError("requested QoS 3 [MQTT-3.8.3-4]");
  return absl::OkStatus();
}

// 5.0 makes reserved bits malformed [MQTT-3.8.3-5] but QoS 3 and Retain Handling 3 protocol
// errors (3.8.3.1).
absl::Status ParseV5Options(uint8_t options, SubscribeTopic* topic) {
  if (options & kV5ReservedOptions) {
    return MalformedError("reserved subscription option bits set [MQTT-3.8.3-5]");
  }
  topic->no_local = (options & kNoLocal) != 0;
  topic->retain_as_published = (options & kRetainAsPublished) != 0;
  topic->retain_handling = (options >> kRetainHandlingShift) & 0x03;
  if (topic->qos == 3) return ProtocolError("maximum QoS 3 in subscription options");
  if (topic->retain_handling == 3) return ProtocolError("retain handling 3");
  return absl::OkStatus();
}

absl::Status ReadSubscribeTopic(Reader* reader, Version version, SubscribeTopic* topic) {
  MQTT_RETURN_IF_ERROR(internal::ReadTopicFilter(reader, &topic->filter));
  uint8_t options;
  if (!reader->ReadByte(&options)) return internal::Truncated("subscription options");
  topic->qos = options & kQosMask;
  return version == Version::kV5 ? ParseV5Options(options, topic) : ParseV3Options(options, topic);
}

uint8_t SubscriptionOptions(const SubscribeTopic& topic, Version version) {
  uint8_t options = topic.qos;
  if (version != Version::kV5) return options;
  if (topic.no_local) options |= kNoLocal;
  if (topic.retain_as_published) options |= kRetainAsPublished;
  return options | static_cast<uint8_t>(topic.retain_handling << kRetainHandlingShift);
}

// Reason codes that fill the rest of a SUBACK / 5.0 UNSUBACK: at least one, each allowed.
absl::Status ReadReasonCodes(Reader* reader, PacketType type, Version version,
                             std::vector<uint8_t>* codes) {
  std::string_view rest = reader->ReadRest();
  if (rest.empty()) return ProtocolError("acknowledgement without reason codes");
  codes->assign(rest.begin(), rest.end());
  for (uint8_t code : *codes) {
    MQTT_RETURN_IF_ERROR(internal::CheckReasonCode(type, version, code));
  }
  return absl::OkStatus();
}

// Fixed header + packet identifier + 5.0 properties, common to these four packets; `payload_size`
// is what follows the properties.
void PutHeaderAndProperties(PacketType type, uint8_t flags, uint16_t packet_id,
                            const Properties& properties, Version version, size_t payload_size,
                            std::string* out) {
  const bool v5 = version == Version::kV5;
  const size_t properties_size = v5 ? internal::PropertiesSize(properties) : 0;
  size_t length = 2 + payload_size;
  if (v5) length += internal::PropertyBlockSize(properties_size);
  wire::PutFixedHeader(static_cast<uint8_t>(static_cast<uint8_t>(type) << 4 | flags),
                       static_cast<uint32_t>(length), out);
  wire::PutU16(packet_id, out);
  if (v5) internal::PutProperties(properties, properties_size, out);
}

}  // namespace

absl::StatusOr<Subscribe> DecodeSubscribe(std::string_view body, Version version) {
  Reader reader(body);
  Subscribe subscribe;
  MQTT_RETURN_IF_ERROR(internal::ReadPacketId(&reader, &subscribe.packet_id));
  if (version == Version::kV5) {
    MQTT_RETURN_IF_ERROR(
        internal::DecodeProperties(&reader, PropertyScope::kSubscribe, &subscribe.properties));
  }
  if (reader.empty()) return ProtocolError("SUBSCRIBE without topic filters [MQTT-3.8.3-3]");
  subscribe.topics.reserve(CountEntries(reader, 1));
  while (!reader.empty()) {
    MQTT_RETURN_IF_ERROR(ReadSubscribeTopic(&reader, version, &subscribe.topics.emplace_back()));
  }
  return subscribe;
}

void EncodeSubscribe(const Subscribe& subscribe, Version version, std::string* out) {
  size_t payload_size = 0;
  for (const SubscribeTopic& topic : subscribe.topics) {
    payload_size += wire::LengthPrefixedSize(topic.filter) + 1;
  }
  PutHeaderAndProperties(PacketType::kSubscribe, 0x02, subscribe.packet_id, subscribe.properties,
                         version, payload_size, out);
  for (const SubscribeTopic& topic : subscribe.topics) {
    wire::PutLengthPrefixed(topic.filter, out);
    wire::PutByte(SubscriptionOptions(topic, version), out);
  }
}

absl::StatusOr<Suback> DecodeSuback(std::string_view body, Version version) {
  Reader reader(body);
  Suback suback;
  MQTT_RETURN_IF_ERROR(internal::ReadPacketId(&reader, &suback.packet_id));
  if (version == Version::kV5) {
    MQTT_RETURN_IF_ERROR(
        internal::DecodeProperties(&reader, PropertyScope::kSuback, &suback.properties));
  }
  MQTT_RETURN_IF_ERROR(
      ReadReasonCodes(&reader, PacketType::kSuback, version, &suback.reason_codes));
  return suback;
}

void EncodeSuback(const Suback& suback, Version version, std::string* out) {
  PutHeaderAndProperties(PacketType::kSuback, 0, suback.packet_id, suback.properties, version,
                         suback.reason_codes.size(), out);
  out->append(suback.reason_codes.begin(), suback.reason_codes.end());
}

absl::StatusOr<Unsubscribe> DecodeUnsubscribe(std::string_view body, Version version) {
  Reader reader(body);
  Unsubscribe unsubscribe;
  MQTT_RETURN_IF_ERROR(internal::ReadPacketId(&reader, &unsubscribe.packet_id));
  if (version == Version::kV5) {
    MQTT_RETURN_IF_ERROR(
        internal::DecodeProperties(&reader, PropertyScope::kUnsubscribe, &unsubscribe.properties));
  }
  if (reader.empty()) return ProtocolError("UNSUBSCRIBE without topic filters [MQTT-3.10.3-2]");
  unsubscribe.filters.reserve(CountEntries(reader, 0));
  while (!reader.empty()) {
    MQTT_RETURN_IF_ERROR(internal::ReadTopicFilter(&reader, &unsubscribe.filters.emplace_back()));
  }
  return unsubscribe;
}

void EncodeUnsubscribe(const Unsubscribe& unsubscribe, Version version, std::string* out) {
  size_t payload_size = 0;
  for (const std::string& filter : unsubscribe.filters) {
    payload_size += wire::LengthPrefixedSize(filter);
  }
  PutHeaderAndProperties(PacketType::kUnsubscribe, 0x02, unsubscribe.packet_id,
                         unsubscribe.properties, version, payload_size, out);
  for (const std::string& filter : unsubscribe.filters) wire::PutLengthPrefixed(filter, out);
}

// 3.x UNSUBACK is just the packet identifier; 5.0 adds properties and one reason code per filter.
absl::StatusOr<Unsuback> DecodeUnsuback(std::string_view body, Version version) {
  Reader reader(body);
  Unsuback unsuback;
  MQTT_RETURN_IF_ERROR(internal::ReadPacketId(&reader, &unsuback.packet_id));
  if (version != Version::kV5) {
    MQTT_RETURN_IF_ERROR(internal::ExpectEnd(reader, "UNSUBACK"));
    return unsuback;
  }
  MQTT_RETURN_IF_ERROR(
      internal::DecodeProperties(&reader, PropertyScope::kUnsuback, &unsuback.properties));
  MQTT_RETURN_IF_ERROR(
      ReadReasonCodes(&reader, PacketType::kUnsuback, version, &unsuback.reason_codes));
  return unsuback;
}

void EncodeUnsuback(const Unsuback& unsuback, Version version, std::string* out) {
  const bool v5 = version == Version::kV5;
  const size_t codes = v5 ? unsuback.reason_codes.size() : 0;
  PutHeaderAndProperties(PacketType::kUnsuback, 0, unsuback.packet_id, unsuback.properties, version,
                         codes, out);
  if (v5) out->append(unsuback.reason_codes.begin(), unsuback.reason_codes.end());
}

}  // namespace mqtt
