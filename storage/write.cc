// SPDX-License-Identifier: Apache-2.0
// Store::Write: group commit in the manner of LevelDB's DBImpl::Write. Writers queue up; the
// one at the front (the leader) takes the queued batches, resolves them into one RocksDB write
// (write_group.h), performs it, and wakes the others with their status. One write per group
// means one WAL append (and one fsync when enabled) for all workers' batches of that moment,
// and the order of groups is the order of the in-memory reference counts.
#include <vector>

#include "rocksdb/perf_level.h"
#include "storage/store_impl.h"
#include "storage/write_group.h"

namespace mqtt::storage {
namespace {

constexpr size_t kMaxGroupBytes = 4 << 20;

std::vector<Writer*> TakeGroup(StoreImpl& impl) ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl.mu) {
  std::vector<Writer*> group;
  size_t bytes = 0;
  for (Writer* w : impl.writers) {
    const size_t more = w->batch->ApproximateBytes();
    if (!group.empty() && bytes + more > kMaxGroupBytes) break;
    bytes += more;
    group.push_back(w);
  }
  return group;
}

void FailRemaining(const std::vector<Writer*>& group, const absl::Status& error) {
  for (Writer* w : group) {
    if (w->status.ok()) w->status = error;
  }
}

// Sets every member's status. Called and returns with impl.mu held; releases it around the
// RocksDB write only.
void CommitGroup(StoreImpl& impl, const std::vector<Writer*>& group)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl.mu) {
  if (!impl.write_error.ok()) return FailRemaining(group, impl.write_error);
  // RocksDB's perf context is thread-local and on by default (kEnableCount): every key
  // comparison of a memtable insert bumped a counter through two TLS lookups of the shared
  // library (~9 % of a persisting worker's CPU). Nothing here reads it.
  static thread_local const bool perf_context_off =
      (rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable), true);
  (void)perf_context_off;
  WriteGroup resolved(impl);
  int accepted = 0;
  rocksdb::WriteOptions write_options = impl.write_options;
  write_options.sync = false;
  for (Writer* w : group) {
    write_options.sync |= impl.write_options.sync && !w->batch->forgets_only();
    w->status = resolved.Add(*w->batch);
    if (resolved.fatal()) return FailRemaining(group, w->status);
    if (w->status.ok()) ++accepted;
  }
  if (resolved.empty()) return;
  if (absl::Status s = resolved.Finish(); !s.ok()) return FailRemaining(group, s);
  impl.mu.Unlock();
  const int64_t start_ns = MonotonicNs();
  const rocksdb::Status s = impl.db->Write(write_options, resolved.write_batch());
  const int64_t took_ns = MonotonicNs() - start_ns;
  impl.mu.Lock();
  impl.write_latency.Record(took_ns);  // under mu: one writer at a time
  if (!s.ok()) {
    impl.write_error = FromRocks(s, "write batch (the store now refuses writes)");
    return FailRemaining(group, impl.write_error);
  }
  resolved.Commit();
  impl.batches += accepted;
  impl.write_groups += 1;
  impl.synced_write_groups += write_options.sync ? 1 : 0;
  impl.bytes_written += resolved.write_batch()->GetDataSize();
}

}  // namespace

absl::Status Store::Write(Batch&& batch) {
  if (!batch.error_.ok()) {
    absl::Status error = batch.error_;
    batch.Clear();
    return error;
  }
  if (batch.ops_.empty()) return absl::OkStatus();
  Writer self(&batch);
  absl::MutexLock lock(&impl_->mu);
  impl_->writers.push_back(&self);
  while (!self.done && &self != impl_->writers.front()) self.cv.Wait(&impl_->mu);
  if (self.done) return self.status;
  const std::vector<Writer*> group = TakeGroup(*impl_);
  CommitGroup(*impl_, group);
  for (Writer* member : group) {
    impl_->writers.pop_front();
    member->batch->Clear();
    member->done = true;
    if (member != &self) member->cv.Signal();
  }
  if (!impl_->writers.empty()) impl_->writers.front()->cv.Signal();
  return self.status;
}

}  // namespace mqtt::storage
