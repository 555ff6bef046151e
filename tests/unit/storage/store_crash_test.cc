// SPDX-License-Identifier: Apache-2.0
// Crash safety with a real process: storage_crash_helper writes batches and prints each
// acknowledged one; the test SIGKILLs it at a random moment, reopens the store and checks that
// every acknowledged batch is there, whole, and nothing half-written is. Also: a data directory
// held by another running process is refused.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "storage/store.h"
#include "tests/unit/storage/store_test_util.h"

#ifndef STORAGE_CRASH_HELPER
#error "STORAGE_CRASH_HELPER must name the helper binary"
#endif

namespace mqtt::storage {
namespace {

using Clock = std::chrono::steady_clock;
using testing_util::TempDir;

// The helper process with its stdout on a pipe.
class Helper {
 public:
  Helper(const std::string& dir, bool fsync) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      execl(STORAGE_CRASH_HELPER, STORAGE_CRASH_HELPER, dir.c_str(), fsync ? "fsync" : "nofsync",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    out_ = fds[0];
  }
  ~Helper() {
    Kill();
    close(out_);
  }

  // Reads acknowledgements until `deadline` (or EOF); returns false at EOF.
  bool ReadUntil(Clock::time_point deadline) {
    while (true) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return true;
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      const ssize_t n = read(out_, buf, sizeof buf);
      if (n <= 0) return false;
      for (ssize_t i = 0; i < n; ++i) {
        if (buf[i] == '\n') {
          acked_ = std::stoull(line_);
          line_.clear();
        } else {
          line_.push_back(buf[i]);
        }
      }
    }
  }
  bool WaitForFirstAck(std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    while (acked_ == 0 && Clock::now() < deadline) {
      if (!ReadUntil(std::min(deadline, Clock::now() + std::chrono::milliseconds(10)))) break;
    }
    return acked_ > 0;
  }
  // SIGKILL, then drain what was printed before the kill.
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    ReadUntil(Clock::now() + std::chrono::seconds(5));
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  uint64_t acked() const { return acked_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string line_;
  uint64_t acked_ = 0;
};

// Checks the helper's invariants for some last batch n in {acked, acked + 1}.
void VerifyAfterCrash(Store& store, uint64_t acked) {
  std::map<uint64_t, std::string> queued;  // seq -> payload, over the three clients
  for (const char* c : {"c0", "c1", "c2"}) {
    absl::StatusOr<QueuePage> page = store.ReadQueue(c, 0, 1000, 0);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_EQ(page->missing, 0u);
    for (const QueuedMessage& m : page->messages) queued[m.seq] = m.message.payload();
  }
  ASSERT_FALSE(queued.empty());
  const uint64_t n = queued.rbegin()->first;
  ASSERT_GE(n, acked) << "an acknowledged batch is missing";
  ASSERT_LE(n, acked + 1);
  const uint64_t first = n > 10 ? n - 9 : 1;
  ASSERT_EQ(queued.size(), n - first + 1) << "queue entries of a partial batch";
  for (uint64_t k = first; k <= n; ++k) EXPECT_EQ(queued[k], "m" + std::to_string(k));
  std::map<uint64_t, std::string> inflight;  // seq -> payload
  ASSERT_TRUE(store
                  .LoadSessions([&](const SessionState& s) {
                    for (const InflightEntry& e : s.inflight) {
                      EXPECT_EQ(s.record.client_id(), "inflight");
                      EXPECT_TRUE(e.message.has_value());
                      if (e.message) inflight[e.seq] = e.message->payload();
                    }
                    return absl::OkStatus();
                  })
                  .ok());
  const uint64_t first_inflight = n > 5 ? n - 4 : 1;
  ASSERT_EQ(inflight.size(), n - first_inflight + 1);
  for (uint64_t k = first_inflight; k <= n; ++k) EXPECT_EQ(inflight[k], "m" + std::to_string(k));
  EXPECT_EQ(store.stats().messages, std::min<uint64_t>(n, 10));
  EXPECT_EQ(store.open_stats().orphan_messages_deleted, 0u);
  EXPECT_EQ(store.open_stats().dangling_references, 0u);
  for (uint64_t r = 0; r < 50 && r <= n; ++r) {
    uint64_t latest = n - (n - r) % 50;
    if (latest == 0) continue;
    absl::StatusOr<MessageRecord> retained = store.GetRetained("r/" + std::to_string(r));
    ASSERT_TRUE(retained.ok()) << r;
    EXPECT_EQ(retained->payload(), std::to_string(latest));
  }
}

TEST(StorageCrashTest, EveryAcknowledgedBatchSurvivesSigkill) {
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> delay_ms(20, 700);
  for (int round = 0; round < 6; ++round) {
    TempDir dir;
    const std::string path = dir.path() + "/data";
    const bool fsync = round == 5;
    uint64_t acked = 0;
    {
      Helper helper(path, fsync);
      ASSERT_TRUE(helper.WaitForFirstAck(std::chrono::seconds(10)));
      helper.ReadUntil(Clock::now() + std::chrono::milliseconds(delay_ms(rng)));
      helper.Kill();
      acked = helper.acked();
    }
    StoreOptions options;
    options.path = path;
    options.create_if_missing = false;
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    const std::string trace = "round " + std::to_string(round) + (fsync ? " (fsync)" : "") +
                              ": killed after " + std::to_string(acked) + " acknowledged batches";
    std::printf("%s\n", trace.c_str());
    SCOPED_TRACE(trace);
    VerifyAfterCrash(**store, acked);
  }
}

TEST(StorageCrashTest, DataDirectoryHeldByAnotherProcessIsRefused) {
  TempDir dir;
  const std::string path = dir.path() + "/data";
  Helper helper(path, false);
  ASSERT_TRUE(helper.WaitForFirstAck(std::chrono::seconds(10)));
  StoreOptions options;
  options.path = path;
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(store.status())) << store.status();
  EXPECT_NE(store.status().message().find(path), std::string::npos) << store.status();
  EXPECT_NE(store.status().message().find("in use"), std::string::npos) << store.status();
  helper.Kill();
  EXPECT_TRUE(Store::Open(options).ok());  // the lock dies with the process
}

}  // namespace
}  // namespace mqtt::storage
