// SPDX-License-Identifier: Apache-2.0
// WriteGroup turns the batches of one group commit into one rocksdb::WriteBatch and the changes
// to the in-memory message reference counts and queue stats that it implies. Internal to
// storage/.
//
// How reference counting stays exact: only the leader of a group commit builds a WriteGroup,
// with StoreImpl::mu held, after every earlier group reached RocksDB. It reads the entries a
// batch removes or replaces (to learn which message they referred to) from the group's own
// earlier changes, else the store's entry cache (store_impl.h), else RocksDB, works on copies of
// the counts, and appends the message puts (first reference) and deletes (last reference gone) to
// the same WriteBatch. Commit() installs the copies only after RocksDB accepted the write; a failed
// write leaves the counts untouched.
//
// Lifecycle: built, Add()ed to, Finish()ed and Commit()ted by one thread within one Write call,
// with impl.mu held throughout (the methods that read or write the store's counts assert it).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rocksdb/write_batch.h"
#include "storage/batch.h"
#include "storage/store_impl.h"

namespace mqtt::storage {

class WriteGroup {
 public:
  explicit WriteGroup(StoreImpl& impl) ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl.mu) : impl_(impl) {}

  // Appends `batch`. A batch that refers to a message neither stored nor put in the group is
  // refused with kFailedPrecondition and leaves no trace. Any other error (reading RocksDB)
  // poisons the group: fatal() is then set and the group must not be written.
  absl::Status Add(Batch& batch);
  bool fatal() const { return fatal_; }
  bool empty() const { return batches_ == 0; }

  // Appends the message puts and deletes; then write_batch() is complete.
  absl::Status Finish();
  rocksdb::WriteBatch* write_batch() { return &wb_; }

  // Installs the new counts into the store (after the RocksDB write succeeded).
  void Commit();

 private:
  struct RefChange {
    uint32_t before = 0;  // committed count when the group started
    MessageRef now;
  };
  using Overlay = std::map<std::string, std::optional<EntryRef>, std::less<>>;

  static bool AddsReference(const Batch::Op& op);
  absl::Status Validate(const Batch& batch) const;
  absl::Status Apply(Batch::Op& op);
  absl::Status AddQueue(Batch::Op& op);
  absl::Status RemoveQueue(const Batch::Op& op);
  absl::Status PutInflight(const Batch::Op& op);
  absl::Status RemoveInflight(const Batch::Op& op);
  absl::Status DeleteSession(const std::string& client_id);
  absl::Status DropRange(Cf cf, Overlay& overlay, const std::string& client_id);

  absl::StatusOr<std::optional<EntryRef>> Lookup(Cf cf, Overlay& overlay, std::string_view key);
  EntryCache& Cache(Cf cf);
  static absl::StatusOr<EntryRef> ParseEntry(Cf cf, std::string_view key, std::string_view value);
  uint32_t StoredRefs(uint64_t id) const;
  RefChange& Touch(uint64_t id);
  void Ref(uint64_t id, uint32_t bytes);
  void Unref(uint64_t id);
  QueueStats& Stats(std::string_view client_id);
  uint32_t MessageBytes(uint64_t id);

  StoreImpl& impl_;
  rocksdb::WriteBatch wb_;
  Overlay queues_;
  Overlay inflight_;
  absl::flat_hash_set<std::string> dropped_clients_;        // DeleteSession'd earlier in the group
  absl::flat_hash_map<uint64_t, const std::string*> puts_;  // message id -> serialized record
  absl::flat_hash_map<uint64_t, RefChange> refs_;
  absl::flat_hash_map<std::string, QueueStats> stats_;
  int64_t queue_entries_delta_ = 0;
  int batches_ = 0;
  bool fatal_ = false;
};

}  // namespace mqtt::storage
