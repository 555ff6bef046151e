// SPDX-License-Identifier: Apache-2.0
// Persistent sessions: point reads, the start-up walk with in-flight windows and inbound QoS 2
// ids, and the expiry purge.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "storage/keys.h"
#include "storage/store_impl.h"

namespace mqtt::storage {
namespace {

constexpr uint32_t kNeverExpires = 0xFFFFFFFF;
constexpr size_t kPurgeBatch = 256;

// Iterators over the per-client column families, all reading one snapshot.
struct SessionReader {
  SessionReader(const StoreImpl& impl, const rocksdb::ReadOptions& ro)
      : impl(impl),
        ro(ro),
        inflight(impl.db->NewIterator(ro, impl.cf(kInflightCf))),
        inbound(impl.db->NewIterator(ro, impl.cf(kInboundCf))),
        queue(impl.db->NewIterator(ro, impl.cf(kQueuesCf))) {}

  absl::Status Fill(SessionState* state);
  absl::Status FillInflight(const std::string& client_id, SessionState* state);
  absl::Status FillMessages(SessionState* state);
  absl::Status FillInbound(const std::string& client_id, SessionState* state);
  uint64_t LastQueueSeq(const std::string& client_id);

  const StoreImpl& impl;
  const rocksdb::ReadOptions& ro;
  std::unique_ptr<rocksdb::Iterator> inflight, inbound, queue;
};

bool InRange(const rocksdb::Iterator& it, const std::string& prefix) {
  return it.Valid() && it.key().starts_with(prefix);
}

absl::Status SessionReader::FillInflight(const std::string& client_id, SessionState* state) {
  const std::string prefix = keys::ClientPrefix(client_id);
  for (inflight->Seek(prefix); InRange(*inflight, prefix); inflight->Next()) {
    InflightEntry entry;
    std::string_view client;
    const rocksdb::Slice value = inflight->value();
    if (!keys::ParseSequenced(ToView(inflight->key()), &client, &entry.seq) ||
        !entry.record.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return StoreImpl::CorruptRecord(kInflightCf, ToView(inflight->key()));
    }
    state->next_seq = std::max(state->next_seq, entry.seq + 1);
    state->inflight.push_back(std::move(entry));
  }
  return FromRocks(inflight->status(), "read in-flight records");
}

// Looks up the messages of the in-flight records with one MultiGet.
absl::Status SessionReader::FillMessages(SessionState* state) {
  std::vector<std::string> ids;
  std::vector<InflightEntry*> wanting;
  for (InflightEntry& entry : state->inflight) {
    if (entry.record.message_id() == 0) continue;
    ids.push_back(keys::MessageId(entry.record.message_id()));
    wanting.push_back(&entry);
  }
  if (ids.empty()) return absl::OkStatus();
  std::vector<rocksdb::Slice> slices(ids.begin(), ids.end());
  std::vector<rocksdb::PinnableSlice> values(ids.size());
  std::vector<rocksdb::Status> statuses(ids.size());
  impl.db->MultiGet(ro, impl.cf(kMessagesCf), ids.size(), slices.data(), values.data(),
                    statuses.data());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;  // dangling: the caller sees no message
    if (!statuses[i].ok()) return FromRocks(statuses[i], "read in-flight messages");
    MessageRecord& message = wanting[i]->message.emplace();
    if (!message.ParseFromArray(values[i].data(), static_cast<int>(values[i].size()))) {
      return StoreImpl::CorruptRecord(kMessagesCf, ids[i]);
    }
  }
  return absl::OkStatus();
}

absl::Status SessionReader::FillInbound(const std::string& client_id, SessionState* state) {
  const std::string prefix = keys::ClientPrefix(client_id);
  for (inbound->Seek(prefix); InRange(*inbound, prefix); inbound->Next()) {
    std::string_view client;
    uint16_t packet_id = 0;
    if (!keys::ParsePacketId(ToView(inbound->key()), &client, &packet_id)) {
      return StoreImpl::CorruptRecord(kInboundCf, ToView(inbound->key()));
    }
    state->inbound_qos2.push_back(packet_id);
  }
  return FromRocks(inbound->status(), "read inbound QoS 2 ids");
}

// Sequence number of the client's last queue entry, or 0.
uint64_t SessionReader::LastQueueSeq(const std::string& client_id) {
  queue->SeekForPrev(keys::ClientEnd(client_id));
  std::string_view client;
  uint64_t seq = 0;
  if (!InRange(*queue, keys::ClientPrefix(client_id))) return 0;
  if (!keys::ParseSequenced(ToView(queue->key()), &client, &seq)) return 0;
  return seq;
}

absl::Status SessionReader::Fill(SessionState* state) {
  const std::string& client_id = state->record.client_id();
  if (absl::Status s = FillInflight(client_id, state); !s.ok()) return s;
  if (absl::Status s = FillMessages(state); !s.ok()) return s;
  if (absl::Status s = FillInbound(client_id, state); !s.ok()) return s;
  state->next_seq = std::max(state->next_seq, LastQueueSeq(client_id) + 1);
  return FromRocks(queue->status(), "read queue end");
}

}  // namespace

