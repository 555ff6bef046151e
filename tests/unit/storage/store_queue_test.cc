// SPDX-License-Identifier: Apache-2.0
// Offline queues: order across reopen, paging, message expiry, queue stats, next sequence.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "storage/store.h"
#include "tests/unit/storage/store_test_util.h"

namespace mqtt::storage {
namespace {

using testing_util::Entry;
using testing_util::Msg;
using testing_util::Session;
using testing_util::StorageTest;

// Queues messages 1..n for `client` (message i at seq i, payload "m<i>").
void Fill(Store& store, std::string_view client, int n, int per_batch = 1000) {
  for (int i = 1; i <= n;) {
    Batch batch;
    for (int j = 0; j < per_batch && i <= n; ++j, ++i) {
      batch.PutMessage(i, Msg("t", "m" + std::to_string(i)));
      batch.AddQueueEntry(client, i, Entry(i));
    }
    ASSERT_TRUE(store.Write(std::move(batch)).ok());
  }
}

TEST_F(StorageTest, QueueOrderOf10000EntriesSurvivesReopen) {
  Batch batch;
  batch.PutSession(Session("c"));
  MustWrite(batch);
  Fill(*store_, "c", 10000, 777);
  Reopen();
  std::vector<QueuedMessage> queue = ReadAll("c");
  ASSERT_EQ(queue.size(), 10000u);
  for (size_t i = 0; i < queue.size(); ++i) {
    ASSERT_EQ(queue[i].seq, i + 1);
    ASSERT_EQ(queue[i].message.payload(), "m" + std::to_string(i + 1));
  }
  EXPECT_EQ(store_->queue_stats("c").count, 10000u);
  EXPECT_EQ(store_->open_stats().queue_entries, 10000u);
}

TEST_F(StorageTest, SequenceOrderIsNumericNotLexical) {
  Batch batch;
  for (uint64_t seq : {256u, 1u, 65536u, 255u}) {
    batch.PutMessage(seq, Msg("t", std::to_string(seq)));
    batch.AddQueueEntry("c", seq, Entry(seq));
  }
  MustWrite(batch);
  std::vector<uint64_t> seqs;
  for (const QueuedMessage& m : ReadAll("c")) seqs.push_back(m.seq);
  EXPECT_EQ(seqs, (std::vector<uint64_t>{1, 255, 256, 65536}));
}

TEST_F(StorageTest, ReadQueuePagesThroughInOrder) {
  Fill(*store_, "c", 50);
  Fill(*store_, "cc", 5);  // a client whose id extends "c" must not leak into c's queue
  std::vector<uint64_t> seen;
  uint64_t after = 0;
  for (int pages = 0;; ++pages) {
    ASSERT_LT(pages, 20);
    absl::StatusOr<QueuePage> page = store_->ReadQueue("c", after, 7, 0);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const QueuedMessage& m : page->messages) seen.push_back(m.seq);
    EXPECT_LE(page->messages.size(), 7u);
    after = page->last_seq;
    if (page->end) break;
  }
  ASSERT_EQ(seen.size(), 50u);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i + 1);
}

TEST_F(StorageTest, ReadQueueFromTheMiddleAndPastTheEnd) {
  Fill(*store_, "c", 10);
  absl::StatusOr<QueuePage> page = store_->ReadQueue("c", 8, 100, 0);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->messages.size(), 2u);
  EXPECT_EQ(page->messages[0].seq, 9u);
  EXPECT_TRUE(page->end);
  page = store_->ReadQueue("c", 10, 100, 0);
  EXPECT_TRUE(page->messages.empty());
  EXPECT_TRUE(page->end);
  EXPECT_EQ(page->last_seq, 10u);
  page = store_->ReadQueue("c", ~uint64_t{0}, 100, 0);
  EXPECT_TRUE(page->messages.empty());
}

