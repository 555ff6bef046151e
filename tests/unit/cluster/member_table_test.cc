// SPDX-License-Identifier: Apache-2.0
// The SWIM ordering rules, refutation, expiry and piggyback limits of MemberTable, without gRPC.
#include "cluster/member_table.h"

#include <gtest/gtest.h>

namespace mqtt::cluster {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);

MemberInfo Self() {
  MemberInfo self;
  self.node_id = "a";
  self.address = "a:1";
  self.incarnation = 5;
  return self;
}

v1::Member Record(const std::string& id, v1::MemberState state, uint64_t incarnation) {
  v1::Member r;
  r.set_node_id(id);
  r.set_address(id + ":1");
  r.set_state(state);
  r.set_incarnation(incarnation);
  return r;
}

class MemberTableTest : public ::testing::Test {
 protected:
  bool Apply(const std::string& id, v1::MemberState state, uint64_t incarnation) {
    return table_.Apply(Record(id, state, incarnation), kT0, &events_);
  }
  MemberState StateOf(const std::string& id) { return table_.Find(id)->state; }

  MemberTable table_{Self(), 4};
  std::vector<MemberEvent> events_;
};

TEST_F(MemberTableTest, NewAliveMemberIsJoined) {
  EXPECT_TRUE(Apply("b", v1::MEMBER_STATE_ALIVE, 1));
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].change, MemberChange::kJoined);
  EXPECT_EQ(StateOf("b"), MemberState::kAlive);
}

TEST_F(MemberTableTest, AliveOverridesSuspectOnlyAtHigherIncarnation) {
  Apply("b", v1::MEMBER_STATE_SUSPECT, 3);
  EXPECT_FALSE(Apply("b", v1::MEMBER_STATE_ALIVE, 3));
  EXPECT_EQ(StateOf("b"), MemberState::kSuspect);
  EXPECT_TRUE(Apply("b", v1::MEMBER_STATE_ALIVE, 4));
  EXPECT_EQ(StateOf("b"), MemberState::kAlive);
  EXPECT_EQ(events_.back().change, MemberChange::kAlive);
}

TEST_F(MemberTableTest, SuspectOverridesAliveAtEqualOrHigherIncarnation) {
  Apply("b", v1::MEMBER_STATE_ALIVE, 3);
  EXPECT_FALSE(Apply("b", v1::MEMBER_STATE_SUSPECT, 2));
  EXPECT_TRUE(Apply("b", v1::MEMBER_STATE_SUSPECT, 3));
  EXPECT_EQ(StateOf("b"), MemberState::kSuspect);
  EXPECT_FALSE(Apply("b", v1::MEMBER_STATE_SUSPECT, 3));  // nothing new
}

TEST_F(MemberTableTest, DeadOverridesAliveAndSuspectButNotAHigherIncarnation) {
  Apply("b", v1::MEMBER_STATE_SUSPECT, 3);
  EXPECT_TRUE(Apply("b", v1::MEMBER_STATE_DEAD, 3));
  EXPECT_EQ(StateOf("b"), MemberState::kDead);
  EXPECT_FALSE(Apply("b", v1::MEMBER_STATE_ALIVE, 3));
  EXPECT_FALSE(Apply("b", v1::MEMBER_STATE_SUSPECT, 3));
  Apply("c", v1::MEMBER_STATE_ALIVE, 7);
  EXPECT_FALSE(Apply("c", v1::MEMBER_STATE_DEAD, 6));  // stale: c refuted since
  EXPECT_EQ(StateOf("c"), MemberState::kAlive);
}

TEST_F(MemberTableTest, RestartedNodeWithHigherIncarnationRevivesDead) {
  Apply("b", v1::MEMBER_STATE_ALIVE, 3);
  Apply("b", v1::MEMBER_STATE_DEAD, 3);
  EXPECT_TRUE(Apply("b", v1::MEMBER_STATE_ALIVE, 4));
  EXPECT_EQ(StateOf("b"), MemberState::kAlive);
}

TEST_F(MemberTableTest, LeftWinsOverDeadAtEqualIncarnation) {
  Apply("b", v1::MEMBER_STATE_ALIVE, 3);
  Apply("b", v1::MEMBER_STATE_DEAD, 3);
  EXPECT_TRUE(Apply("b", v1::MEMBER_STATE_LEFT, 3));
  EXPECT_EQ(events_.back().change, MemberChange::kLeft);
}

