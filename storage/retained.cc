// SPDX-License-Identifier: Apache-2.0
// Retained messages: point reads and the streaming start-up loads with expiry. Records may carry
// the cluster's version and be tombstones (RetainedRecord in proto/storage.proto).
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/store_impl.h"

namespace mqtt::storage {
namespace {

constexpr size_t kDeleteBatch = 1024;

bool Expired(const MessageRecord& message, uint64_t now_unix_ms) {
  return message.expires_at_unix_ms() != 0 && message.expires_at_unix_ms() <= now_unix_ms;
}

// Written by a node alone (Batch::PutRetained): no cluster version to keep.
bool Unversioned(const v1::RetainedRecord& record) {
  return record.hlc() == 0 && record.origin().empty();
}

}  // namespace

absl::StatusOr<MessageRecord> Store::GetRetained(std::string_view topic) const {
  absl::StatusOr<v1::RetainedRecord> record =
      impl_->GetRecord<v1::RetainedRecord>(kRetainedCf, topic);
  if (!record.ok()) return record.status();
  if (record->tombstone()) {
    return absl::NotFoundError(absl::StrCat("no retained message for ", PrintableKey(topic)));
  }
  return std::move(*record->mutable_message());
}

absl::StatusOr<uint64_t> Store::LoadRetainedRecords(
    uint64_t now_unix_ms,
    absl::FunctionRef<absl::Status(std::string_view topic, const v1::RetainedRecord&)> visit) {
  std::vector<std::string> expired;  // unversioned: deleted after the scan
  {
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cf(kRetainedCf)));
    v1::RetainedRecord record;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const rocksdb::Slice value = it->value();
      if (!record.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
        return StoreImpl::CorruptRecord(kRetainedCf, ToView(it->key()));
      }
      if (!record.tombstone() && Unversioned(record) && Expired(record.message(), now_unix_ms)) {
        expired.push_back(it->key().ToString());
        continue;
      }
      if (absl::Status s = visit(ToView(it->key()), record); !s.ok()) return s;
    }
    if (!it->status().ok()) return FromRocks(it->status(), "read retained messages");
  }
  for (size_t i = 0; i < expired.size(); i += kDeleteBatch) {
    Batch batch;
    for (size_t j = i; j < expired.size() && j < i + kDeleteBatch; ++j) {
      batch.DeleteRetained(expired[j]);
    }
    Write(std::move(batch)).IgnoreError();  // best effort: skipped again next time otherwise
  }
  return expired.size();
}

absl::StatusOr<uint64_t> Store::LoadRetained(
    uint64_t now_unix_ms,
    absl::FunctionRef<absl::Status(std::string_view topic, const MessageRecord&)> visit) {
  uint64_t versioned_expired = 0;
  absl::StatusOr<uint64_t> deleted = LoadRetainedRecords(
      now_unix_ms, [&](std::string_view topic, const v1::RetainedRecord& record) {
        if (record.tombstone()) return absl::OkStatus();
        if (Expired(record.message(), now_unix_ms)) {
          ++versioned_expired;  // kept for the replication (see store.h)
          return absl::OkStatus();
        }
        return visit(topic, record.message());
      });
  if (!deleted.ok()) return deleted.status();
  return *deleted + versioned_expired;
}

}  // namespace mqtt::storage
