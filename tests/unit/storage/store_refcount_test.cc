// SPDX-License-Identifier: Apache-2.0
// A message is stored once however many queues refer to it, and deleted with its last
// reference: within one batch, across batches, across reopen, under concurrent writers.
#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "storage/store.h"
#include "tests/unit/storage/store_test_util.h"

namespace mqtt::storage {
namespace {

using testing_util::CountKeys;
using testing_util::Entry;
using testing_util::Inflight;
using testing_util::Msg;
using testing_util::RawPut;
using testing_util::Session;
using testing_util::StorageTest;

std::string Client(int i) { return "client-" + std::to_string(i); }

TEST_F(StorageTest, MessageQueuedFor1000SessionsIsStoredOnceAndDeletedWithLastReference) {
  Batch batch;
  batch.PutMessage(1, Msg("fan/out", std::string(1000, 'p')));
  for (int i = 0; i < 1000; ++i) batch.AddQueueEntry(Client(i), 1, Entry(1));
  MustWrite(batch);
  EXPECT_EQ(store_->MessageRefsForTesting(1), 1000u);
  EXPECT_EQ(store_->stats().messages, 1u);
  Close();
  EXPECT_EQ(CountKeys(db_path_, "messages"), 1u);
  EXPECT_EQ(CountKeys(db_path_, "queues"), 1000u);
  Reopen();
  EXPECT_EQ(store_->MessageRefsForTesting(1), 1000u);
  for (int i = 0; i < 999; ++i) batch.RemoveQueueEntry(Client(i), 1);
  MustWrite(batch);
  ASSERT_TRUE(store_->GetMessage(1).ok());
  Reopen();
  EXPECT_EQ(store_->MessageRefsForTesting(1), 1u);
  batch.RemoveQueueEntry(Client(999), 1);
  MustWrite(batch);
  EXPECT_TRUE(absl::IsNotFound(store_->GetMessage(1).status()));
  EXPECT_EQ(store_->stats().messages, 0u);
  Close();
  EXPECT_EQ(CountKeys(db_path_, "messages"), 0u);
  EXPECT_EQ(CountKeys(db_path_, "queues"), 0u);
}

TEST_F(StorageTest, OrphanMessageIsDeletedAtOpen) {
  Batch batch;
  batch.PutMessage(1, Msg("kept"));
  batch.AddQueueEntry("c", 1, Entry(1));
  MustWrite(batch);
  Close();
  MessageRecord orphan = Msg("orphan");
  RawPut(db_path_, "messages", std::string("\0\0\0\0\0\0\0\x05", 8), orphan.SerializeAsString());
  EXPECT_EQ(CountKeys(db_path_, "messages"), 2u);
  Reopen();
  EXPECT_EQ(store_->open_stats().orphan_messages_deleted, 1u);
  EXPECT_EQ(store_->open_stats().messages, 1u);
  EXPECT_TRUE(absl::IsNotFound(store_->GetMessage(5).status()));
  EXPECT_TRUE(store_->GetMessage(1).ok());
  // Ids handed out later do not collide with the orphan's.
  EXPECT_GT(*store_->NewMessageId(), 5u);
}

TEST_F(StorageTest, QueueEntryWhoseMessageIsMissingIsDroppedByReadQueue) {
  Close();
  QueueEntry entry = Entry(9);
  RawPut(db_path_, "queues", std::string("c\0\0\0\0\0\0\0\0\x01", 10), entry.SerializeAsString());
  Reopen();
  EXPECT_EQ(store_->open_stats().dangling_references, 1u);
  absl::StatusOr<QueuePage> page = store_->ReadQueue("c", 0, 10, 0);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->messages.empty());
  EXPECT_EQ(page->missing, 1u);
  EXPECT_EQ(store_->queue_stats("c").count, 0u);
}

TEST_F(StorageTest, DeleteSessionRemovesQueueInflightQos2AndDropsReferences) {
  Batch batch;
  for (const char* c : {"a", "b", "ab"}) {
    batch.PutSession(Session(c));
    batch.AddInboundQos2(c, 1);
  }
  batch.PutMessage(1, Msg("shared"));
  batch.PutMessage(2, Msg("only-a"));
  batch.AddQueueEntry("a", 1, Entry(1));
  batch.AddQueueEntry("a", 2, Entry(2));
  batch.PutInflight("a", 3, Inflight(1, InflightRecord::STAGE_AWAIT_PUBREC, 2));
  batch.AddQueueEntry("b", 1, Entry(1));
  batch.AddQueueEntry("ab", 1, Entry(1));
  MustWrite(batch);
  batch.DeleteSession("a");
  MustWrite(batch);
  EXPECT_TRUE(absl::IsNotFound(store_->GetSession("a").status()));
  EXPECT_TRUE(absl::IsNotFound(store_->GetMessage(2).status()));
  EXPECT_EQ(store_->MessageRefsForTesting(1), 2u);
  EXPECT_EQ(store_->queue_stats("a").count, 0u);
  EXPECT_TRUE(ReadAll("a").empty());
  EXPECT_EQ(ReadAll("ab").size(), 1u);  // "a"'s range stops before "ab"
  Reopen();
  EXPECT_EQ(store_->MessageRefsForTesting(1), 2u);
  std::vector<std::string> sessions;
  ASSERT_TRUE(store_
                  ->LoadSessions([&](const SessionState& s) {
                    sessions.push_back(s.record.client_id());
                    EXPECT_EQ(s.inbound_qos2.size(), 1u);
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(sessions, (std::vector<std::string>{"ab", "b"}));
  batch.DeleteSession("b");
  batch.DeleteSession("ab");
  MustWrite(batch);
  Close();
  for (const char* cf : {"messages", "queues", "inflight", "inbound_qos2", "sessions"}) {
    EXPECT_EQ(CountKeys(db_path_, cf), 0u) << cf;
  }
}

// The write path learns what a removal drops from its memory of entries written since Open; for
// a client that had entries at Open it must read them back, or the message that two sessions
// share would lose no reference (kept forever) or the wrong one. A client without entries at
// Open shares the reopened store.
TEST_F(StorageTest, EntriesWrittenBeforeReopenAreFoundWhenRemoved) {
  {
    Batch batch;
    batch.PutMessage(1, Msg("shared"));
    batch.AddQueueEntry("old-q", 1, Entry(1));
    batch.PutInflight("old-f", 1, Inflight(1, InflightRecord::STAGE_AWAIT_PUBACK, 1));
    MustWrite(batch);
  }
  Reopen();
  {
    Batch batch;
    batch.AddQueueEntry("new-q", 2, Entry(1));
    MustWrite(batch);
  }
  {
    Batch batch;
    batch.RemoveQueueEntry("old-q", 1);
    batch.RemoveInflight("old-f", 1);
    MustWrite(batch);
  }
  EXPECT_EQ(store_->queue_stats("old-q").count, 0u);
  EXPECT_TRUE(store_->GetMessage(1).ok()) << "still queued for new-q";
  {
    Batch batch;
    batch.RemoveQueueEntry("new-q", 2);
    batch.RemoveInflight("new-f", 7);  // never stored: removes nothing
    MustWrite(batch);
  }
  EXPECT_TRUE(absl::IsNotFound(store_->GetMessage(1).status()));
  EXPECT_EQ(store_->stats().messages, 0u);
  ASSERT_TRUE(store_->FlushForTesting(/*compact=*/true).ok());
  Close();
  EXPECT_EQ(CountKeys(db_path_, "inflight"), 0u);
  EXPECT_EQ(CountKeys(db_path_, "queues"), 0u);
  EXPECT_EQ(CountKeys(db_path_, "messages"), 0u);
}

TEST_F(StorageTest, ReferenceToAMessageNeitherStoredNorPutIsRefused) {
  Batch batch;
  batch.PutSession(Session("c"));
  batch.AddQueueEntry("c", 1, Entry(77));
  absl::Status s = store_->Write(std::move(batch));
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_NE(s.message().find("77"), std::string::npos) << s;
  EXPECT_TRUE(absl::IsNotFound(store_->GetSession("c").status()));
  EXPECT_EQ(store_->queue_stats("c").count, 0u);
  // Once stored, a later batch may refer to it without putting it again.
  batch.PutMessage(77, Msg("t"));
  batch.AddQueueEntry("c", 1, Entry(77));
  MustWrite(batch);
  batch.AddQueueEntry("d", 1, Entry(77));
  MustWrite(batch);
  EXPECT_EQ(store_->MessageRefsForTesting(77), 2u);
}

TEST_F(StorageTest, MessageNobodyRefersToIsNotWritten) {
  Batch batch;
  batch.PutMessage(1, Msg("t"));
  MustWrite(batch);
  EXPECT_TRUE(absl::IsNotFound(store_->GetMessage(1).status()));
}

TEST_F(StorageTest, PuttingAStoredMessageAgainWritesNothingNew) {
  Batch batch;
  batch.PutMessage(1, Msg("t", "original"));
  batch.AddQueueEntry("a", 1, Entry(1));
  MustWrite(batch);
  batch.PutMessage(1, Msg("t", "ignored"));
  batch.AddQueueEntry("b", 1, Entry(1));
  MustWrite(batch);
  EXPECT_EQ(store_->GetMessage(1)->payload(), "original");
}

TEST_F(StorageTest, AddAndRemoveInOneBatchLeaveNothing) {
  Batch batch;
  batch.PutMessage(1, Msg("t"));
  batch.AddQueueEntry("c", 1, Entry(1));
  batch.RemoveQueueEntry("c", 1);
  MustWrite(batch);
  EXPECT_TRUE(absl::IsNotFound(store_->GetMessage(1).status()));
  EXPECT_EQ(store_->queue_stats("c").count, 0u);
  Close();
  EXPECT_EQ(CountKeys(db_path_, "queues"), 0u);
}

TEST_F(StorageTest, MovingFromQueueToInflightKeepsTheMessageUntilPubcomp) {
  Batch batch;
  batch.PutMessage(1, Msg("t"));
  batch.AddQueueEntry("c", 1, Entry(1, 2));
  MustWrite(batch);
  batch.RemoveQueueEntry("c", 1);
  batch.PutInflight("c", 1, Inflight(10, InflightRecord::STAGE_AWAIT_PUBREC, 1));
  MustWrite(batch);
  EXPECT_EQ(store_->MessageRefsForTesting(1), 1u);
  ASSERT_TRUE(store_->GetMessage(1).ok());
  Reopen();
  batch.PutInflight("c", 1, Inflight(10, InflightRecord::STAGE_AWAIT_PUBCOMP, 0));
  MustWrite(batch);
  EXPECT_TRUE(absl::IsNotFound(store_->GetMessage(1).status()));
  batch.RemoveInflight("c", 1);
  MustWrite(batch);
  Close();
  EXPECT_EQ(CountKeys(db_path_, "inflight"), 0u);
}

TEST_F(StorageTest, ConcurrentWritersKeepCountsExact) {
  // Eight threads queue the same messages to their own clients and remove every other entry;
  // the counts must match what is on disk, and group commit must merge some batches.
  constexpr int kThreads = 8;
  constexpr int kRounds = 200;
  {
    Batch batch;
    for (int m = 1; m <= 10; ++m) {
      batch.PutMessage(m, Msg("t" + std::to_string(m)));
      batch.AddQueueEntry("anchor", m, Entry(m));
    }
    MustWrite(batch);
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 1; r <= kRounds; ++r) {
        Batch batch;
        batch.AddQueueEntry(Client(t), r, Entry(r % 10 + 1));
        if (r % 2 == 0) batch.RemoveQueueEntry(Client(t), r - 1);
        if (!store_->Write(std::move(batch)).ok()) ++failures;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  StoreStats stats = store_->stats();
  EXPECT_EQ(stats.queue_entries, 10u + kThreads * kRounds / 2);
  EXPECT_LE(stats.write_groups, stats.batches);
  std::map<uint64_t, uint32_t> expected;
  for (int m = 1; m <= 10; ++m) expected[m] = 1;
  for (int r = 2; r <= kRounds; r += 2) expected[r % 10 + 1] += kThreads;
  for (const auto& [id, refs] : expected) EXPECT_EQ(store_->MessageRefsForTesting(id), refs);
  Reopen();
  for (const auto& [id, refs] : expected) EXPECT_EQ(store_->MessageRefsForTesting(id), refs);
  // Drop everything: every message must go.
  Batch batch;
  batch.DeleteSession("anchor");
  for (int t = 0; t < kThreads; ++t) batch.DeleteSession(Client(t));
  MustWrite(batch);
  EXPECT_EQ(store_->stats().messages, 0u);
  EXPECT_EQ(store_->stats().queue_entries, 0u);
  Close();
  EXPECT_EQ(CountKeys(db_path_, "messages"), 0u);
}

}  // namespace
}  // namespace mqtt::storage
