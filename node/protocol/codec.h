// SPDX-License-Identifier: Apache-2.0
// Encode and decode of MQTT control packets: pure functions, no I/O.
//
// Framing: PeekFrame() looks at the front of a receive buffer and says whether one whole packet
// is there. The Decode* functions take the first byte of the fixed header (type + flags) and the
// packet body (the `remaining_length` bytes after the fixed header) and validate everything the
// spec lets a receiver validate without session state: fixed-header flags, lengths, UTF-8,
// property identifiers allowed in that packet and not duplicated, QoS values, reserved bits.
//
// Errors (absl::Status codes, mapped to wire consequences by ReasonCodeFor()):
//   kInvalidArgument    malformed packet          (5.0 reason 0x81)
//   kFailedPrecondition protocol error            (5.0 reason 0x82)
//   kUnimplemented      MQTT's protocol name with a level it does not have (or MQIsdp with
//                       another level than 3) in CONNECT: the caller answers with CONNACK
//                       0x01 and closes  [MQTT-3.1.2-2]
//   kNotFound           a protocol name that is not MQTT's in CONNECT: not an MQTT client, so
//                       nothing it could parse is sent back; the caller closes [MQTT-3.1.2-1]
// The message of each status says what was wrong, for the log.
//
// Encode* append to `out` and never fail: the caller passes valid packets.
// Thread-safety: all functions are reentrant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "node/protocol/packets.h"

namespace mqtt {

// Largest value of the variable byte integer (4 bytes), [MQTT-1.5.5].
inline constexpr uint32_t kMaxRemainingLength = 268'435'455;

struct FrameHeader {
  uint8_t first_byte = 0;         // packet type << 4 | flags
  uint8_t header_size = 0;        // 2..5 bytes
  uint32_t remaining_length = 0;  // body bytes after the fixed header
  PacketType type() const { return static_cast<PacketType>(first_byte >> 4); }
  uint8_t flags() const { return first_byte & 0x0F; }
};

enum class FrameResult { kComplete, kNeedMore, kMalformed };

// kComplete: `*header` is filled and data[0, header_size + remaining_length) is one packet.
// kNeedMore: not enough bytes yet (the header itself may be filled when its bytes are there;
//            header_size == 0 otherwise). kMalformed: the remaining length uses more than 4 bytes.
FrameResult PeekFrame(const uint8_t* data, size_t size, FrameHeader* header);

// Checks the fixed-header flags that [MQTT-2.2.2-1]/[MQTT-2.2.2-2] fix for each packet type and
// rejects the reserved types 0 (and 15 for 3.x). PUBLISH flags are checked by DecodePublish.
absl::Status CheckFixedHeader(uint8_t first_byte, Version version);

absl::StatusOr<Connect> DecodeConnect(std::string_view body);
absl::StatusOr<Connack> DecodeConnack(std::string_view body, Version version);
absl::StatusOr<Publish> DecodePublish(uint8_t first_byte, std::string_view body, Version version);
// A PUBLISH as received, its topic and payload views into the packet body (valid while it is).
struct PublishView {
  std::string_view topic;
  std::string_view payload;
  uint8_t qos = 0;
  bool retain = false;
  bool dup = false;
  uint16_t packet_id = 0;  // only when qos > 0
};
// DecodePublish without copies, for the broker's hot path: 5.0 properties are decoded into
// `*properties` (empty on entry; required for 5.0, unused and may be null for 3.x), so 3.x
// traffic builds no Properties. The same checks as DecodePublish, which is built on it.
absl::Status DecodePublishView(uint8_t first_byte, std::string_view body, Version version,
                               PublishView* publish, Properties* properties);
// For PUBACK/PUBREC/PUBREL/PUBCOMP; the type comes from first_byte.
absl::StatusOr<PubAck> DecodePubAck(uint8_t first_byte, std::string_view body, Version version);
// An acknowledgement without its properties: what the broker sends, and what it uses of one it
// receives. The hot path's form: no Properties built unless the packet carries some.
struct PubAckHeader {
  PacketType type = PacketType::kPuback;
  uint16_t packet_id = 0;
  uint8_t reason_code = 0;  // 5.0 only
};
// DecodePubAck's checks (5.0 properties included), keeping the header only.
absl::Status DecodePubAckHeader(uint8_t first_byte, std::string_view body, Version version,
                                PubAckHeader* ack);
absl::StatusOr<Subscribe> DecodeSubscribe(std::string_view body, Version version);
absl::StatusOr<Suback> DecodeSuback(std::string_view body, Version version);
absl::StatusOr<Unsubscribe> DecodeUnsubscribe(std::string_view body, Version version);
absl::StatusOr<Unsuback> DecodeUnsuback(std::string_view body, Version version);
absl::StatusOr<Disconnect> DecodeDisconnect(std::string_view body, Version version);
absl::StatusOr<Auth> DecodeAuth(std::string_view body, Version version);
// PINGREQ and PINGRESP have no body (3.12, 3.13): a non-empty one is malformed.
absl::Status DecodePing(std::string_view body);

void EncodeConnect(const Connect& packet, std::string* out);
void EncodeConnack(const Connack& packet, Version version, std::string* out);
void EncodePublish(const Publish& packet, Version version, std::string* out);
// Hot path for delivery: encodes a PUBLISH from parts without building a Publish. `properties`
// may be null (no properties; for 5.0 a zero property length is written).
void EncodePublishParts(std::string_view topic, std::string_view payload, uint8_t qos, bool retain,
                        bool dup, uint16_t packet_id, const Properties* properties, Version version,
                        std::string* out);
// A PUBLISH encoded once and sent to several receivers that see the same bytes but for the
// packet identifier (fan-out). The bytes are EncodePublishParts' with dup = false; AppendTo()
// writes `packet_id` (ignored at QoS 0) into its 2 bytes while copying. Thread-safety: a value.
class SharedPublish {
 public:
  void Encode(std::string_view topic, std::string_view payload, uint8_t qos, bool retain,
              const Properties* properties, Version version);
  void AppendTo(uint16_t packet_id, std::string* out) const;
  size_t size() const { return bytes_.size(); }
  // Forgets the bytes and gives back their memory.
  void Release() { std::string().swap(bytes_); }

 private:
  std::string bytes_;
  size_t packet_id_offset_ = 0;  // 0: QoS 0, no packet identifier
};
void EncodePubAck(const PubAck& packet, Version version, std::string* out);
// EncodePubAck of an acknowledgement without properties.
void EncodePubAckHeader(const PubAckHeader& packet, Version version, std::string* out);
void EncodeSubscribe(const Subscribe& packet, Version version, std::string* out);
void EncodeSuback(const Suback& packet, Version version, std::string* out);
void EncodeUnsubscribe(const Unsubscribe& packet, Version version, std::string* out);
void EncodeUnsuback(const Unsuback& packet, Version version, std::string* out);
void EncodePingreq(std::string* out);
void EncodePingresp(std::string* out);
void EncodeDisconnect(const Disconnect& packet, Version version, std::string* out);
void EncodeAuth(const Auth& packet, std::string* out);

// Wire consequence of a decode error: the 5.0 reason code to put in a DISCONNECT (0x81, 0x82,
// ...). For kUnimplemented (CONNECT with an unknown protocol level) returns 0x84.
uint8_t ReasonCodeFor(const absl::Status& status);

absl::Status MalformedError(std::string_view what);  // kInvalidArgument
absl::Status ProtocolError(std::string_view what);   // kFailedPrecondition

}  // namespace mqtt
