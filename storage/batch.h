// SPDX-License-Identifier: Apache-2.0
// Store::Batch: the changes of one event-loop turn, applied atomically by Store::Write.
//
// Contract: building a batch touches no storage and never fails on the spot. Invalid input (an
// empty client id or one containing 0x00, message id 0, an in-flight record without a stage or,
// before PUBREC, without a message id) is remembered; Store::Write then returns
// kInvalidArgument and writes nothing. Operations apply in the order they were added, so a
// DeleteSession followed by PutSession for the same client leaves a fresh session.
// Records are copied (messages and sessions are serialized at once, outside any lock).
// "Missing" never fails: removing something that is not stored is a no-op.
//
// Threading: a Batch is a plain value owned by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "proto/storage.pb.h"

namespace mqtt::storage {

using v1::InflightRecord;
using v1::MessageRecord;
using v1::NodeMeta;
using v1::QueueEntry;
using v1::SessionRecord;

class Batch {
 public:
  // Stores (replaces) the session keyed by session.client_id(). Its queue, in-flight and inbound
  // QoS 2 state are untouched.
  void PutSession(const SessionRecord& session);
  // Deletes the session and its whole queue, in-flight window and inbound QoS 2 ids, dropping
  // the message references they held.
  void DeleteSession(std::string_view client_id);

  // Stores message `id` (from Store::NewMessageId) for the queue entries and in-flight records
  // of this batch that refer to it. Messages are immutable: if `id` is already stored, nothing
  // is written. A message is stored exactly while at least one queue entry or in-flight record
  // refers to it: one that nothing refers to after the Write is not written, or is deleted.
  // Rule for callers: a batch that adds a reference to a message also puts the message, unless
  // the caller knows an earlier reference is still stored; a reference to a message that is
  // neither stored nor put in the batch fails the Write (kFailedPrecondition).
  void PutMessage(uint64_t id, const MessageRecord& message);

  // Appends to `client_id`'s offline queue at position `seq`, referring to entry.message_id().
  // Precondition: no entry at (client_id, seq) yet (the caller's sequence numbers only grow;
  // Store::LoadSessions gives the first free one). entry.message_bytes() is set by the store.
  void AddQueueEntry(std::string_view client_id, uint64_t seq, const QueueEntry& entry);
  void RemoveQueueEntry(std::string_view client_id, uint64_t seq);

  // Stores (replaces) the in-flight record at send position `seq`; moving a QoS 2 message to
  // STAGE_AWAIT_PUBCOMP with message_id 0 releases its message reference.
  void PutInflight(std::string_view client_id, uint64_t seq, const InflightRecord& record);
  void RemoveInflight(std::string_view client_id, uint64_t seq);

  // Inbound QoS 2 packet ids whose PUBREC was sent and PUBREL not yet received.
  void AddInboundQos2(std::string_view client_id, uint16_t packet_id);
  void RemoveInboundQos2(std::string_view client_id, uint16_t packet_id);

  // Retained message of `topic` (stored inline, not by message id); replaces the previous one.
  void PutRetained(std::string_view topic, const MessageRecord& message);
  // The same with the whole record: the cluster's version (hlc, origin) or a tombstone
  // (proto/storage.proto, RetainedRecord). Replaces the previous record.
  void PutRetainedRecord(std::string_view topic, const v1::RetainedRecord& record);
  void DeleteRetained(std::string_view topic);

  // A named progress counter of a node-level protocol (e.g. the last sequence number applied
  // from a peer), written atomically with the rest of the batch; read with Store::GetProgress.
  // Names are at most 200 bytes.
  void PutProgress(std::string_view name, uint64_t value);
  // A named node-level value (e.g. the cluster members last known), read with
  // Store::GetNodeValue. Names are at most 200 bytes.
  void PutNodeValue(std::string_view name, std::string_view value);

  // True when the batch only removes in-flight records (acknowledged deliveries): with fsync on
  // it need not wait for the disk (store.h, "Durability"). RequireDurable() makes it wait anyway
  // (the caller releases something on its success that a crash must not take back).
  bool forgets_only() const { return forgets_only_; }
  void RequireDurable() { forgets_only_ = false; }

  size_t size() const { return ops_.size(); }
  bool empty() const { return ops_.empty() && error_.ok(); }
  // Bytes of keys and values held, a little less than what Write appends to the WAL.
  size_t ApproximateBytes() const { return bytes_; }
  void Clear();

 private:
  friend class Store;
  friend class WriteGroup;

  enum class Kind : uint8_t {
    kPutSession,
    kDeleteSession,
    kPutMessage,
    kAddQueue,
    kRemoveQueue,
    kPutInflight,
    kRemoveInflight,
    kAddInbound,
    kRemoveInbound,
    kPutRetained,
    kDeleteRetained,
    kPutMetaValue,
  };
  struct Op {
    Kind kind;
    std::string key;          // encoded (storage/keys.h); the client id for kDeleteSession
    std::string value;        // serialized record, except for kAddQueue
    uint64_t message_id = 0;  // message referred to (0 = none), or put
    QueueEntry entry;         // kAddQueue only: serialized at Write, with message_bytes
  };

  bool CheckClient(std::string_view client_id);
  void Fail(std::string message);
  void Add(Kind kind, std::string key, std::string value, uint64_t message_id = 0);

  std::vector<Op> ops_;
  bool forgets_only_ = true;
  absl::Status error_;  // first invalid input
  size_t bytes_ = 0;
};

}  // namespace mqtt::storage
