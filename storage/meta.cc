// SPDX-License-Identifier: Apache-2.0
// Node metadata and message id allocation.
//
// Message ids are handed out from blocks: the high-water mark persisted in NodeMeta is raised by
// kIdBlock before any id of the new block is returned, and the next run starts at the mark, so
// ids only grow across restarts. The mark is written before any batch can use the new ids, and
// RocksDB recovers the WAL in order, so a recovered batch never refers to an id above the
// recovered mark; no extra fsync is needed.
#include <algorithm>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "storage/keys.h"
#include "storage/store_impl.h"

namespace mqtt::storage {
namespace {

constexpr uint64_t kIdBlock = 1 << 16;

absl::Status PutMeta(StoreImpl& impl, const NodeMeta& meta) {
  std::string value;
  meta.SerializeToString(&value);
  return FromRocks(impl.db->Put(impl.write_options, impl.cf(kMetaCf), ToSlice(kNodeMetaKey), value),
                   "write node metadata");
}

// One past the largest stored message id, or 1.
absl::StatusOr<uint64_t> NextAfterStoredMessages(StoreImpl& impl) {
  std::unique_ptr<rocksdb::Iterator> it(impl.db->NewIterator({}, impl.cf(kMessagesCf)));
  it->SeekToLast();
  if (!it->status().ok()) return FromRocks(it->status(), "read last message id");
  uint64_t id = 0;
  if (it->Valid() && !keys::ParseMessageId(ToView(it->key()), &id)) {
    return StoreImpl::CorruptRecord(kMessagesCf, ToView(it->key()));
  }
  return id + 1;
}

}  // namespace

absl::Status LoadOrInitMeta(StoreImpl& impl) {
  absl::MutexLock lock(&impl.meta_mu);
  absl::StatusOr<NodeMeta> meta = impl.GetRecord<NodeMeta>(kMetaCf, kNodeMetaKey);
  if (absl::IsNotFound(meta.status())) {
    meta = NodeMeta();
    meta->set_format_version(Store::kFormatVersion);
    if (absl::Status s = PutMeta(impl, *meta); !s.ok()) return s;
  }
  if (!meta.ok()) return meta.status();
  if (meta->format_version() > Store::kFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("storage: data directory ", impl.options.path, " has format version ",
                     meta->format_version(), "; this build reads up to ", Store::kFormatVersion));
  }
  absl::StatusOr<uint64_t> after_stored = NextAfterStoredMessages(impl);
  if (!after_stored.ok()) return after_stored.status();
  impl.meta = *std::move(meta);
  impl.next_message_id = std::max(impl.meta.message_id_high_water_mark(), *after_stored);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Store::NewMessageId() {
  absl::MutexLock lock(&impl_->meta_mu);
  const uint64_t id = impl_->next_message_id;
  if (id >= impl_->meta.message_id_high_water_mark()) {
    NodeMeta next = impl_->meta;
    next.set_message_id_high_water_mark(id + kIdBlock);
    if (absl::Status s = PutMeta(*impl_, next); !s.ok()) return s;
    impl_->meta = std::move(next);
  }
  impl_->next_message_id = id + 1;
  return id;
}

absl::StatusOr<uint64_t> Store::GetProgress(std::string_view name) const {
  std::string value;
  rocksdb::Status s = impl_->db->Get({}, impl_->cf(kMetaCf), ToSlice(keys::Progress(name)), &value);
  if (s.IsNotFound()) return 0;
  if (!s.ok()) return FromRocks(s, "read progress");
  if (value.size() != 8) return StoreImpl::CorruptRecord(kMetaCf, keys::Progress(name));
  return keys::ReadBigEndian64(value);
}

absl::StatusOr<std::string> Store::GetNodeValue(std::string_view name) const {
  std::string value;
  rocksdb::Status s =
      impl_->db->Get({}, impl_->cf(kMetaCf), ToSlice(keys::NodeValue(name)), &value);
  if (s.IsNotFound()) return std::string();
  if (!s.ok()) return FromRocks(s, "read node value");
  return value;
}

NodeMeta Store::node_meta() const {
  absl::MutexLock lock(&impl_->meta_mu);
  return impl_->meta;
}

absl::Status Store::SetNodeIdentity(std::string_view node_id, uint64_t incarnation) {
  absl::MutexLock lock(&impl_->meta_mu);
  NodeMeta next = impl_->meta;
  next.set_node_id(std::string(node_id));
  next.set_incarnation(incarnation);
  if (absl::Status s = PutMeta(*impl_, next); !s.ok()) return s;
  impl_->meta = std::move(next);
  return absl::OkStatus();
}

}  // namespace mqtt::storage