std::optional<uint64_t> SessionExpiresAt(const SessionRecord& session) {
  switch (session.expiry_case()) {
    case SessionRecord::kExpiresAtUnixMs:
      return session.expires_at_unix_ms();
    case SessionRecord::kNeverExpires:
      return std::nullopt;
    case SessionRecord::EXPIRY_NOT_SET:
      break;
  }
  if (session.session_expiry_interval_seconds() == kNeverExpires) return std::nullopt;
  return session.last_seen_unix_ms() + uint64_t{session.session_expiry_interval_seconds()} * 1000;
}

absl::StatusOr<SessionRecord> Store::GetSession(std::string_view client_id) const {
  return impl_->GetRecord<SessionRecord>(kSessionsCf, client_id);
}

absl::StatusOr<SessionState> Store::LoadSession(std::string_view client_id) const {
  const rocksdb::Snapshot* snapshot = impl_->db->GetSnapshot();
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  absl::StatusOr<SessionState> result;
  {
    absl::StatusOr<SessionRecord> record =
        impl_->GetRecord<SessionRecord>(kSessionsCf, client_id, ro);
    if (!record.ok()) {
      result = record.status();
    } else {
      SessionState state;
      state.record = std::move(*record);
      SessionReader reader(*impl_, ro);
      absl::Status status = reader.Fill(&state);
      state.queue = queue_stats(client_id);
      if (status.ok()) {
        result = std::move(state);
      } else {
        result = status;
      }
    }
  }
  impl_->db->ReleaseSnapshot(snapshot);
  return result;
}

absl::Status Store::LoadSessions(absl::FunctionRef<absl::Status(const SessionState&)> visit) const {
  const rocksdb::Snapshot* snapshot = impl_->db->GetSnapshot();
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  absl::Status status;
  {
    SessionReader reader(*impl_, ro);
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cf(kSessionsCf)));
    for (it->SeekToFirst(); status.ok() && it->Valid(); it->Next()) {
      SessionState state;
      const rocksdb::Slice value = it->value();
      if (!state.record.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
        status = StoreImpl::CorruptRecord(kSessionsCf, ToView(it->key()));
        break;
      }
      status = reader.Fill(&state);
      state.queue = queue_stats(state.record.client_id());
      if (status.ok()) status = visit(state);
    }
    if (status.ok()) status = FromRocks(it->status(), "read sessions");
  }
  impl_->db->ReleaseSnapshot(snapshot);
  return status;
}

absl::StatusOr<std::vector<std::string>> Store::PurgeExpiredSessions(uint64_t now_unix_ms) {
  std::vector<std::string> expired;
  {
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator({}, impl_->cf(kSessionsCf)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      SessionRecord session;
      const rocksdb::Slice value = it->value();
      if (!session.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
        return StoreImpl::CorruptRecord(kSessionsCf, ToView(it->key()));
      }
      const std::optional<uint64_t> deadline = SessionExpiresAt(session);
      if (deadline && *deadline <= now_unix_ms) expired.push_back(it->key().ToString());
    }
    if (!it->status().ok()) return FromRocks(it->status(), "read sessions");
  }
  for (size_t i = 0; i < expired.size(); i += kPurgeBatch) {
    Batch batch;
    for (size_t j = i; j < std::min(expired.size(), i + kPurgeBatch); ++j) {
      batch.DeleteSession(expired[j]);
    }
    if (absl::Status s = Write(std::move(batch)); !s.ok()) return s;
  }
  return expired;
}

}  // namespace mqtt::storage
