// SPDX-License-Identifier: Apache-2.0
#include "codec.h"

#include <cstring>

namespace bench {

void PutVarint(Bytes& out, uint32_t v) {
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    if (v) b |= 0x80;
    out.push_back(b);
  } while (v);
}

void PutString(Bytes& out, std::string_view s) {
  PutU16(out, uint16_t(s.size()));
  out.insert(out.end(), s.begin(), s.end());
}

void EncodeConnect(Bytes& out, std::string_view client_id, uint16_t keepalive, bool clean) {
  // Variable header: "MQTT", level 4, flags, keepalive; payload: client id.
  const uint32_t rl = 10 + 2 + uint32_t(client_id.size());
  out.push_back(kConnect << 4);
  PutVarint(out, rl);
  PutString(out, "MQTT");
  out.push_back(4);
  out.push_back(clean ? 0x02 : 0x00);
  PutU16(out, keepalive);
  PutString(out, client_id);
}

void EncodeSubscribe(Bytes& out, uint16_t packet_id, std::string_view filter, uint8_t qos) {
  out.push_back(kSubscribe << 4 | 0x02);
  PutVarint(out, uint32_t(2 + 2 + filter.size() + 1));
  PutU16(out, packet_id);
  PutString(out, filter);
  out.push_back(qos);
}

PublishTemplate::PublishTemplate(std::string_view topic, uint8_t qos, size_t payload_size)
    : qos_(qos), payload_size_(payload_size) {
  head_.push_back(uint8_t(kPublish << 4 | qos << 1));
  PutVarint(head_, uint32_t(2 + topic.size() + (qos ? 2 : 0) + payload_size));
  PutString(head_, topic);
}

uint8_t* PublishTemplate::Append(Bytes& out, uint16_t packet_id) const {
  const size_t at = out.size();
  out.resize(at + packet_size());
  uint8_t* p = out.data() + at;
  std::memcpy(p, head_.data(), head_.size());
  p += head_.size();
  if (qos_) {
    p[0] = uint8_t(packet_id >> 8);
    p[1] = uint8_t(packet_id);
    p += 2;
  }
  return p;
}

bool DecodePublish(const Packet& p, PublishView* out) {
  out->qos = (p.header >> 1) & 3;
  out->dup = p.header & 0x08;
  if (out->qos > 2 || p.len < 2) return false;
  const uint16_t tlen = ReadU16(p.body);
  size_t pos = 2 + size_t(tlen);
  if (pos > p.len) return false;
  out->topic = std::string_view(reinterpret_cast<const char*>(p.body + 2), tlen);
  if (out->qos) {
    if (pos + 2 > p.len) return false;
    out->packet_id = ReadU16(p.body + pos);
    pos += 2;
  }
  out->payload = p.body + pos;
  out->payload_len = p.len - pos;
  return true;
}

}  // namespace bench
