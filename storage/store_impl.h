// SPDX-License-Identifier: Apache-2.0
// The state behind Store: the RocksDB handles, the in-memory message reference counts and queue
// stats, and the writer queue of the group commit. Internal to storage/.
//
// Locking: `mu` guards the write path state. A Write's leader holds it while it resolves its
// group (reads old entries, computes reference and stats changes), releases it around the
// RocksDB write, and takes it again to commit the counts, so the counts always describe exactly
// what RocksDB holds. `meta_mu` guards node metadata and message id allocation.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "node/base/latency_histogram.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "storage/keys.h"
#include "storage/rocks_util.h"
#include "storage/store.h"

namespace mqtt::storage {

// Column families, in the order they are opened (RocksDB requires "default" to exist).
enum Cf : int {
  kDefaultCf,
  kSessionsCf,
  kMessagesCf,
  kQueuesCf,
  kInflightCf,
  kInboundCf,
  kRetainedCf,
  kMetaCf,
  kCfCount
};
extern const char* const kCfNames[kCfCount];

// What the store remembers per stored message.
struct MessageRef {
  uint32_t refs = 0;   // queue entries + in-flight records referring to it
  uint32_t bytes = 0;  // serialized MessageRecord size
};

// A queue entry or in-flight record as the write path needs it: the message it refers to.
struct EntryRef {
  uint64_t message_id = 0;
  uint32_t bytes = 0;  // queue entries only
  // The key was Put once since it last was absent (never, or after a SingleDelete, Delete or
  // range deletion), so SingleDelete may remove it. False when unknown (written before Open).
  bool single_put = false;
};

// Queue entries and in-flight records written since Open, so that the write path learns what a
// removal drops without reading RocksDB (a memtable lookup per removed entry was a fifth of the
// broker's CPU under persistent QoS 1). Exact where it holds a key: updated in WriteGroup::Commit
// with the counts, after RocksDB took the write (the write group is the only writer of these
// column families). A key not held may still be stored only for a client in
// `uncached_clients` (it had keys at Open, or a key of it was not admitted because the cache was
// full): Lookup reads RocksDB for those, and knows the key absent for every other client (a new
// in-flight record's lookup was a memtable miss per message, 9 % of a persisting worker's CPU).
struct EntryCache {
  static constexpr size_t kMaxEntries = 32768;  // per column family: ~3 MB at most
  absl::btree_map<std::string, EntryRef, std::less<>> entries;
  // Hashes of client ids, so that a million offline sessions cost ~16 MB, not their ids; a
  // collision only costs a needless read. Never shrinks (a removal would clear a colliding
  // client's mark too).
  absl::flat_hash_set<size_t> uncached_clients;

  static std::string_view ClientOf(std::string_view sequenced_key) {
    return sequenced_key.substr(0, sequenced_key.size() - keys::kSeqSuffix);
  }
  static size_t ClientHash(std::string_view client) {
    return absl::Hash<absl::string_view>{}(absl::string_view(client.data(), client.size()));
  }
  void MarkUncached(std::string_view client) { uncached_clients.insert(ClientHash(client)); }
  bool MayHoldUncached(std::string_view key) const {
    return uncached_clients.contains(ClientHash(ClientOf(key)));
  }
  void Put(const std::string& key, const EntryRef& ref) {
    if (auto it = entries.find(key); it != entries.end()) {
      it->second = ref;
    } else if (entries.size() < kMaxEntries) {
      entries.emplace(key, ref);
    } else {
      MarkUncached(ClientOf(key));
    }
  }
  void Erase(std::string_view key) {
    if (auto it = entries.find(key); it != entries.end()) entries.erase(it);
  }
  void EraseRange(std::string_view begin, std::string_view end) {
    entries.erase(entries.lower_bound(begin), entries.lower_bound(end));
  }
};

// One Write call waiting in the group-commit queue.
struct Writer {
  explicit Writer(Batch* b) : batch(b) {}
  Batch* batch;
  absl::Status status;
  bool done = false;
  absl::CondVar cv;
};

inline constexpr std::string_view kNodeMetaKey = "node";

class StoreImpl {
 public:
  StoreImpl() = default;
  ~StoreImpl();  // closes the database
  StoreImpl(const StoreImpl&) = delete;
  StoreImpl& operator=(const StoreImpl&) = delete;

  rocksdb::ColumnFamilyHandle* cf(Cf c) const { return handles[c]; }

  // Reads the record at `key` in `c`: kNotFound if absent, kDataLoss if it does not parse.
  template <typename Record>
  absl::StatusOr<Record> GetRecord(Cf c, std::string_view key,
                                   const rocksdb::ReadOptions& ro = {}) const {
    std::string value;
    rocksdb::Status s = db->Get(ro, cf(c), ToSlice(key), &value);
    if (!s.ok()) return FromRocks(s, std::string("read ") + kCfNames[c]);
    Record record;
    if (!record.ParseFromString(value)) return CorruptRecord(c, key);
    return record;
  }
  static absl::Status CorruptRecord(Cf c, std::string_view key);

  StoreOptions options;
  std::unique_ptr<rocksdb::Env> env;  // only with fault injection
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // owned, indexed by Cf
  rocksdb::WriteOptions write_options;
  OpenStats open_stats;

  mutable absl::Mutex mu;
  std::deque<Writer*> writers ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<uint64_t, MessageRef> refs ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, QueueStats> queue_stats ABSL_GUARDED_BY(mu);
  uint64_t queue_entries ABSL_GUARDED_BY(mu) = 0;
  EntryCache queue_cache ABSL_GUARDED_BY(mu);
  EntryCache inflight_cache ABSL_GUARDED_BY(mu);
  absl::Status write_error ABSL_GUARDED_BY(mu);
  uint64_t batches ABSL_GUARDED_BY(mu) = 0;
  uint64_t write_groups ABSL_GUARDED_BY(mu) = 0;
  uint64_t synced_write_groups ABSL_GUARDED_BY(mu) = 0;
  uint64_t bytes_written ABSL_GUARDED_BY(mu) = 0;
  // RocksDB write (and fsync) time of each group. Recorded with mu held, read without it.
  LatencyHistogram write_latency;

  mutable absl::Mutex meta_mu;
  NodeMeta meta ABSL_GUARDED_BY(meta_mu);
  uint64_t next_message_id ABSL_GUARDED_BY(meta_mu) = 1;
};

// Recovery steps of Open (recovery.cc, meta.cc).
absl::Status LoadOrInitMeta(StoreImpl& impl);
absl::Status RebuildReferences(StoreImpl& impl);

// The key as printable text for error messages: MQTT strings stay, other bytes become \xNN.
std::string PrintableKey(std::string_view key);

}  // namespace mqtt::storage
