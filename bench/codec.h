// SPDX-License-Identifier: Apache-2.0
// A tiny MQTT 3.1.1 client codec for the load generator: only what mqtt-bench sends and
// receives. Self-contained on purpose (the broker's codec is not a dependency of the bench).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

using Bytes = std::vector<uint8_t>;

// Packet types (high nibble of the first byte).
enum PacketType : uint8_t {
  kConnect = 1,
  kConnack = 2,
  kPublish = 3,
  kPuback = 4,
  kPubrec = 5,
  kPubrel = 6,
  kPubcomp = 7,
  kSubscribe = 8,
  kSuback = 9,
  kPingreq = 12,
  kPingresp = 13,
  kDisconnect = 14,
};

// One complete packet inside a receive buffer (valid until the next read).
struct Packet {
  uint8_t header = 0;  // first byte: type << 4 | flags
  const uint8_t* body = nullptr;
  uint32_t len = 0;  // remaining length
  uint8_t type() const { return header >> 4; }
};

// Splits a buffer into packets. Returns the number of bytes consumed by complete packets;
// sets *error on a malformed length. Calls fn(const Packet&) for each complete packet.
template <typename Fn>
size_t SplitPackets(const uint8_t* data, size_t size, bool* error, Fn&& fn) {
  size_t pos = 0;
  while (size - pos >= 2) {
    uint32_t rl = 0;
    size_t i = pos + 1;
    int shift = 0;
    bool complete = false;
    for (; i < size && shift <= 21; ++i, shift += 7) {
      rl |= uint32_t(data[i] & 0x7f) << shift;
      if (!(data[i] & 0x80)) {
        complete = true;
        ++i;
        break;
      }
    }
    if (!complete) {
      if (shift > 21) *error = true;
      break;
    }
    if (size - i < rl) break;
    Packet p{data[pos], data + i, rl};
    fn(p);
    pos = i + rl;
  }
  return pos;
}

// Appends the variable-length "remaining length".
void PutVarint(Bytes& out, uint32_t v);
inline void PutU16(Bytes& out, uint16_t v) {
  out.push_back(uint8_t(v >> 8));
  out.push_back(uint8_t(v));
}
void PutString(Bytes& out, std::string_view s);

void EncodeConnect(Bytes& out, std::string_view client_id, uint16_t keepalive, bool clean);
void EncodeSubscribe(Bytes& out, uint16_t packet_id, std::string_view filter, uint8_t qos);
// PUBACK, PUBREC, PUBREL (flags 2), PUBCOMP: a 4-byte packet.
inline void EncodeAck(Bytes& out, PacketType type, uint16_t packet_id) {
  uint8_t flags = type == kPubrel ? 2 : 0;
  const uint8_t b[4] = {uint8_t(type << 4 | flags), 2, uint8_t(packet_id >> 8), uint8_t(packet_id)};
  out.insert(out.end(), b, b + 4);
}
inline void EncodeSimple(Bytes& out, PacketType type) {
  out.push_back(uint8_t(type << 4));
  out.push_back(0);
}

// A PUBLISH packet for one topic, QoS and payload size, split around the packet id so that
// each message costs two memcpy and no encoding work.
class PublishTemplate {
 public:
  PublishTemplate(std::string_view topic, uint8_t qos, size_t payload_size);
  // Appends a PUBLISH and returns a pointer to its payload (payload_size bytes, to be filled).
  uint8_t* Append(Bytes& out, uint16_t packet_id) const;
  size_t packet_size() const { return head_.size() + (qos_ ? 2 : 0) + payload_size_; }

 private:
  Bytes head_;  // fixed header + topic
  uint8_t qos_;
  size_t payload_size_;
};

// Fields of a received PUBLISH.
struct PublishView {
  uint8_t qos = 0;
  bool dup = false;
  uint16_t packet_id = 0;
  std::string_view topic;
  const uint8_t* payload = nullptr;
  size_t payload_len = 0;
};
bool DecodePublish(const Packet& p, PublishView* out);

inline uint16_t ReadU16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }

}  // namespace bench