TEST_F(StorageTest, ExpiredMessagesAreSkippedAndRemovedByReadQueue) {
  Batch batch;
  batch.PutMessage(1, Msg("t", "stale", 1000));
  batch.PutMessage(2, Msg("t", "fresh", 5000));
  batch.PutMessage(3, Msg("t", "forever", 0));
  batch.AddQueueEntry("c", 1, Entry(1));
  batch.AddQueueEntry("c", 2, Entry(2));
  batch.AddQueueEntry("c", 3, Entry(3));
  batch.AddQueueEntry("other", 1, Entry(1));
  MustWrite(batch);
  absl::StatusOr<QueuePage> page = store_->ReadQueue("c", 0, 2, 2000);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->messages.size(), 2u);  // the page is filled past the skipped entry
  EXPECT_EQ(page->messages[0].message.payload(), "fresh");
  EXPECT_EQ(page->messages[1].message.payload(), "forever");
  EXPECT_EQ(page->expired, 1u);
  EXPECT_EQ(store_->queue_stats("c").count, 2u);
  EXPECT_EQ(store_->MessageRefsForTesting(1), 1u);  // still queued for "other"
  EXPECT_EQ(ReadAll("other", 2000).size(), 0u);
  EXPECT_TRUE(absl::IsNotFound(store_->GetMessage(1).status()));
  Reopen();
  EXPECT_EQ(ReadAll("c", 2000).size(), 2u);
}

TEST_F(StorageTest, QueueStatsCountEntriesAndMessageBytes) {
  Batch batch;
  const MessageRecord small = Msg("t", "x");
  const MessageRecord big = Msg("t", std::string(1000, 'x'));
  batch.PutMessage(1, small);
  batch.PutMessage(2, big);
  batch.AddQueueEntry("a", 1, Entry(1));
  batch.AddQueueEntry("a", 2, Entry(2));
  batch.AddQueueEntry("b", 1, Entry(2));
  MustWrite(batch);
  const uint64_t both = small.ByteSizeLong() + big.ByteSizeLong();
  EXPECT_EQ(store_->queue_stats("a").count, 2u);
  EXPECT_EQ(store_->queue_stats("a").bytes, both);
  EXPECT_EQ(store_->queue_stats("b").bytes, big.ByteSizeLong());
  Reopen();
  EXPECT_EQ(store_->queue_stats("a").bytes, both);
  batch.RemoveQueueEntry("a", 2);
  MustWrite(batch);
  EXPECT_EQ(store_->queue_stats("a").count, 1u);
  EXPECT_EQ(store_->queue_stats("a").bytes, small.ByteSizeLong());
  EXPECT_EQ(store_->stats().queue_entries, 2u);
  // A reference to an already stored message, after a reopen, is charged its size too.
  Reopen();
  batch.AddQueueEntry("c", 1, Entry(2));
  MustWrite(batch);
  EXPECT_EQ(store_->queue_stats("c").bytes, big.ByteSizeLong());
}

TEST_F(StorageTest, NextSeqFollowsTheLastQueueOrInflightEntry) {
  Batch batch;
  batch.PutSession(Session("q"));
  batch.PutSession(Session("i"));
  batch.PutSession(Session("empty"));
  batch.PutMessage(1, Msg("t"));
  batch.AddQueueEntry("q", 41, Entry(1));
  batch.PutInflight("q", 7, testing_util::Inflight(1, InflightRecord::STAGE_AWAIT_PUBACK, 1));
  batch.PutInflight("i", 9, testing_util::Inflight(2, InflightRecord::STAGE_AWAIT_PUBACK, 1));
  MustWrite(batch);
  Reopen();
  std::map<std::string, uint64_t> next;
  ASSERT_TRUE(store_
                  ->LoadSessions([&](const SessionState& s) {
                    next[s.record.client_id()] = s.next_seq;
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(next["q"], 42u);
  EXPECT_EQ(next["i"], 10u);
  EXPECT_EQ(next["empty"], 1u);
}

}  // namespace
}  // namespace mqtt::storage
