// SPDX-License-Identifier: Apache-2.0
// Offline queues and the messages they refer to: paged reads with message expiry, stats.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "storage/keys.h"
#include "storage/store_impl.h"

namespace mqtt::storage {
namespace {

constexpr uint64_t kMaxSeq = ~uint64_t{0};

// Reads up to `want` entries from `it` with their messages (one MultiGet) into `page`; the
// sequence numbers of entries to drop (message expired or missing) go to `drop`.
absl::Status ReadChunk(const StoreImpl& impl, const rocksdb::ReadOptions& ro, rocksdb::Iterator& it,
                       size_t want, uint64_t now_unix_ms, QueuePage* page,
                       std::vector<uint64_t>* drop) {
  std::vector<QueuedMessage> chunk;
  std::vector<std::string> ids;
  for (; chunk.size() < want && it.Valid(); it.Next()) {
    QueuedMessage& m = chunk.emplace_back();
    std::string_view client;
    const rocksdb::Slice value = it.value();
    if (!keys::ParseSequenced(ToView(it.key()), &client, &m.seq) ||
        !m.entry.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return StoreImpl::CorruptRecord(kQueuesCf, ToView(it.key()));
    }
    ids.push_back(keys::MessageId(m.entry.message_id()));
  }
  if (chunk.empty()) return absl::OkStatus();
  std::vector<rocksdb::Slice> slices(ids.begin(), ids.end());
  std::vector<rocksdb::PinnableSlice> values(ids.size());
  std::vector<rocksdb::Status> statuses(ids.size());
  impl.db->MultiGet(ro, impl.cf(kMessagesCf), ids.size(), slices.data(), values.data(),
                    statuses.data());
  for (size_t i = 0; i < chunk.size(); ++i) {
    QueuedMessage& m = chunk[i];
    page->last_seq = m.seq;
    if (statuses[i].IsNotFound()) {
      ++page->missing;
      drop->push_back(m.seq);
      continue;
    }
    if (!statuses[i].ok()) return FromRocks(statuses[i], "read queued messages");
    if (!m.message.ParseFromArray(values[i].data(), static_cast<int>(values[i].size()))) {
      return StoreImpl::CorruptRecord(kMessagesCf, ids[i]);
    }
    const uint64_t expires = m.message.expires_at_unix_ms();
    if (expires != 0 && expires <= now_unix_ms) {
      ++page->expired;
      drop->push_back(m.seq);
      continue;
    }
    page->messages.push_back(std::move(m));
  }
  return absl::OkStatus();
}

absl::Status ReadPage(const StoreImpl& impl, std::string_view client_id, uint64_t after_seq,
                      size_t max_entries, uint64_t now_unix_ms, QueuePage* page,
                      std::vector<uint64_t>* drop) {
  const rocksdb::Snapshot* snapshot = impl.db->GetSnapshot();
  const std::string end = keys::ClientEnd(client_id);
  const rocksdb::Slice upper(end);
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  ro.iterate_upper_bound = &upper;
  absl::Status status;
  {
    std::unique_ptr<rocksdb::Iterator> it(impl.db->NewIterator(ro, impl.cf(kQueuesCf)));
    if (after_seq != kMaxSeq) it->Seek(keys::Sequenced(client_id, after_seq + 1));
    while (status.ok() && it->Valid() && page->messages.size() < max_entries) {
      status =
          ReadChunk(impl, ro, *it, max_entries - page->messages.size(), now_unix_ms, page, drop);
    }
    if (status.ok()) status = FromRocks(it->status(), "read queue");
    page->end = !it->Valid();
  }
  impl.db->ReleaseSnapshot(snapshot);
  return status;
}

}  // namespace

absl::StatusOr<QueuePage> Store::ReadQueue(std::string_view client_id, uint64_t after_seq,
                                           size_t max_entries, uint64_t now_unix_ms) {
  if (client_id.empty() || std::memchr(client_id.data(), 0, client_id.size()) != nullptr) {
    return absl::InvalidArgumentError("storage: invalid client id");
  }
  QueuePage page;
  page.last_seq = after_seq;
  std::vector<uint64_t> drop;
  absl::Status s = ReadPage(*impl_, client_id, after_seq, max_entries, now_unix_ms, &page, &drop);
  if (!s.ok()) return s;
  if (drop.empty()) return page;
  Batch batch;
  for (uint64_t seq : drop) batch.RemoveQueueEntry(client_id, seq);
  Write(std::move(batch)).IgnoreError();  // best effort: skipped again next time otherwise
  return page;
}

QueueStats Store::queue_stats(std::string_view client_id) const {
  absl::MutexLock lock(&impl_->mu);
  auto it = impl_->queue_stats.find(AbslView(client_id));
  return it == impl_->queue_stats.end() ? QueueStats() : it->second;
}

std::vector<std::string> Store::QueueOwners(std::string_view prefix) const {
  std::vector<std::string> owners;
  {
    absl::MutexLock lock(&impl_->mu);
    for (const auto& [client, stats] : impl_->queue_stats) {
      if (stats.count > 0 && absl::StartsWith(client, AbslView(prefix))) owners.push_back(client);
    }
  }
  std::sort(owners.begin(), owners.end());
  return owners;
}

absl::StatusOr<MessageRecord> Store::GetMessage(uint64_t id) const {
  return impl_->GetRecord<MessageRecord>(kMessagesCf, keys::MessageId(id));
}

uint32_t Store::MessageRefsForTesting(uint64_t id) const {
  absl::MutexLock lock(&impl_->mu);
  auto it = impl_->refs.find(id);
  return it == impl_->refs.end() ? 0 : it->second.refs;
}

}  // namespace mqtt::storage
