// SPDX-License-Identifier: Apache-2.0
// Measurements (label "bench", not run in CI): prints figures, asserts only sanity.
// - one QoS 1 message queued for 10,000 offline sessions in one batch: time, bytes written;
// - the per-publish cost of durability: small batches per second, fsync off/on, 1 and 4 writers;
// - Open (recovery) time with 1,000,000 queued entries over 10,000 sessions and 100,000
//   retained messages, then the start-up walks (LoadSessions, LoadRetained).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "storage/store.h"
#include "tests/unit/storage/store_test_util.h"

namespace mqtt::storage {
namespace {

using Clock = std::chrono::steady_clock;
using testing_util::Entry;
using testing_util::Msg;
using testing_util::Session;
using testing_util::TempDir;

double MillisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

uint64_t WalBytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    if (f.path().extension() == ".log") total += f.file_size();
  }
  return total;
}

std::unique_ptr<Store> OpenAt(const std::string& path, bool fsync = false) {
  StoreOptions options;
  options.path = path;
  options.fsync = fsync;
  auto store = Store::Open(options);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

std::string Client(int i) { return "client-" + std::to_string(i); }

void FanOutOnce(bool fsync, size_t payload) {
  TempDir dir;
  const std::string path = dir.path() + "/data";
  auto store = OpenAt(path, fsync);
  constexpr int kSessions = 10000;
  Batch setup;
  for (int i = 0; i < kSessions; ++i) setup.PutSession(Session(Client(i)));
  ASSERT_TRUE(store->Write(std::move(setup)).ok());
  const uint64_t wal_before = WalBytes(path);
  const uint64_t bytes_before = store->stats().bytes_written;
  const MessageRecord message = Msg("sensors/building-1/floor-2/temp", std::string(payload, 'x'));
  const auto start = Clock::now();
  Batch batch;
  const uint64_t id = *store->NewMessageId();
  batch.PutMessage(id, message);
  for (int i = 0; i < kSessions; ++i) batch.AddQueueEntry(Client(i), 1, Entry(id));
  ASSERT_TRUE(store->Write(std::move(batch)).ok());
  const double ms = MillisSince(start);
  const uint64_t wal = WalBytes(path) - wal_before;
  const uint64_t written = store->stats().bytes_written - bytes_before;
  std::printf(
      "fan-out 1 x QoS1 (%zu B payload, record %zu B) -> %d offline sessions, fsync=%d: "
      "%.1f ms, batch %llu B, WAL +%llu B (%.1f B/session; a copy per session would be "
      ">= %zu B)\n",
      payload, message.ByteSizeLong(), kSessions, fsync, ms,
      static_cast<unsigned long long>(written), static_cast<unsigned long long>(wal),
      static_cast<double>(wal) / kSessions, message.ByteSizeLong() * kSessions);
  EXPECT_EQ(store->stats().messages, 1u);
  EXPECT_LT(wal, 60u * kSessions);
}

TEST(StorageBench, FanOutToTenThousandOfflineSessions) {
  FanOutOnce(false, 100);
  FanOutOnce(false, 1024);
  FanOutOnce(true, 1024);
}

// One QoS 1 publish to one offline session per batch, as a worker would commit it.
void SmallBatches(bool fsync, int threads, int per_thread) {
  TempDir dir;
  auto store = OpenAt(dir.path() + "/data", fsync);
  const auto start = Clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 1; i <= per_thread; ++i) {
        Batch batch;
        const uint64_t id = *store->NewMessageId();
        batch.PutMessage(id, Msg("t/" + std::to_string(t), std::string(100, 'x')));
        batch.AddQueueEntry(Client(t), i, Entry(id));
        ASSERT_TRUE(store->Write(std::move(batch)).ok());
      }
    });
  }
  for (std::thread& w : workers) w.join();
  const double ms = MillisSince(start);
  const StoreStats stats = store->stats();
  std::printf(
      "small batches (1 message + 1 queue entry), fsync=%d, %d writer(s): %.0f batches/s, "
      "%.1f us/batch, %llu batches in %llu RocksDB writes\n",
      fsync, threads, threads * per_thread / (ms / 1000), ms * 1000 / (threads * per_thread),
      static_cast<unsigned long long>(stats.batches),
      static_cast<unsigned long long>(stats.write_groups));
}

