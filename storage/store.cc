// SPDX-License-Identifier: Apache-2.0
// Store core: Open (RocksDB options, column families, error mapping), close, accessors.
#include "storage/store.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "rocksdb/cache.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "rocksdb/transaction_log.h"
#include "rocksdb/utilities/table_properties_collectors.h"
#include "storage/fault_env.h"
#include "storage/insert_hint.h"
#include "storage/store_impl.h"

namespace mqtt::storage {

const char* const kCfNames[kCfCount] = {"default",  "sessions",     "messages", "queues",
                                        "inflight", "inbound_qos2", "retained", "meta"};

namespace {

// Disk use and restart time follow live data, not uptime (storage/README.md, "Disk budget"):
// - The column families share one WAL, and a WAL file is deleted only once every column family
//   with data in it has flushed. max_total_wal_size makes RocksDB flush the column families that
//   hold the oldest WAL file (quiet ones such as sessions included) once the WAL outgrows the
//   budget, so the WAL, and the replay at Open, stay within it.
// - Memtables together are bounded by db_write_buffer_size; recovery replays at most the WAL
//   budget into them.
rocksdb::Options DbOptions(const StoreOptions& options, rocksdb::Env* env) {
  rocksdb::Options o;
  o.create_if_missing = options.create_if_missing;
  o.create_missing_column_families = true;
  o.paranoid_checks = true;
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  o.max_background_jobs = 2;
  o.max_total_wal_size = options.wal_budget_bytes;
  o.db_write_buffer_size = options.wal_budget_bytes;
  o.keep_log_file_num = 5;
  if (options.wal_compression) o.wal_compression = rocksdb::kZSTD;
  if (env != nullptr) o.env = env;
  return o;
}

// Queue entries and messages live briefly: written once, removed with SingleDelete (write_group.cc)
// so that a pair that meets in a memtable vanishes at flush. Files that still collect many
// tombstones (entries flushed before their removal) are compacted early, so that scans at Open
// and queue reads do not walk deleted entries. Inserts into messages and inflight start from a
// hint (storage/insert_hint.h).
rocksdb::ColumnFamilyOptions CfOptions(Cf cf, const StoreOptions& options,
                                       const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  rocksdb::ColumnFamilyOptions o;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  o.level_compaction_dynamic_level_bytes = true;  // bounds space amplification to ~1.1x
  const bool churn = cf == kQueuesCf || cf == kMessagesCf || cf == kInflightCf;
  o.write_buffer_size = std::max<uint64_t>(options.wal_budget_bytes / (churn ? 4 : 16), 1 << 20);
  if (cf == kMessagesCf) o.memtable_insert_with_hint_prefix_extractor = NewSingleInsertHint();
  if (cf == kInflightCf) o.memtable_insert_with_hint_prefix_extractor = NewClientInsertHint();
  if (churn) {
    o.table_properties_collector_factories.push_back(
        rocksdb::NewCompactOnDeletionCollectorFactory(/*sliding_window_size=*/1024,
                                                      /*deletion_trigger=*/256));
  }
  return o;
}

bool IsLockError(const rocksdb::Status& s) {
  return s.IsIOError() && absl::StrContains(absl::AsciiStrToLower(s.ToString()), "lock");
}

absl::Status OpenError(const rocksdb::Status& s, const std::string& path) {
  const std::string text = s.ToString();
  if (IsLockError(s)) {
    return absl::FailedPreconditionError(
        absl::StrCat("storage: data directory ", path,
                     " is in use by another process or Store (its RocksDB LOCK is held): ", text));
  }
  if (s.IsCorruption()) {
    return absl::DataLossError(absl::StrCat("storage: data directory ", path,
                                            " is corrupt; not repaired automatically: ", text));
  }
  if (s.IsPathNotFound()) {
    return absl::DataLossError(absl::StrCat("storage: data directory ", path,
                                            " is incomplete (a file it needs is missing); not "
                                            "repaired automatically: ",
                                            text));
  }
  return FromRocks(s, absl::StrCat("open data directory ", path));
}

// Checks what RocksDB would report less clearly: a missing directory, a file in its place.
absl::Status CheckPath(const StoreOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("storage: empty data directory");
  std::error_code ec;
  const auto st = std::filesystem::status(options.path, ec);
  if (!std::filesystem::exists(st)) {
    if (options.create_if_missing) return absl::OkStatus();
    return absl::NotFoundError(
        absl::StrCat("storage: data directory ", options.path, " does not exist"));
  }
  if (!std::filesystem::is_directory(st)) {
    return absl::FailedPreconditionError(
        absl::StrCat("storage: data directory ", options.path, " is not a directory"));
  }
  if (!options.create_if_missing && !std::filesystem::exists(options.path + "/CURRENT", ec)) {
    return absl::NotFoundError(absl::StrCat("storage: data directory ", options.path,
                                            " holds no store (no CURRENT file)"));
  }
  return absl::OkStatus();
}

absl::Status OpenDb(StoreImpl& impl) {
  if (impl.options.faults) impl.env = NewFaultInjectionEnv(impl.options.faults);
  const rocksdb::Options db_options = DbOptions(impl.options, impl.env.get());
  const auto cache = rocksdb::NewLRUCache(64 << 20);
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (int c = 0; c < kCfCount; ++c) {
    cfs.emplace_back(kCfNames[c], CfOptions(static_cast<Cf>(c), impl.options, cache));
  }
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, impl.options.path, cfs, &impl.handles, &db);
  if (!s.ok()) return OpenError(s, impl.options.path);
  impl.db.reset(db);
  return absl::OkStatus();
}

}  // namespace