TEST_F(MemberTableTest, DeadRecordOfUnknownNodeIsIgnored) {
  EXPECT_FALSE(Apply("b", v1::MEMBER_STATE_DEAD, 3));
  EXPECT_FALSE(Apply("b", v1::MEMBER_STATE_LEFT, 3));
  EXPECT_EQ(table_.Find("b"), nullptr);
}

TEST_F(MemberTableTest, SuspicionOfSelfIsRefutedWithHigherIncarnation) {
  EXPECT_TRUE(Apply("a", v1::MEMBER_STATE_SUSPECT, 5));
  EXPECT_EQ(table_.self().incarnation, 6u);
  EXPECT_EQ(table_.self().state, MemberState::kAlive);
  EXPECT_FALSE(Apply("a", v1::MEMBER_STATE_SUSPECT, 5));  // old news
  EXPECT_TRUE(Apply("a", v1::MEMBER_STATE_DEAD, 6));
  EXPECT_EQ(table_.self().incarnation, 7u);
  EXPECT_TRUE(Apply("a", v1::MEMBER_STATE_ALIVE, 9));  // a previous life of this id
  EXPECT_EQ(table_.self().incarnation, 10u);
  EXPECT_EQ(table_.refutations(), 3u);
  std::vector<v1::Member> updates = table_.TakeUpdates(8);
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0].incarnation(), 10u);
  EXPECT_EQ(updates[0].state(), v1::MEMBER_STATE_ALIVE);
}

TEST_F(MemberTableTest, NodeThatLeftNeverRefutes) {
  table_.MarkSelfLeft();
  EXPECT_FALSE(Apply("a", v1::MEMBER_STATE_DEAD, 5));
  EXPECT_EQ(table_.self().state, MemberState::kLeft);
}

TEST_F(MemberTableTest, SuspectBecomesDeadAfterTimeoutThenIsRemoved) {
  Apply("b", v1::MEMBER_STATE_ALIVE, 1);
  EXPECT_TRUE(table_.Suspect("b", 1, kT0, &events_));
  table_.Expire(kT0 + absl::Seconds(4), absl::Seconds(5), absl::Hours(1), &events_);
  EXPECT_EQ(StateOf("b"), MemberState::kSuspect);
  table_.Expire(kT0 + absl::Seconds(5), absl::Seconds(5), absl::Hours(1), &events_);
  EXPECT_EQ(StateOf("b"), MemberState::kDead);
  table_.Expire(kT0 + absl::Seconds(5) + absl::Minutes(59), absl::Seconds(5), absl::Hours(1),
                &events_);
  EXPECT_NE(table_.Find("b"), nullptr);
  table_.Expire(kT0 + absl::Seconds(5) + absl::Hours(1), absl::Seconds(5), absl::Hours(1),
                &events_);
  EXPECT_EQ(table_.Find("b"), nullptr);
  EXPECT_EQ(events_.back().change, MemberChange::kRemoved);
}

TEST_F(MemberTableTest, LocalSuspicionLosesToRefutationThatArrivedDuringTheProbe) {
  Apply("b", v1::MEMBER_STATE_ALIVE, 1);
  Apply("b", v1::MEMBER_STATE_ALIVE, 2);  // b refuted while we were probing incarnation 1
  EXPECT_FALSE(table_.Suspect("b", 1, kT0, &events_));
  EXPECT_EQ(StateOf("b"), MemberState::kAlive);
}

TEST_F(MemberTableTest, UpdatesAreBoundedPerMessageAndStopAfterRetransmitLimit) {
  for (int i = 0; i < 10; ++i) Apply("n" + std::to_string(i), v1::MEMBER_STATE_ALIVE, 1);
  // 11 nodes: limit = 4 * ceil(log10(12)) = 8 transmissions of each of 11 updates.
  int total = 0;
  for (int round = 0; round < 100; ++round) {
    std::vector<v1::Member> updates = table_.TakeUpdates(3);
    EXPECT_LE(updates.size(), 3u);
    total += static_cast<int>(updates.size());
  }
  EXPECT_EQ(total, 11 * 8);
  EXPECT_EQ(table_.pending_updates(), 0u);
}

TEST_F(MemberTableTest, InvalidRecordIsIgnored) {
  v1::Member r = Record("b", v1::MEMBER_STATE_UNSPECIFIED, 1);
  EXPECT_FALSE(table_.Apply(r, kT0, &events_));
  r = Record("", v1::MEMBER_STATE_ALIVE, 1);
  EXPECT_FALSE(table_.Apply(r, kT0, &events_));
}

}  // namespace
}  // namespace mqtt::cluster
