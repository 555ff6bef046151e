// SPDX-License-Identifier: Apache-2.0
// Store: one node's durable state (persistent sessions, offline queues, in-flight windows,
// inbound QoS 2 ids, retained messages, node metadata) in one RocksDB instance under the data
// directory. Records are mqtt.storage.v1 protobufs (proto/storage.proto); the on-disk layout is
// in storage/README.md.
//
// Durability: Write returns once the batch is in the write-ahead log. With fsync = false (the
// default) an acknowledged batch survives a process kill (SIGKILL, crash), not a power loss;
// with fsync = true each write group is fsync'ed and survives power loss too, except a group of
// batches that only remove in-flight records (Batch::forgets_only): losing one in a power loss
// brings the records back, i.e. the messages are sent again (DUP, or PUBREL again for QoS 2),
// which QoS 1 and 2 allow; it is in the log before any later write, whose fsync covers it.
//
// Errors: every method returns absl::Status(Or); RocksDB errors are converted inside storage/
// and name the operation and, at Open, the path. After a failed write (full disk, I/O error)
// the store refuses every later Write with the same error until it is reopened: reads still
// work, and no state is half-written.
//
// Threading: a Store is node-wide. Every method may be called from any thread concurrently
// (each worker commits its own batch per loop turn); concurrent Writes are committed in one
// group, LevelDB style, in the order they arrived. Destroy it only when no call is running.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "node/base/latency_histogram.h"
#include "proto/storage.pb.h"
#include "storage/batch.h"
#include "storage/faults.h"

namespace mqtt::storage {

class StoreImpl;  // store_impl.h

struct StoreOptions {
  std::string path;  // the data directory; RocksDB owns its contents
  bool fsync = false;
  bool create_if_missing = true;
  // Write-ahead log budget: once the WAL outgrows it, RocksDB flushes the column families that
  // keep its oldest file alive. Also the memtables' total. Disk use stays within live data plus a
  // few times this (about once, measured); restart replays at most this much.
  uint64_t wal_budget_bytes = 64 << 20;
  // Compress write-ahead log records (ZSTD): the WAL is nearly all a queue workload writes
  // (entries written and removed between two flushes never reach an SST file). A write group of
  // 16 messages compresses ~6x (client ids, topics, keys repeat); one message alone grows ~5 %.
  // Costs ~5 % more broker CPU per persisted message (issue 15, docs/performance.md).
  bool wal_compression = true;
  std::shared_ptr<StorageFaults> faults;  // tests only: see faults.h
};

// Queue size of one client, for the bounded-queue policy. Bytes are those of the message
// records the entries refer to, each entry counted in full (a message shared by N queues counts
// N times: that is what each client would receive).
struct QueueStats {
  uint64_t count = 0;
  uint64_t bytes = 0;
};

struct QueuedMessage {
  uint64_t seq = 0;
  QueueEntry entry;
  MessageRecord message;
};

struct QueuePage {
  std::vector<QueuedMessage> messages;  // in queue order
  uint64_t last_seq = 0;                // of the last entry examined: the next page's after_seq
  bool end = false;                     // nothing after last_seq at the time of reading
  uint32_t expired = 0;                 // entries skipped and removed: message expired
  uint32_t missing = 0;  // entries skipped and removed: message not stored (should not happen)
};

struct InflightEntry {
  uint64_t seq = 0;
  InflightRecord record;
  std::optional<MessageRecord> message;  // absent when record.message_id() is 0
};

struct SessionState {
  SessionRecord record;
  std::vector<InflightEntry> inflight;  // in send order
  std::vector<uint16_t> inbound_qos2;   // ascending
  uint64_t next_seq = 1;                // first unused queue / in-flight sequence number
  QueueStats queue;
};

// What Open found and repaired.
struct OpenStats {
  uint64_t micros = 0;  // wall time of Open, recovery scans included
  uint64_t queue_entries = 0;
  uint64_t inflight_records = 0;
  uint64_t messages = 0;
  uint64_t orphan_messages_deleted = 0;  // stored, referred to by nothing
  uint64_t dangling_references = 0;      // messages referred to but missing (reads drop them)
};

struct StoreStats {
  uint64_t messages = 0;             // message records stored
  uint64_t queue_entries = 0;        // over all clients
  uint64_t batches = 0;              // committed by Write
  uint64_t write_groups = 0;         // RocksDB writes they took
  uint64_t synced_write_groups = 0;  // of those, fsync'ed ones (fsync = true)
  uint64_t bytes_written = 0;        // RocksDB WriteBatch bytes (~ WAL bytes)
};

// RocksDB's own figures, summed over the column families (Store::db_figures).
struct DbFigures {
  uint64_t estimate_keys = 0;             // rocksdb.estimate-num-keys
  uint64_t sst_bytes = 0;                 // rocksdb.total-sst-files-size (all versions)
  uint64_t live_sst_bytes = 0;            // rocksdb.live-sst-files-size (current version)
  uint64_t memtable_bytes = 0;            // rocksdb.cur-size-all-mem-tables
  uint64_t pending_compaction_bytes = 0;  // rocksdb.estimate-pending-compaction-bytes
  uint64_t wal_bytes = 0;                 // the live WAL files (DB::GetSortedWalFiles)
};

// When `session` ends if no client reconnects: expires_at_unix_ms if set, never if
// never_expires, else (the client was connected when the node stopped) last_seen + interval,
// never for interval 0xFFFFFFFF.
std::optional<uint64_t> SessionExpiresAt(const SessionRecord& session);

class Store {
 public:
  using Batch = storage::Batch;
  static constexpr uint32_t kFormatVersion = 1;

