// SPDX-License-Identifier: Apache-2.0
// Disk budget (issue 9): queue entries and messages removed before a flush leave nothing in SST
// files, and the SingleDelete they are removed with stays correct when a deleted session's queue
// keys are used again.
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

TEST_F(StorageTest, QueuedAndRemovedBeforeFlushLeavesNoSstKeys) {
  for (uint64_t i = 1; i <= 2000; ++i) {
    Batch add;
    add.PutMessage(i, Msg("t", "m" + std::to_string(i)));
    add.AddQueueEntry("c", i, Entry(i));
    MustWrite(add);
    Batch remove;
    remove.RemoveQueueEntry("c", i);
    MustWrite(remove);
  }
  ASSERT_TRUE(store_->FlushForTesting(/*compact=*/false).ok());
  // A plain Delete would leave 2000 markers in each family after the flush (level 0 is not the
  // last level); SingleDelete meets its put in the memtable and both vanish.
  EXPECT_EQ(store_->SstKeysForTesting("queues"), 0u);
  EXPECT_EQ(store_->SstKeysForTesting("messages"), 0u);
  EXPECT_EQ(store_->stats().messages, 0u);
}

TEST_F(StorageTest, QueueKeysReusedAfterDeleteSessionSurviveCompactionCorrectly) {
  // Generation 1: seq 1..3 queued and flushed to an SST file, then the session is deleted
  // (a range deletion) while they are still there.
  Batch first;
  first.PutSession(Session("c"));
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    first.PutMessage(seq, Msg("t", "old" + std::to_string(seq)));
    first.AddQueueEntry("c", seq, Entry(seq));
  }
  MustWrite(first);
  ASSERT_TRUE(store_->FlushForTesting(/*compact=*/true).ok());
  Batch drop;
  drop.DeleteSession("c");
  MustWrite(drop);
  // Generation 2 starts again at seq 1 (next_seq comes from the keys) and removes seq 1 and 2
  // with SingleDelete: the old puts under the range deletion must not come back.
  Batch second;
  second.PutSession(Session("c"));
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    second.PutMessage(10 + seq, Msg("t", "new" + std::to_string(seq)));
    second.AddQueueEntry("c", seq, Entry(10 + seq));
  }
  MustWrite(second);
  Batch remove;
  remove.RemoveQueueEntry("c", 1);
  remove.RemoveQueueEntry("c", 2);
  MustWrite(remove);
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(store_->FlushForTesting(/*compact=*/true).ok());
    Reopen();
    std::vector<QueuedMessage> queue = ReadAll("c");
    ASSERT_EQ(queue.size(), 1u);
    EXPECT_EQ(queue[0].seq, 3u);
    EXPECT_EQ(queue[0].message.payload(), "new3");
    EXPECT_EQ(store_->queue_stats("c").count, 1u);
    EXPECT_EQ(store_->stats().messages, 1u);
  }
}

}  // namespace
}  // namespace mqtt::storage
