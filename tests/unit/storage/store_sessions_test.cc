// SPDX-License-Identifier: Apache-2.0
// Session expiry: the deadline rule and the purge, which takes queues and references along;
// the point read of one session (LoadSession, used to hand a session to another node).
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "storage/store.h"
#include "tests/unit/storage/store_test_util.h"

namespace mqtt::storage {
namespace {

using testing_util::Entry;
using testing_util::Inflight;
using testing_util::Msg;
using testing_util::Session;
using testing_util::StorageTest;

SessionRecord Expiring(std::string_view client, uint64_t at) {
  SessionRecord s = Session(client);
  s.set_expires_at_unix_ms(at);
  return s;
}

TEST(StorageSessionExpiryTest, FollowsDeadlineNeverOrLastSeenPlusInterval) {
  EXPECT_EQ(SessionExpiresAt(Expiring("c", 5000)), 5000u);
  SessionRecord never = Session("c");
  never.set_never_expires(true);
  EXPECT_EQ(SessionExpiresAt(never), std::nullopt);
  SessionRecord was_connected = Session("c");  // no deadline: connected when the node stopped
  was_connected.set_session_expiry_interval_seconds(60);
  was_connected.set_last_seen_unix_ms(1000);
  EXPECT_EQ(SessionExpiresAt(was_connected), 61000u);
  was_connected.set_session_expiry_interval_seconds(0xFFFFFFFF);
  EXPECT_EQ(SessionExpiresAt(was_connected), std::nullopt);
}

TEST_F(StorageTest, PurgeDeletesOnlyExpiredSessionsWithTheirState) {
  Batch batch;
  batch.PutSession(Expiring("gone", 1000));
  batch.PutSession(Expiring("due", 2000));  // deadline == now: expired
  batch.PutSession(Expiring("later", 3000));
  SessionRecord never = Session("never");
  never.set_never_expires(true);
  batch.PutSession(never);
  SessionRecord crashed = Session("crashed");
  crashed.set_session_expiry_interval_seconds(1);
  crashed.set_last_seen_unix_ms(500);
  batch.PutSession(crashed);
  batch.PutMessage(1, Msg("shared"));
  batch.PutMessage(2, Msg("gone-only"));
  batch.AddQueueEntry("gone", 1, Entry(1));
  batch.AddQueueEntry("gone", 2, Entry(2));
  batch.PutInflight("due", 1, Inflight(5, InflightRecord::STAGE_AWAIT_PUBACK, 2));
  batch.AddInboundQos2("due", 9);
  batch.AddQueueEntry("later", 1, Entry(1));
  MustWrite(batch);
  Reopen();
  absl::StatusOr<std::vector<std::string>> purged = store_->PurgeExpiredSessions(2000);
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, (std::vector<std::string>{"crashed", "due", "gone"}));
  EXPECT_TRUE(absl::IsNotFound(store_->GetMessage(2).status()));
  EXPECT_EQ(store_->MessageRefsForTesting(1), 1u);
  EXPECT_EQ(store_->queue_stats("gone").count, 0u);
  Reopen();
  std::vector<std::string> left;
  ASSERT_TRUE(store_
                  ->LoadSessions([&](const SessionState& s) {
                    left.push_back(s.record.client_id());
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(left, (std::vector<std::string>{"later", "never"}));
  EXPECT_EQ(store_->stats().queue_entries, 1u);
  EXPECT_TRUE(store_->PurgeExpiredSessions(2500)->empty());
}

TEST_F(StorageTest, LoadSessionReadsOneSessionWithItsWindowAndInboundIds) {
  Batch batch;
  batch.PutSession(Session("a"));
  batch.PutSession(Session("b"));
  batch.PutMessage(1, Msg("in-flight"));
  batch.PutMessage(2, Msg("queued"));
  batch.PutInflight("a", 3, Inflight(7, InflightRecord::STAGE_AWAIT_PUBACK, 1));
  batch.AddInboundQos2("a", 9);
  batch.AddQueueEntry("a", 4, Entry(2));
  batch.AddQueueEntry("b", 1, Entry(2));
  MustWrite(batch);
  absl::StatusOr<SessionState> a = store_->LoadSession("a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->record.client_id(), "a");
  ASSERT_EQ(a->inflight.size(), 1u);
  EXPECT_EQ(a->inflight[0].seq, 3u);
  ASSERT_TRUE(a->inflight[0].message.has_value());
  EXPECT_EQ(a->inflight[0].message->topic(), "in-flight");
  EXPECT_EQ(a->inbound_qos2, (std::vector<uint16_t>{9}));
  EXPECT_EQ(a->queue.count, 1u);  // b's entry is not a's
  EXPECT_EQ(a->next_seq, 5u);     // after the queue's last entry
  EXPECT_TRUE(absl::IsNotFound(store_->LoadSession("nobody").status()));
}

TEST_F(StorageTest, PurgeHandlesMoreSessionsThanOneBatch) {
  Batch batch;
  batch.PutMessage(1, Msg("t"));
  for (int i = 0; i < 1000; ++i) {
    const std::string c = "c" + std::to_string(i);
    batch.PutSession(Expiring(c, i % 2 == 0 ? 10 : 100000));
    batch.AddQueueEntry(c, 1, Entry(1));
  }
  MustWrite(batch);
  absl::StatusOr<std::vector<std::string>> purged = store_->PurgeExpiredSessions(50);
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(purged->size(), 500u);
  EXPECT_EQ(store_->MessageRefsForTesting(1), 500u);
}

}  // namespace
}  // namespace mqtt::storage
