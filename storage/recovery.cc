// SPDX-License-Identifier: Apache-2.0
// Open-time recovery of the in-memory state: message reference counts from the queues and
// in-flight windows, queue stats per client, message sizes, and the deletion of messages that
// nothing refers to. Batches are atomic, so such orphans only come from older builds or from
// hand-edited data; the sweep is cheap insurance.
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "rocksdb/write_batch.h"
#include "storage/keys.h"
#include "storage/store_impl.h"

namespace mqtt::storage {
namespace {

std::unique_ptr<rocksdb::Iterator> ScanAll(StoreImpl& impl, Cf cf) {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  ro.readahead_size = 2 << 20;
  std::unique_ptr<rocksdb::Iterator> it(impl.db->NewIterator(ro, impl.cf(cf)));
  it->SeekToFirst();
  return it;
}

absl::Status ScanQueues(StoreImpl& impl) ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl.mu) {
  QueueStats* current = nullptr;
  std::string current_client;
  auto it = ScanAll(impl, kQueuesCf);
  for (; it->Valid(); it->Next()) {
    std::string_view client;
    uint64_t seq = 0;
    QueueEntry entry;
    const rocksdb::Slice value = it->value();
    if (!keys::ParseSequenced(ToView(it->key()), &client, &seq) ||
        !entry.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return StoreImpl::CorruptRecord(kQueuesCf, ToView(it->key()));
    }
    if (current == nullptr || client != current_client) {
      current_client = std::string(client);
      current = &impl.queue_stats[current_client];
      impl.queue_cache.MarkUncached(client);
    }
    current->count += 1;
    current->bytes += entry.message_bytes();
    impl.refs[entry.message_id()].refs += 1;
    impl.open_stats.queue_entries += 1;
  }
  impl.queue_entries = impl.open_stats.queue_entries;
  return FromRocks(it->status(), "scan queues");
}

absl::Status ScanInflight(StoreImpl& impl) ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl.mu) {
  auto it = ScanAll(impl, kInflightCf);
  for (; it->Valid(); it->Next()) {
    InflightRecord record;
    const rocksdb::Slice value = it->value();
    if (!record.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return StoreImpl::CorruptRecord(kInflightCf, ToView(it->key()));
    }
    if (record.message_id() != 0) impl.refs[record.message_id()].refs += 1;
    impl.open_stats.inflight_records += 1;
    impl.inflight_cache.MarkUncached(EntryCache::ClientOf(ToView(it->key())));
  }
  return FromRocks(it->status(), "scan in-flight records");
}

// Records message sizes, deletes unreferenced messages and counts references to missing ones.
absl::Status ScanMessages(StoreImpl& impl) ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl.mu) {
  rocksdb::WriteBatch orphans;
  uint64_t found = 0;
  auto it = ScanAll(impl, kMessagesCf);
  for (; it->Valid(); it->Next()) {
    uint64_t id = 0;
    if (!keys::ParseMessageId(ToView(it->key()), &id)) {
      return StoreImpl::CorruptRecord(kMessagesCf, ToView(it->key()));
    }
    auto ref = impl.refs.find(id);
    if (ref == impl.refs.end()) {
      if (absl::Status s =
              FromRocks(orphans.SingleDelete(impl.cf(kMessagesCf), it->key()), "sweep");
          !s.ok()) {
        return s;
      }
      continue;
    }
    ref->second.bytes = static_cast<uint32_t>(it->value().size());
    ++found;
  }
  if (absl::Status s = FromRocks(it->status(), "scan messages"); !s.ok()) return s;
  impl.open_stats.messages = found;
  impl.open_stats.orphan_messages_deleted = orphans.Count();
  // Referred to but missing (bytes still 0: a stored record always has a topic). Forgotten
  // here; the entries that refer to them are dropped by the reads that meet them.
  impl.open_stats.dangling_references = impl.refs.size() - found;
  absl::erase_if(impl.refs, [](const auto& ref) { return ref.second.bytes == 0; });
  if (orphans.Count() == 0) return absl::OkStatus();
  return FromRocks(impl.db->Write(impl.write_options, &orphans), "delete orphan messages");
}

}  // namespace

absl::Status RebuildReferences(StoreImpl& impl) {
  absl::MutexLock lock(&impl.mu);
  if (absl::Status s = ScanQueues(impl); !s.ok()) return s;
  if (absl::Status s = ScanInflight(impl); !s.ok()) return s;
  return ScanMessages(impl);
}

}  // namespace mqtt::storage
