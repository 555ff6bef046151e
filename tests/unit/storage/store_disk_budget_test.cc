// SPDX-License-Identifier: Apache-2.0
// Disk budget (issue 9): queue entries and messages removed before a flush leave nothing in SST
// files, and the SingleDelete they are removed with stays correct when a deleted session's queue
// keys are used again. In-flight records (issue 15) too: SingleDelete where the store knows the
// key holds one Put, Delete where it does not (written before Open).
#include <string>
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

TEST_F(StorageTest, InflightSentAndAcknowledgedBeforeFlushLeavesNoSstKeys) {
  for (uint64_t i = 1; i <= 2000; ++i) {
    Batch send;
    send.PutMessage(i, Msg("t", "m" + std::to_string(i)));
    send.PutInflight("c", i, Inflight(1, InflightRecord::STAGE_AWAIT_PUBACK, i));
    MustWrite(send);
    Batch puback;
    puback.RemoveInflight("c", i);
    MustWrite(puback);
  }
  ASSERT_TRUE(store_->FlushForTesting(/*compact=*/false).ok());
  EXPECT_EQ(store_->SstKeysForTesting("inflight"), 0u);
  EXPECT_EQ(store_->SstKeysForTesting("messages"), 0u);
  EXPECT_EQ(store_->stats().messages, 0u);
}

// QoS 2: the record is replaced (PUBREC: message released) and later removed, with flushes and
// compactions between the steps so that the Puts and removals meet in different levels. Nothing
// may come back: no record after PUBCOMP, the latest stage before it.
TEST_F(StorageTest, InflightReplacedAcrossFlushesNeverComesBack) {
  for (bool reopen_between : {false, true}) {
    const std::string client = reopen_between ? "reopened" : "open";
    Batch send;
    send.PutSession(Session(client));
    send.PutMessage(7, Msg("t", "q2"));
    send.PutInflight(client, 1, Inflight(5, InflightRecord::STAGE_AWAIT_PUBREC, 7));
    MustWrite(send);
    ASSERT_TRUE(store_->FlushForTesting(/*compact=*/true).ok());
    // After a reopen the store knows nothing of the key's history: Put, then Delete.
    if (reopen_between) Reopen();
    Batch pubrec;
    pubrec.PutInflight(client, 1, Inflight(5, InflightRecord::STAGE_AWAIT_PUBCOMP, 0));
    MustWrite(pubrec);
    ASSERT_TRUE(store_->FlushForTesting(/*compact=*/false).ok());
    absl::StatusOr<SessionState> state = store_->LoadSession(client);
    ASSERT_TRUE(state.ok()) << state.status();
    ASSERT_EQ(state->inflight.size(), 1u);
    EXPECT_EQ(state->inflight[0].record.stage(), InflightRecord::STAGE_AWAIT_PUBCOMP);
    EXPECT_TRUE(absl::IsNotFound(store_->GetMessage(7).status()));
    if (reopen_between) Reopen();
    Batch pubcomp;
    pubcomp.RemoveInflight(client, 1);
    MustWrite(pubcomp);
    for (int round = 0; round < 2; ++round) {
      ASSERT_TRUE(store_->FlushForTesting(/*compact=*/true).ok());
      Reopen();
      state = store_->LoadSession(client);
      ASSERT_TRUE(state.ok()) << state.status();
      EXPECT_TRUE(state->inflight.empty()) << client;
    }
  }
  EXPECT_EQ(store_->SstKeysForTesting("inflight"), 0u);
}

