// SPDX-License-Identifier: Apache-2.0
#include "storage/keys.h"

namespace mqtt::storage::keys {

void AppendBigEndian64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

uint64_t ReadBigEndian64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

std::string ClientPrefix(std::string_view client_id) {
  std::string key(client_id);
  key.push_back(kSeparator);
  return key;
}

std::string ClientEnd(std::string_view client_id) {
  std::string key(client_id);
  key.push_back('\1');
  return key;
}

std::string Sequenced(std::string_view client_id, uint64_t seq) {
  std::string key = ClientPrefix(client_id);
  AppendBigEndian64(&key, seq);
  return key;
}

std::string PacketId(std::string_view client_id, uint16_t packet_id) {
  std::string key = ClientPrefix(client_id);
  key.push_back(static_cast<char>(packet_id >> 8));
  key.push_back(static_cast<char>(packet_id & 0xff));
  return key;
}

std::string MessageId(uint64_t id) {
  std::string key;
  AppendBigEndian64(&key, id);
  return key;
}

bool ParseSequenced(std::string_view key, std::string_view* client_id, uint64_t* seq) {
  if (key.size() < kSeqSuffix + 1) return false;
  const size_t split = key.size() - kSeqSuffix;
  if (key[split] != kSeparator) return false;
  *client_id = key.substr(0, split);
  *seq = ReadBigEndian64(key.substr(split + 1));
  return true;
}

bool ParsePacketId(std::string_view key, std::string_view* client_id, uint16_t* packet_id) {
  if (key.size() < kPacketIdSuffix + 1) return false;
  const size_t split = key.size() - kPacketIdSuffix;
  if (key[split] != kSeparator) return false;
  *client_id = key.substr(0, split);
  *packet_id = static_cast<uint16_t>((static_cast<uint8_t>(key[split + 1]) << 8) |
                                     static_cast<uint8_t>(key[split + 2]));
  return true;
}

bool ParseMessageId(std::string_view key, uint64_t* id) {
  if (key.size() != 8) return false;
  *id = ReadBigEndian64(key);
  return true;
}

std::string NodeValue(std::string_view name) {
  std::string key = "value/";
  key.append(name);
  return key;
}

std::string Progress(std::string_view name) {
  std::string key = "progress/";
  key.append(name);
  return key;
}

}  // namespace mqtt::storage::keys
