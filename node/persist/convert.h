// SPDX-License-Identifier: Apache-2.0
// Conversions between the broker's protocol values (node/protocol) and the storage records of
// proto/storage.proto, on the node side: storage/ knows records only, and the session layer never
// assembles protobufs by hand. Only the properties an application message
// carries are kept (payload format, message expiry, content type, response topic, correlation
// data, user properties); the will delay is stored beside the will.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>

#include "node/protocol/message.h"
#include "node/protocol/packets.h"
#include "proto/storage.pb.h"

namespace mqtt::persist {

namespace v1 = ::mqtt::storage::v1;

v1::MessageProperties ToRecord(const Properties& properties);
Properties FromRecord(const v1::MessageProperties& record);

// expires_at_unix_ms = now + message expiry interval, or 0 without one.
v1::MessageRecord ToRecord(const Message& message, uint64_t now_unix_ms);
// properties is null when the record carries none.
Message FromRecord(const v1::MessageRecord& record);
// Seconds left before `record` expires, rounded up (for the Message Expiry Interval sent to a
// subscriber, [MQTT-3.3.2-6]); 0 if it has expired, or has no expiry.
uint32_t RemainingExpirySeconds(const v1::MessageRecord& record, uint64_t now_unix_ms);

v1::Will ToRecord(const Will& will);
Will FromRecord(const v1::Will& record);

v1::ProtocolVersion ToRecord(Version version);
Version FromRecord(v1::ProtocolVersion version);  // UNSPECIFIED reads as 3.1.1

// A message as stored: its message expiry (a steady-clock deadline in memory) becomes wall-clock
// time, so that it still means the same after a restart.
v1::MessageRecord ToStored(const Message& message);
// The message of a stored record with stored id `id` (0: not stored by reference, e.g. retained);
// an expiry in the past becomes one 1 ms ahead, so it expires at the next check.
MessagePtr FromStored(uint64_t id, const v1::MessageRecord& record);

}  // namespace mqtt::persist