TEST(StorageBench, DurabilityCostPerBatch) {
  SmallBatches(false, 1, 20000);
  SmallBatches(false, 4, 5000);
  SmallBatches(true, 1, 500);
  SmallBatches(true, 4, 250);
}

// 10,000 sessions x 100 queued entries (10,000 messages, each queued for 100 sessions) and
// 100,000 retained messages.
void Populate(Store& store) {
  constexpr int kSessions = 10000;
  constexpr int kMessages = 10000;
  constexpr int kFanOut = 100;
  std::vector<uint64_t> next_seq(kSessions, 1);
  Batch batch;
  for (int i = 0; i < kSessions; ++i) batch.PutSession(Session(Client(i)));
  ASSERT_TRUE(store.Write(std::move(batch)).ok());
  for (int m = 0; m < kMessages; ++m) {
    const uint64_t id = *store.NewMessageId();
    batch.PutMessage(id, Msg("devices/" + std::to_string(m), std::string(100, 'q')));
    for (int j = 0; j < kFanOut; ++j) {
      const int s = (m * kFanOut + j) % kSessions;
      batch.AddQueueEntry(Client(s), next_seq[s]++, Entry(id));
    }
    if (m % 50 == 49) {
      ASSERT_TRUE(store.Write(std::move(batch)).ok());
    }
  }
  for (int r = 0; r < 100000; ++r) {
    const std::string topic =
        "site/" + std::to_string(r / 1000) + "/device/" + std::to_string(r) + "/state";
    batch.PutRetained(topic, Msg(topic, std::string(64, 'r')));
    if (r % 5000 == 4999) {
      ASSERT_TRUE(store.Write(std::move(batch)).ok());
    }
  }
}

void TimedRecovery(const std::string& path, const char* label) {
  auto start = Clock::now();
  auto store = OpenAt(path);
  ASSERT_NE(store, nullptr);
  const double open_ms = MillisSince(start);
  start = Clock::now();
  uint64_t sessions = 0;
  ASSERT_TRUE(store
                  ->LoadSessions([&](const SessionState&) {
                    ++sessions;
                    return absl::OkStatus();
                  })
                  .ok());
  const double sessions_ms = MillisSince(start);
  start = Clock::now();
  uint64_t retained = 0;
  ASSERT_TRUE(store
                  ->LoadRetained(0,
                                 [&](std::string_view, const MessageRecord&) {
                                   ++retained;
                                   return absl::OkStatus();
                                 })
                  .ok());
  const double retained_ms = MillisSince(start);
  start = Clock::now();
  absl::StatusOr<QueuePage> page = store->ReadQueue(Client(1234), 0, 100, 0);
  const double page_ms = MillisSince(start);
  const OpenStats& os = store->open_stats();
  std::printf(
      "%s: Open %.0f ms (%llu queue entries, %llu messages, rebuild included); "
      "LoadSessions %.0f ms (%llu); LoadRetained %.0f ms (%llu); one 100-entry queue page "
      "%.2f ms\n",
      label, open_ms, static_cast<unsigned long long>(os.queue_entries),
      static_cast<unsigned long long>(os.messages), sessions_ms,
      static_cast<unsigned long long>(sessions), retained_ms,
      static_cast<unsigned long long>(retained), page_ms);
  EXPECT_EQ(os.queue_entries, 1000000u);
  EXPECT_EQ(retained, 100000u);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->messages.size(), 100u);
}

TEST(StorageBench, RecoveryOfAMillionQueuedEntries) {
  TempDir dir;
  const std::string path = dir.path() + "/data";
  {
    auto store = OpenAt(path);
    const auto start = Clock::now();
    Populate(*store);
    std::printf("populate: %.0f ms\n", MillisSince(start));
  }
  TimedRecovery(path, "first reopen (replays the WAL, as after a kill)");
  TimedRecovery(path, "second reopen (from SST files)");
}

}  // namespace
}  // namespace mqtt::storage
