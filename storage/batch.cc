// SPDX-License-Identifier: Apache-2.0
#include "storage/batch.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "storage/keys.h"
#include "storage/rocks_util.h"

namespace mqtt::storage {
namespace {

std::string Serialize(const google::protobuf::MessageLite& record) {
  std::string out;
  record.SerializeToString(&out);
  return out;
}

}  // namespace

void Batch::Fail(std::string message) {
  if (error_.ok()) error_ = absl::InvalidArgumentError(absl::StrCat("storage: ", message));
}

bool Batch::CheckClient(std::string_view client_id) {
  if (client_id.empty()) {
    Fail("empty client id");
    return false;
  }
  if (std::memchr(client_id.data(), 0, client_id.size()) != nullptr) {
    Fail("client id contains 0x00");
    return false;
  }
  return true;
}

void Batch::Add(Kind kind, std::string key, std::string value, uint64_t message_id) {
  bytes_ += key.size() + value.size();
  forgets_only_ = forgets_only_ && kind == Kind::kRemoveInflight;
  Op& op = ops_.emplace_back();
  op.kind = kind;
  op.key = std::move(key);
  op.value = std::move(value);
  op.message_id = message_id;
}

void Batch::Clear() {
  ops_.clear();
  forgets_only_ = true;
  error_ = absl::OkStatus();
  bytes_ = 0;
}

void Batch::PutSession(const SessionRecord& session) {
  if (!CheckClient(session.client_id())) return;
  Add(Kind::kPutSession, session.client_id(), Serialize(session));
}

void Batch::DeleteSession(std::string_view client_id) {
  if (!CheckClient(client_id)) return;
  Add(Kind::kDeleteSession, std::string(client_id), {});
}

void Batch::PutMessage(uint64_t id, const MessageRecord& message) {
  if (id == 0) return Fail("message id 0");
  if (message.topic().empty()) return Fail("message without topic");
  Add(Kind::kPutMessage, keys::MessageId(id), Serialize(message), id);
}

void Batch::AddQueueEntry(std::string_view client_id, uint64_t seq, const QueueEntry& entry) {
  if (!CheckClient(client_id)) return;
  if (entry.message_id() == 0) return Fail("queue entry without message id");
  Add(Kind::kAddQueue, keys::Sequenced(client_id, seq), {}, entry.message_id());
  ops_.back().entry = entry;
  bytes_ += entry.ByteSizeLong();
}

void Batch::RemoveQueueEntry(std::string_view client_id, uint64_t seq) {
  if (!CheckClient(client_id)) return;
  Add(Kind::kRemoveQueue, keys::Sequenced(client_id, seq), {});
}

void Batch::PutInflight(std::string_view client_id, uint64_t seq, const InflightRecord& record) {
  if (!CheckClient(client_id)) return;
  if (record.stage() == InflightRecord::STAGE_UNSPECIFIED) return Fail("in-flight without stage");
  if (record.stage() != InflightRecord::STAGE_AWAIT_PUBCOMP && record.message_id() == 0) {
    return Fail("in-flight record awaiting PUBACK/PUBREC without message id");
  }
  Add(Kind::kPutInflight, keys::Sequenced(client_id, seq), Serialize(record), record.message_id());
}

void Batch::RemoveInflight(std::string_view client_id, uint64_t seq) {
  if (!CheckClient(client_id)) return;
  Add(Kind::kRemoveInflight, keys::Sequenced(client_id, seq), {});
}

void Batch::AddInboundQos2(std::string_view client_id, uint16_t packet_id) {
  if (!CheckClient(client_id)) return;
  Add(Kind::kAddInbound, keys::PacketId(client_id, packet_id), {});
}

void Batch::RemoveInboundQos2(std::string_view client_id, uint16_t packet_id) {
  if (!CheckClient(client_id)) return;
  Add(Kind::kRemoveInbound, keys::PacketId(client_id, packet_id), {});
}

void Batch::PutRetained(std::string_view topic, const MessageRecord& message) {
  if (topic.empty()) return Fail("empty retained topic");
  v1::RetainedRecord record;
  *record.mutable_message() = message;
  Add(Kind::kPutRetained, std::string(topic), Serialize(record));
}

void Batch::PutRetainedRecord(std::string_view topic, const v1::RetainedRecord& record) {
  if (topic.empty()) return Fail("empty retained topic");
  Add(Kind::kPutRetained, std::string(topic), Serialize(record));
}

void Batch::DeleteRetained(std::string_view topic) {
  if (topic.empty()) return Fail("empty retained topic");
  Add(Kind::kDeleteRetained, std::string(topic), {});
}

void Batch::PutProgress(std::string_view name, uint64_t value) {
  if (name.empty() || name.size() > 200) return Fail("progress name empty or too long");
  std::string encoded;
  keys::AppendBigEndian64(&encoded, value);
  Add(Kind::kPutMetaValue, keys::Progress(name), std::move(encoded));
}

void Batch::PutNodeValue(std::string_view name, std::string_view value) {
  if (name.empty() || name.size() > 200) return Fail("node value name empty or too long");
  Add(Kind::kPutMetaValue, keys::NodeValue(name), std::string(value));
}

}  // namespace mqtt::storage