  // Opens (or, with create_if_missing, creates) the store in options.path and rebuilds the
  // in-memory message reference counts and queue stats, deleting unreferenced messages.
  // Errors (each message names the path): kFailedPrecondition "... is in use by another process
  // or Store" when another process (or Store) has it open; kNotFound when it does not exist or
  // holds no store and create_if_missing is false; kFailedPrecondition when it is not a
  // directory or was written by a newer format version; kDataLoss when it is corrupt or
  // incomplete (never repaired silently); kResourceExhausted for a full disk.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Applies `batch` atomically: all of it is durable (see above) or none of it is visible.
  // kInvalidArgument / kFailedPrecondition for a bad batch (see batch.h); other codes for a
  // storage error, after which every Write fails. The batch is left empty.
  absl::Status Write(Batch&& batch);

  // A fresh message id, > 0 and greater than any id handed out before, across restarts.
  absl::StatusOr<uint64_t> NewMessageId();

  // --- Sessions (sessions.cc) ---
  // kNotFound if `client_id` has no stored session.
  absl::StatusOr<SessionRecord> GetSession(std::string_view client_id) const;
  // Visits every session in client id order with its in-flight window (and their messages) and
  // inbound QoS 2 ids; stops at the first non-OK status `visit` returns and returns it. Holds
  // one session at a time: memory does not grow with the number of sessions.
  absl::Status LoadSessions(absl::FunctionRef<absl::Status(const SessionState&)> visit) const;
  // One session as LoadSessions gives it, read from one snapshot; kNotFound if none is stored.
  absl::StatusOr<SessionState> LoadSession(std::string_view client_id) const;
  // Deletes (as DeleteSession) every session with SessionExpiresAt <= now_unix_ms and returns
  // their client ids. Call it at start-up, before LoadSessions, or from the owner of the
  // sessions: it races with a concurrent reconnect of the same client.
  absl::StatusOr<std::vector<std::string>> PurgeExpiredSessions(uint64_t now_unix_ms);