StoreImpl::~StoreImpl() {
  if (!db) return;
  for (rocksdb::ColumnFamilyHandle* h : handles) db->DestroyColumnFamilyHandle(h);
  db->Close().PermitUncheckedError();
}

absl::Status StoreImpl::CorruptRecord(Cf c, std::string_view key) {
  return absl::DataLossError(absl::StrCat("storage: corrupt record in ", kCfNames[c], " at key '",
                                          PrintableKey(key), "'"));
}

std::string PrintableKey(std::string_view key) {
  std::string out;
  for (unsigned char ch : key) {
    if (ch >= 0x20 && ch < 0x7f) {
      out.push_back(static_cast<char>(ch));
    } else {
      absl::StrAppend(&out, "\\x", absl::Hex(ch, absl::kZeroPad2));
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (absl::Status s = CheckPath(options); !s.ok()) return s;
  auto impl = std::make_unique<StoreImpl>();
  impl->options = options;
  impl->write_options.sync = options.fsync;
  if (absl::Status s = OpenDb(*impl); !s.ok()) return s;
  if (absl::Status s = LoadOrInitMeta(*impl); !s.ok()) return s;
  if (absl::Status s = RebuildReferences(*impl); !s.ok()) return s;
  impl->open_stats.micros = std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::steady_clock::now() - start)
                                .count();
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Store::Store(std::unique_ptr<StoreImpl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

const std::string& Store::path() const { return impl_->options.path; }
const OpenStats& Store::open_stats() const { return impl_->open_stats; }

StoreStats Store::stats() const {
  absl::MutexLock lock(&impl_->mu);
  StoreStats s;
  s.messages = impl_->refs.size();
  s.queue_entries = impl_->queue_entries;
  s.batches = impl_->batches;
  s.write_groups = impl_->write_groups;
  s.synced_write_groups = impl_->synced_write_groups;
  s.bytes_written = impl_->bytes_written;
  return s;
}

LatencySnapshot Store::write_latency() const { return impl_->write_latency.Snapshot(); }

DbFigures Store::db_figures() const {
  rocksdb::DB& db = *impl_->db;
  auto sum = [&db](const std::string& property) {
    uint64_t value = 0;
    return db.GetAggregatedIntProperty(property, &value) ? value : 0;
  };
  DbFigures f;
  f.estimate_keys = sum(rocksdb::DB::Properties::kEstimateNumKeys);
  f.sst_bytes = sum(rocksdb::DB::Properties::kTotalSstFilesSize);
  f.live_sst_bytes = sum(rocksdb::DB::Properties::kLiveSstFilesSize);
  f.memtable_bytes = sum(rocksdb::DB::Properties::kCurSizeAllMemTables);
  f.pending_compaction_bytes = sum(rocksdb::DB::Properties::kEstimatePendingCompactionBytes);
  rocksdb::VectorLogPtr wal_files;
  if (db.GetSortedWalFiles(wal_files).ok()) {
    for (const std::unique_ptr<rocksdb::LogFile>& file : wal_files) {
      if (file->Type() == rocksdb::kAliveLogFile) f.wal_bytes += file->SizeFileBytes();
    }
  }
  return f;
}

absl::Status Store::FlushForTesting(bool compact) {
  rocksdb::FlushOptions flush;
  flush.wait = true;
  if (absl::Status s = FromRocks(impl_->db->Flush(flush, impl_->handles), "flush"); !s.ok()) {
    return s;
  }
  if (!compact) return absl::OkStatus();
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (rocksdb::ColumnFamilyHandle* h : impl_->handles) {
    absl::Status s = FromRocks(impl_->db->CompactRange(options, h, nullptr, nullptr), "compact");
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

uint64_t Store::SstKeysForTesting(std::string_view column_family) const {
  for (int c = 0; c < kCfCount; ++c) {
    if (column_family != kCfNames[c]) continue;
    rocksdb::TablePropertiesCollection props;
    if (!impl_->db->GetPropertiesOfAllTables(impl_->cf(static_cast<Cf>(c)), &props).ok()) return 0;
    uint64_t keys = 0;
    for (const auto& [file, p] : props) keys += p->num_entries + p->num_range_deletions;
    return keys;
  }
  return 0;
}

absl::Status Store::write_error() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->write_error;
}

}  // namespace mqtt::storage
