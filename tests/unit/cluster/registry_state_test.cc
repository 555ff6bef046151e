// SPDX-License-Identifier: Apache-2.0
// RegistryState: the client-id registry's state machine alone (no Raft, no I/O). Every node
// applies the same log, so the rules must be deterministic: the same batches give the same
// state and the same snapshot bytes.
#include "cluster/registry_state.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace mqtt::cluster {
namespace {

std::string Batch(std::vector<v1::RegistryCommand> commands) {
  v1::RegistryBatch batch;
  for (auto& c : commands) *batch.add_commands() = std::move(c);
  return batch.SerializeAsString();
}

TEST(RegistryStateTest, RegisterTakesANewEpochAndNamesThePreviousHolder) {
  RegistryState state;
  std::vector<RegistryChange> changes;
  ASSERT_TRUE(state
                  .Apply(Batch({RegisterCommand("c1", "a"), RegisterCommand("c2", "a"),
                                RegisterCommand("c1", "b")}),
                         &changes)
                  .ok());
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].kind, RegistryChange::Kind::kRegistered);
  EXPECT_FALSE(changes[0].previous.has_value());
  EXPECT_EQ(changes[0].holder.epoch, 1u);
  EXPECT_EQ(changes[2].holder.node_id, "b");
  EXPECT_EQ(changes[2].holder.epoch, 3u);  // one counter for the registry
  ASSERT_TRUE(changes[2].previous.has_value());
  EXPECT_EQ(changes[2].previous->node_id, "a");
  EXPECT_EQ(changes[2].previous->epoch, 1u);
  EXPECT_EQ(state.Holder("c1")->node_id, "b");
  EXPECT_EQ(state.size(), 2u);
}

TEST(RegistryStateTest, AnOldReleaseNeverUndoesALaterRegister) {
  RegistryState state;
  std::vector<RegistryChange> changes;
  state.Apply(RegisterCommand("c", "a"), &changes);  // epoch 1
  state.Apply(RegisterCommand("c", "b"), &changes);  // epoch 2
  state.Apply(ReleaseCommand("c", "a", 1), &changes);
  EXPECT_EQ(changes.back().kind, RegistryChange::Kind::kIgnored);
  EXPECT_EQ(state.Holder("c")->node_id, "b");
  state.Apply(ReleaseCommand("c", "b", 1), &changes);  // right node, wrong epoch
  EXPECT_EQ(changes.back().kind, RegistryChange::Kind::kIgnored);
  state.Apply(ReleaseCommand("c", "b", 2), &changes);
  EXPECT_EQ(changes.back().kind, RegistryChange::Kind::kReleased);
  EXPECT_FALSE(state.Holder("c").has_value());
  // A released id registers again with a fresh epoch, never an old one.
  state.Apply(RegisterCommand("c", "a"), &changes);
  EXPECT_EQ(state.Holder("c")->epoch, 3u);
}

// A drain hands a session over only if the draining node still holds it: a client that
// reconnected elsewhere meanwhile keeps its registration.
TEST(RegistryStateTest, RegisterOnlyFromAppliesOnlyWhileThatNodeHoldsTheId) {
  RegistryState state;
  std::vector<RegistryChange> changes;
  state.Apply(RegisterCommand("c", "a"), &changes);       // epoch 1
  state.Apply(RegisterCommand("c", "b", "a"), &changes);  // a holds it: applied, epoch 2
  EXPECT_EQ(changes.back().kind, RegistryChange::Kind::kRegistered);
  EXPECT_EQ(changes.back().previous->node_id, "a");
  state.Apply(RegisterCommand("c", "d", "a"), &changes);  // b holds it now: ignored
  EXPECT_EQ(changes.back().kind, RegistryChange::Kind::kIgnored);
  EXPECT_EQ(state.Holder("c")->node_id, "b");
  EXPECT_EQ(state.last_epoch(), 2u);                          // an ignored command takes no epoch
  state.Apply(RegisterCommand("fresh", "d", "a"), &changes);  // nobody holds it: applied
  EXPECT_EQ(changes.back().kind, RegistryChange::Kind::kRegistered);
  EXPECT_EQ(state.Holder("fresh")->node_id, "d");
}

TEST(RegistryStateTest, DropNodeReleasesEverythingItHeld) {
  RegistryState state;
  std::vector<RegistryChange> changes;
  state.Apply(RegisterCommand("c1", "a"), &changes);
  state.Apply(RegisterCommand("c2", "b"), &changes);
  state.Apply(RegisterCommand("c3", "a"), &changes);
  changes.clear();
  state.Apply(DropNodeCommand("a"), &changes);
  EXPECT_EQ(changes.size(), 2u);
  EXPECT_FALSE(state.Holder("c1").has_value());
  EXPECT_FALSE(state.Holder("c3").has_value());
  EXPECT_EQ(state.Holder("c2")->node_id, "b");
}

TEST(RegistryStateTest, SnapshotRestoresTheSameStateAndIsDeterministic) {
  RegistryState a;
  std::vector<RegistryChange> changes;
  for (int i = 0; i < 100; ++i) {
    a.Apply(RegisterCommand("c" + std::to_string(i % 37), i % 2 ? "n1" : "n2"), &changes);
  }
  RegistryState b;
  ASSERT_TRUE(b.Restore(a.Snapshot()).ok());
  EXPECT_EQ(b.Snapshot(), a.Snapshot());
  EXPECT_EQ(b.last_epoch(), 100u);
  EXPECT_EQ(b.Holder("c5")->epoch, a.Holder("c5")->epoch);
  // Both go on identically.
  a.Apply(RegisterCommand("c5", "n3"), &changes);
  b.Apply(RegisterCommand("c5", "n3"), &changes);
  EXPECT_EQ(a.Snapshot(), b.Snapshot());
}

TEST(RegistryStateTest, GarbageIsRefusedWithoutAnyChange) {
  RegistryState state;
  std::vector<RegistryChange> changes;
  state.Apply(RegisterCommand("c", "a"), &changes);
  const std::string before = state.Snapshot();
  EXPECT_FALSE(state.Apply(std::string("\xff\xff\xff", 3), &changes).ok());
  EXPECT_FALSE(state.Restore(std::string("\xff\xff", 2)).ok());
  EXPECT_EQ(state.Snapshot(), before);
}

}  // namespace
}  // namespace mqtt::cluster
