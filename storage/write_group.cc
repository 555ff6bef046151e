// SPDX-License-Identifier: Apache-2.0
#include "storage/write_group.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "storage/keys.h"

namespace mqtt::storage {
namespace {

std::string_view ClientOf(std::string_view sequenced_key) {
  return EntryCache::ClientOf(sequenced_key);
}

absl::Status Check(const rocksdb::Status& s) { return FromRocks(s, "build write batch"); }

}  // namespace

bool WriteGroup::AddsReference(const Batch::Op& op) {
  return (op.kind == Batch::Kind::kAddQueue || op.kind == Batch::Kind::kPutInflight) &&
         op.message_id != 0;
}

absl::Status WriteGroup::Validate(const Batch& batch) const {
  absl::flat_hash_set<uint64_t> own_puts;
  for (const Batch::Op& op : batch.ops_) {
    if (op.kind == Batch::Kind::kPutMessage) own_puts.insert(op.message_id);
  }
  for (const Batch::Op& op : batch.ops_) {
    if (!AddsReference(op)) continue;
    const uint64_t id = op.message_id;
    if (own_puts.contains(id) || puts_.contains(id) || StoredRefs(id) > 0) continue;
    return absl::FailedPreconditionError(
        absl::StrCat("storage: message ", id, " referred to by client '",
                     PrintableKey(ClientOf(op.key)), "' is not stored; put it in the same batch"));
  }
  return absl::OkStatus();
}

absl::Status WriteGroup::Add(Batch& batch) {
  if (absl::Status s = Validate(batch); !s.ok()) return s;
  for (Batch::Op& op : batch.ops_) {
    if (absl::Status s = Apply(op); !s.ok()) {
      fatal_ = true;
      return s;
    }
  }
  ++batches_;
  return absl::OkStatus();
}

absl::Status WriteGroup::Apply(Batch::Op& op) {
  const rocksdb::Slice key = ToSlice(op.key);
  switch (op.kind) {
    case Batch::Kind::kPutSession:
      return Check(wb_.Put(impl_.cf(kSessionsCf), key, op.value));
    case Batch::Kind::kDeleteSession:
      return DeleteSession(op.key);
    case Batch::Kind::kPutMessage:
      puts_.try_emplace(op.message_id, &op.value);
      return absl::OkStatus();
    case Batch::Kind::kAddQueue:
      return AddQueue(op);
    case Batch::Kind::kRemoveQueue:
      return RemoveQueue(op);
    case Batch::Kind::kPutInflight:
      return PutInflight(op);
    case Batch::Kind::kRemoveInflight:
      return RemoveInflight(op);
    case Batch::Kind::kAddInbound:
      return Check(wb_.Put(impl_.cf(kInboundCf), key, rocksdb::Slice()));
    case Batch::Kind::kRemoveInbound:
      return Check(wb_.Delete(impl_.cf(kInboundCf), key));
    case Batch::Kind::kPutRetained:
      return Check(wb_.Put(impl_.cf(kRetainedCf), key, op.value));
    case Batch::Kind::kDeleteRetained:
      return Check(wb_.Delete(impl_.cf(kRetainedCf), key));
    case Batch::Kind::kPutMetaValue:
      return Check(wb_.Put(impl_.cf(kMetaCf), key, op.value));
  }
  return absl::InternalError("storage: unknown batch operation");
}

absl::Status WriteGroup::AddQueue(Batch::Op& op) {
  const uint32_t bytes = MessageBytes(op.message_id);
  op.entry.set_message_bytes(bytes);
  const std::string value = op.entry.SerializeAsString();
  if (absl::Status s = Check(wb_.Put(impl_.cf(kQueuesCf), ToSlice(op.key), value)); !s.ok()) {
    return s;
  }
  queues_[op.key] = EntryRef{op.message_id, bytes, /*single_put=*/true};
  Ref(op.message_id, bytes);
  QueueStats& stats = Stats(ClientOf(op.key));
  stats.count += 1;
  stats.bytes += bytes;
  ++queue_entries_delta_;
  return absl::OkStatus();
}

absl::Status WriteGroup::RemoveQueue(const Batch::Op& op) {
  absl::StatusOr<std::optional<EntryRef>> old = Lookup(kQueuesCf, queues_, op.key);
  if (!old.ok()) return old.status();
  if (!old->has_value()) return absl::OkStatus();
  Unref((*old)->message_id);
  QueueStats& stats = Stats(ClientOf(op.key));
  stats.count -= std::min<uint64_t>(stats.count, 1);
  stats.bytes -= std::min<uint64_t>(stats.bytes, (*old)->bytes);
  --queue_entries_delta_;
  queues_[op.key] = std::nullopt;
  // A queue key is put once before it is removed (batch.h), as SingleDelete requires; a
  // DeleteRange of the session may lie between an old put and a reuse of its key.
  return Check(wb_.SingleDelete(impl_.cf(kQueuesCf), ToSlice(op.key)));
}

// In-flight records are replaced (QoS 2 stages), so SingleDelete, which lets a record put and
// removed between two flushes vanish without a tombstone, is used only where the key is known
// to hold one Put: replacing such a record is SingleDelete + Put. A record of unknown history
// (written before Open) is replaced with Put and removed with Delete.
absl::Status WriteGroup::PutInflight(const Batch::Op& op) {
  absl::StatusOr<std::optional<EntryRef>> old = Lookup(kInflightCf, inflight_, op.key);
  if (!old.ok()) return old.status();
  if (op.message_id != 0) Ref(op.message_id, MessageBytes(op.message_id));
  bool single_put = true;
  if (old->has_value()) {
    if ((*old)->message_id != 0) Unref((*old)->message_id);
    single_put = (*old)->single_put;
    if (single_put) {
      absl::Status s = Check(wb_.SingleDelete(impl_.cf(kInflightCf), ToSlice(op.key)));
      if (!s.ok()) return s;
    }
  }
  inflight_[op.key] = EntryRef{op.message_id, 0, single_put};
  return Check(wb_.Put(impl_.cf(kInflightCf), ToSlice(op.key), op.value));
}

absl::Status WriteGroup::RemoveInflight(const Batch::Op& op) {
  absl::StatusOr<std::optional<EntryRef>> old = Lookup(kInflightCf, inflight_, op.key);
  if (!old.ok()) return old.status();
  if (!old->has_value()) return absl::OkStatus();
  if ((*old)->message_id != 0) Unref((*old)->message_id);
  inflight_[op.key] = std::nullopt;
  const rocksdb::Slice key = ToSlice(op.key);
  return Check((*old)->single_put ? wb_.SingleDelete(impl_.cf(kInflightCf), key)
                                  : wb_.Delete(impl_.cf(kInflightCf), key));
}

absl::Status WriteGroup::DeleteSession(const std::string& client_id) {
  if (absl::Status s = DropRange(kQueuesCf, queues_, client_id); !s.ok()) return s;
  if (absl::Status s = DropRange(kInflightCf, inflight_, client_id); !s.ok()) return s;
  dropped_clients_.insert(client_id);
  Stats(client_id) = QueueStats();
  const std::string begin = keys::ClientPrefix(client_id);
  const std::string end = keys::ClientEnd(client_id);
  for (Cf cf : {kQueuesCf, kInflightCf, kInboundCf}) {
    absl::Status s = Check(wb_.DeleteRange(impl_.cf(cf), begin, end));
    if (!s.ok()) return s;
  }
  return Check(wb_.Delete(impl_.cf(kSessionsCf), client_id));
}

// Drops the references held by `client_id`'s entries in `cf`: those stored (unless an earlier
// DeleteSession of the group already dropped them) and those added earlier in the group.
absl::Status WriteGroup::DropRange(Cf cf, Overlay& overlay, const std::string& client_id) {
  const std::string begin = keys::ClientPrefix(client_id);
  const std::string end = keys::ClientEnd(client_id);
  auto drop = [&](const EntryRef& entry) {
    if (entry.message_id != 0) Unref(entry.message_id);
    if (cf == kQueuesCf) --queue_entries_delta_;
  };
  if (!dropped_clients_.contains(client_id)) {
    const rocksdb::Slice upper(end);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(impl_.db->NewIterator(ro, impl_.cf(cf)));
    for (it->Seek(begin); it->Valid(); it->Next()) {
      const std::string_view key = ToView(it->key());
      if (overlay.contains(key)) continue;  // superseded by the group
      absl::StatusOr<EntryRef> entry = ParseEntry(cf, key, ToView(it->value()));
      if (!entry.ok()) return entry.status();
      drop(*entry);
    }
    if (!it->status().ok()) return FromRocks(it->status(), "read entries of deleted session");
  }
  for (auto it = overlay.lower_bound(begin); it != overlay.end() && it->first < end;) {
    if (it->second.has_value()) drop(*it->second);
    it = overlay.erase(it);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<EntryRef>> WriteGroup::Lookup(Cf cf, Overlay& overlay,
                                                           std::string_view key) {
  if (auto it = overlay.find(key); it != overlay.end()) return it->second;
  if (dropped_clients_.contains(AbslView(ClientOf(key)))) return std::optional<EntryRef>();
  const EntryCache& cache = Cache(cf);
  if (auto it = cache.entries.find(key); it != cache.entries.end()) {
    return std::optional<EntryRef>(it->second);
  }
  if (!cache.MayHoldUncached(key)) return std::optional<EntryRef>();
  std::string value;
  rocksdb::Status s = impl_.db->Get({}, impl_.cf(cf), ToSlice(key), &value);
  if (s.IsNotFound()) return std::optional<EntryRef>();
  if (!s.ok()) return FromRocks(s, absl::StrCat("read ", kCfNames[cf]));
  absl::StatusOr<EntryRef> entry = ParseEntry(cf, key, value);
  if (!entry.ok()) return entry.status();
  return std::optional<EntryRef>(*entry);
}

absl::StatusOr<EntryRef> WriteGroup::ParseEntry(Cf cf, std::string_view key,
                                                std::string_view value) {
  if (cf == kQueuesCf) {
    QueueEntry entry;
    if (!entry.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return StoreImpl::CorruptRecord(cf, key);
    }
    return EntryRef{entry.message_id(), entry.message_bytes()};
  }
  InflightRecord record;
  if (!record.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return StoreImpl::CorruptRecord(cf, key);
  }
  return EntryRef{record.message_id(), 0};
}

EntryCache& WriteGroup::Cache(Cf cf) {
  impl_.mu.AssertHeld();
  return cf == kQueuesCf ? impl_.queue_cache : impl_.inflight_cache;
}

uint32_t WriteGroup::StoredRefs(uint64_t id) const {
  impl_.mu.AssertHeld();
  auto it = impl_.refs.find(id);
  return it == impl_.refs.end() ? 0 : it->second.refs;
}

WriteGroup::RefChange& WriteGroup::Touch(uint64_t id) {
  impl_.mu.AssertHeld();
  auto [it, inserted] = refs_.try_emplace(id);
  if (inserted) {
    auto stored = impl_.refs.find(id);
    if (stored != impl_.refs.end()) it->second = {stored->second.refs, stored->second};
  }
  return it->second;
}

void WriteGroup::Ref(uint64_t id, uint32_t bytes) {
  MessageRef& ref = Touch(id).now;
  ref.refs += 1;
  if (ref.bytes == 0) ref.bytes = bytes;
}

void WriteGroup::Unref(uint64_t id) {
  MessageRef& ref = Touch(id).now;
  if (ref.refs > 0) ref.refs -= 1;
}

QueueStats& WriteGroup::Stats(std::string_view client_id) {
  impl_.mu.AssertHeld();
  auto it = stats_.find(AbslView(client_id));
  if (it != stats_.end()) return it->second;
  auto stored = impl_.queue_stats.find(AbslView(client_id));
  QueueStats initial = stored == impl_.queue_stats.end() ? QueueStats() : stored->second;
  return stats_.emplace(std::string(client_id), initial).first->second;
}

uint32_t WriteGroup::MessageBytes(uint64_t id) {
  impl_.mu.AssertHeld();
  if (auto put = puts_.find(id); put != puts_.end()) {
    return static_cast<uint32_t>(put->second->size());
  }
  if (auto touched = refs_.find(id); touched != refs_.end() && touched->second.now.bytes != 0) {
    return touched->second.now.bytes;
  }
  auto stored = impl_.refs.find(id);
  return stored == impl_.refs.end() ? 0 : stored->second.bytes;
}

absl::Status WriteGroup::Finish() {
  for (const auto& [id, change] : refs_) {
    const std::string key = keys::MessageId(id);
    rocksdb::Status s;
    if (change.before == 0 && change.now.refs > 0) {
      auto put = puts_.find(id);  // present: Validate refused references to unknown messages
      if (put != puts_.end()) s = wb_.Put(impl_.cf(kMessagesCf), key, *put->second);
    } else if (change.before > 0 && change.now.refs == 0) {
      s = wb_.SingleDelete(impl_.cf(kMessagesCf), key);  // put once: only when not stored
    }
    if (!s.ok()) return Check(s);
  }
  return absl::OkStatus();
}

void WriteGroup::Commit() {
  impl_.mu.AssertHeld();
  for (const auto& [id, change] : refs_) {
    if (change.now.refs == 0) {
      impl_.refs.erase(id);
    } else {
      impl_.refs[id] = change.now;
    }
  }
  for (auto& [client, stats] : stats_) {
    if (stats.count == 0) {
      impl_.queue_stats.erase(client);
    } else {
      impl_.queue_stats[client] = stats;
    }
  }
  impl_.queue_entries += queue_entries_delta_;
  // Sessions deleted first: the overlay holds only what the group wrote after their deletion.
  for (const std::string& client : dropped_clients_) {
    const std::string begin = keys::ClientPrefix(client);
    const std::string end = keys::ClientEnd(client);
    impl_.queue_cache.EraseRange(begin, end);
    impl_.inflight_cache.EraseRange(begin, end);
  }
  auto install = [](const Overlay& overlay, EntryCache& cache) {
    for (const auto& [key, entry] : overlay) {
      if (entry.has_value()) {
        cache.Put(key, *entry);
      } else {
        cache.Erase(key);
      }
    }
  };
  install(queues_, impl_.queue_cache);
  install(inflight_, impl_.inflight_cache);
}

}  // namespace mqtt::storage