  // --- Queues and messages (queues.cc) ---
  // Up to `max_entries` queued messages of `client_id` after sequence `after_seq` (0 = from the
  // start), each with its message, read from one snapshot. Entries whose message expired
  // (expires_at_unix_ms <= now_unix_ms) or is missing are skipped and removed by a Write of
  // their own (best effort: if the store refuses writes, they are skipped again next time).
  // An empty or unknown queue gives an empty page with end = true.
  absl::StatusOr<QueuePage> ReadQueue(std::string_view client_id, uint64_t after_seq,
                                      size_t max_entries, uint64_t now_unix_ms);
  // From memory; zeros for an unknown client. Reflects committed Writes only.
  QueueStats queue_stats(std::string_view client_id) const;
  // Every queue owner (client id) whose id starts with `prefix` and that holds at least one
  // entry, from memory, sorted. For the node's own queues (worker and peer outboxes).
  std::vector<std::string> QueueOwners(std::string_view prefix) const;
  // kNotFound if message `id` is not stored (never was, or no longer referred to).
  absl::StatusOr<MessageRecord> GetMessage(uint64_t id) const;
  // References the store counts for message `id` (tests and diagnostics).
  uint32_t MessageRefsForTesting(uint64_t id) const;
  // Flushes every memtable, then with `compact` compacts every column family to the last level
  // (tests: what a flush keeps, what survives compaction).
  absl::Status FlushForTesting(bool compact);
  // RocksDB's estimate of the keys in the SST files of `column_family` (tests and diagnostics).
  uint64_t SstKeysForTesting(std::string_view column_family) const;

  // --- Retained messages (retained.cc) ---
  // kNotFound if `topic` has no retained message (a tombstone counts as none).
  absl::StatusOr<MessageRecord> GetRetained(std::string_view topic) const;
  // Visits every retained message in topic order, streaming; skips tombstones, and skips those
  // expired at now_unix_ms and returns how many. Expired records without a cluster version
  // (hlc 0, no origin) are deleted (best effort); versioned ones stay for the cluster's
  // replication, which turns them into tombstones. Stops at the first non-OK status from
  // `visit`. Meant for start-up: a concurrent PutRetained of an expired topic may be undone.
  absl::StatusOr<uint64_t> LoadRetained(
      uint64_t now_unix_ms,
      absl::FunctionRef<absl::Status(std::string_view topic, const MessageRecord&)> visit);
  // As LoadRetained, for the cluster's replication: visits every record with its version,
  // tombstones and versioned expired messages included (the caller decides what they mean).
  // Deletes unversioned expired records as LoadRetained does and returns how many.
  absl::StatusOr<uint64_t> LoadRetainedRecords(
      uint64_t now_unix_ms,
      absl::FunctionRef<absl::Status(std::string_view topic, const v1::RetainedRecord&)> visit);

  // --- Node metadata (meta.cc) ---
  NodeMeta node_meta() const;
  // The value of Batch::PutProgress(name, ...) last written; 0 if never.
  absl::StatusOr<uint64_t> GetProgress(std::string_view name) const;
  // The value of Batch::PutNodeValue(name, ...) last written; empty if never.
  absl::StatusOr<std::string> GetNodeValue(std::string_view name) const;
  absl::Status SetNodeIdentity(std::string_view node_id, uint64_t incarnation);

  const std::string& path() const;
  const OpenStats& open_stats() const;
  StoreStats stats() const;
  // How long each RocksDB write of a group commit took (fsync included when on), since Open.
  LatencySnapshot write_latency() const;
  // RocksDB's properties, read now (for a scrape: a few lookups and a listing of the WAL
  // files, no I/O on the data). A figure RocksDB cannot give is 0.
  DbFigures db_figures() const;
  // OK, or the storage error that made this store refuse writes.
  absl::Status write_error() const;

 private:
  explicit Store(std::unique_ptr<StoreImpl> impl);

  std::unique_ptr<StoreImpl> impl_;
};

}  // namespace mqtt::storage
