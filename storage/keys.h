// SPDX-License-Identifier: Apache-2.0
// Binary keys of the storage column families (storage/README.md has the grammar). Internal to
// storage/. Client ids never contain 0x00 (Batch refuses them), so "client 0x00" is a prefix that
// no other client's keys share, and per-client key order matches client id order.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mqtt::storage::keys {

inline constexpr char kSeparator = '\0';
inline constexpr size_t kSeqSuffix = 1 + 8;       // separator + big-endian u64
inline constexpr size_t kPacketIdSuffix = 1 + 2;  // separator + big-endian u16

void AppendBigEndian64(std::string* out, uint64_t v);
uint64_t ReadBigEndian64(std::string_view in);  // in.size() >= 8

// "client 0x00": every key of this client sorts after it and before ClientEnd(client).
std::string ClientPrefix(std::string_view client_id);
std::string ClientEnd(std::string_view client_id);  // "client 0x01"

std::string Sequenced(std::string_view client_id, uint64_t seq);       // queues, inflight
std::string PacketId(std::string_view client_id, uint16_t packet_id);  // inbound_qos2
std::string MessageId(uint64_t id);                                    // messages
std::string Progress(std::string_view name);                           // meta: "progress/" name
std::string NodeValue(std::string_view name);                          // meta: "value/" name

// Splits a Sequenced() key; false if it is malformed.
bool ParseSequenced(std::string_view key, std::string_view* client_id, uint64_t* seq);
// Splits a PacketId() key; false if it is malformed.
bool ParsePacketId(std::string_view key, std::string_view* client_id, uint16_t* packet_id);
// Decodes a MessageId() key; false if it is malformed.
bool ParseMessageId(std::string_view key, uint64_t* id);

}  // namespace mqtt::storage::keys