// The store remembers the entries it wrote since Open; a deleted session's must be forgotten
// with it, so that its reused keys are neither mistaken for old ones nor SingleDelete'd over
// an older Put.
TEST_F(StorageTest, EntriesOfADeletedSessionAreForgottenAndKeysReusedExactly) {
  Batch first;
  first.PutSession(Session("c"));
  first.PutMessage(1, Msg("t", "old"));
  first.AddQueueEntry("c", 1, Entry(1));
  first.PutInflight("c", 2, Inflight(1, InflightRecord::STAGE_AWAIT_PUBACK, 1));
  MustWrite(first);
  Batch drop;
  drop.DeleteSession("c");
  drop.PutSession(Session("c"));
  drop.PutMessage(2, Msg("t", "new"));
  drop.AddQueueEntry("c", 1, Entry(2));
  MustWrite(drop);
  EXPECT_TRUE(absl::IsNotFound(store_->GetMessage(1).status()));
  EXPECT_EQ(store_->MessageRefsForTesting(2), 1u);
  Batch again;
  again.PutInflight("c", 2, Inflight(1, InflightRecord::STAGE_AWAIT_PUBACK, 2));
  MustWrite(again);
  EXPECT_EQ(store_->MessageRefsForTesting(2), 2u);
  Batch remove;
  remove.RemoveQueueEntry("c", 1);
  remove.RemoveInflight("c", 2);
  MustWrite(remove);
  EXPECT_EQ(store_->stats().messages, 0u);
  EXPECT_EQ(store_->queue_stats("c").count, 0u);
  ASSERT_TRUE(store_->FlushForTesting(/*compact=*/true).ok());
  Reopen();
  absl::StatusOr<SessionState> state = store_->LoadSession("c");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_TRUE(state->inflight.empty());
  EXPECT_TRUE(ReadAll("c").empty());
  EXPECT_EQ(store_->stats().messages, 0u);
}

// The WAL is nearly all a queue workload writes; its records are compressed (ZSTD), which pays
// when a write group holds several messages (under load): 16 per write here. (One message per
// write compresses to about 5 % more than it is: ZSTD's frame costs more than it saves.)
TEST_F(StorageTest, WriteAheadLogIsCompressed) {
  for (uint64_t first = 1; first <= 2000; first += 16) {
    Batch batch;
    for (uint64_t i = first; i < first + 16; ++i) {
      batch.PutMessage(i, Msg("sensors/building-7/floor-3/temperature",
                              "{\"celsius\": " + std::to_string(i * 7919 % 1000) +
                                  ", \"seq\": " + std::to_string(i) + "}"));
      batch.PutInflight("subscriber-0001", i, Inflight(1, InflightRecord::STAGE_AWAIT_PUBACK, i));
    }
    MustWrite(batch);
  }
  const uint64_t logical = store_->stats().bytes_written;
  const uint64_t wal = store_->db_figures().wal_bytes;
  EXPECT_GT(logical, 200'000u);
  EXPECT_LT(wal, logical / 3) << "WAL " << wal << " B for " << logical << " B of batches";
}

// More entries than the store keeps in memory (32,768 per family): those it does not hold are
// read back from RocksDB, and the counts stay exact.
TEST_F(StorageTest, EntriesBeyondTheMemoryCacheKeepCountsExact) {
  constexpr uint64_t kEntries = 40000;
  for (uint64_t first = 1; first <= kEntries; first += 1000) {
    Batch batch;
    for (uint64_t i = first; i < first + 1000; ++i) {
      batch.PutMessage(i, Msg("t"));
      batch.AddQueueEntry("q", i, Entry(i));
      batch.PutInflight("f", i, Inflight(1, InflightRecord::STAGE_AWAIT_PUBACK, i));
    }
    MustWrite(batch);
  }
  EXPECT_EQ(store_->stats().messages, kEntries);
  for (uint64_t first = 1; first <= kEntries; first += 1000) {
    Batch batch;
    for (uint64_t i = first; i < first + 1000; ++i) {
      batch.RemoveQueueEntry("q", i);
      batch.RemoveInflight("f", i);
    }
    MustWrite(batch);
  }
  EXPECT_EQ(store_->stats().messages, 0u);
  EXPECT_EQ(store_->queue_stats("q").count, 0u);
  ASSERT_TRUE(store_->FlushForTesting(/*compact=*/true).ok());
  Close();
  EXPECT_EQ(CountKeys(db_path_, "inflight"), 0u);
  EXPECT_EQ(CountKeys(db_path_, "queues"), 0u);
  EXPECT_EQ(CountKeys(db_path_, "messages"), 0u);
}

}  // namespace
}  // namespace mqtt::storage
