// SPDX-License-Identifier: Apache-2.0
// PlanRegistryConfigChange: the registry leader's reconciliation decision alone (no Raft, no
// membership protocol), one case per branch of registry_plan.h. "a" is this node (the leader)
// in every case; a member advertises "<id>:7001" unless it moved.
#include "cluster/registry_plan.h"

#include <algorithm>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace mqtt::cluster {

void PrintTo(const RegistryConfigChange& c, std::ostream* os) {
  *os << RegistryConfigChangeName(c.kind) << " " << c.node_id << " at " << c.raft_address
      << (c.voter ? " (voter)" : "");
}

namespace {

using Kind = RegistryConfigChange::Kind;
using Role = RegistryMember::Role;

constexpr char kSelf[] = "a";

std::string Addr(const std::string& id) { return id + ":7001"; }
std::string NewAddr(const std::string& id) { return id + ":7002"; }

RegistryMember Voter(const std::string& id) { return {id, 0, Addr(id), Role::kVoter}; }
RegistryMember Standby(const std::string& id) { return {id, 0, Addr(id), Role::kStandby}; }

// A member in `state`, advertising `raft` (no metadata at all if empty).
MemberInfo Member(const std::string& id, MemberState state = MemberState::kAlive,
                  std::optional<std::string> raft = std::nullopt) {
  MemberInfo m;
  m.node_id = id;
  m.address = id + ":7000";
  m.state = state;
  const std::string advertised = raft.value_or(Addr(id));
  if (!advertised.empty()) m.metadata[kRaftAddressKey] = advertised;
  return m;
}
MemberInfo Moved(const std::string& id) { return Member(id, MemberState::kAlive, NewAddr(id)); }

std::optional<RegistryConfigChange> Plan(const std::vector<RegistryMember>& config,
                                         const std::vector<MemberInfo>& members) {
  return PlanRegistryConfigChange(config, members, kSelf);
}

RegistryConfigChange Change(Kind kind, const std::string& id, std::string raft, bool voter) {
  return {kind, id, std::move(raft), voter};
}

// What libraft does with each change, enough to chain decisions tick after tick.
void Apply(const RegistryConfigChange& c, std::vector<RegistryMember>* config) {
  auto it = std::find_if(config->begin(), config->end(),
                         [&](const RegistryMember& m) { return m.node_id == c.node_id; });
  if (c.removes()) {
    config->erase(it);
  } else if (it == config->end()) {
    config->push_back({c.node_id, 0, c.raft_address, c.voter ? Role::kVoter : Role::kStandby});
  } else {
    it->role = c.voter ? Role::kVoter : Role::kStandby;
  }
}

// A member that left is gone for good: it comes out first, ahead of a moved voter (earlier in
// the configuration, with a majority to spare), a dead voter with an alive standby, and a
// member to add.
TEST(RegistryPlanTest, ALeftMemberIsRemovedBeforeAnythingElse) {
  EXPECT_EQ(
      Plan({Voter("a"), Voter("b"), Voter("c"), Voter("d"), Voter("e"), Standby("s"), Standby("l")},
           {Member("a"), Moved("b"), Member("c"), Member("d"), Member("e", MemberState::kDead),
            Member("s"), Member("l", MemberState::kLeft), Member("x")}),
      Change(Kind::kRemove, "l", Addr("l"), false));
}

// The leader never removes itself: this node LEFT stays in the configuration (and the rest of
// the decision goes on), counted as a voter that is not alive.
TEST(RegistryPlanTest, ThisNodeLeftIsNotRemovedByItself) {
  const std::vector<RegistryMember> config = {Voter("a"), Voter("b"), Voter("c")};
  EXPECT_EQ(Plan(config, {Member("a", MemberState::kLeft), Member("b"), Member("c")}),
            std::nullopt);
  EXPECT_EQ(Plan(config, {Member("a", MemberState::kLeft), Member("b"), Member("c"), Member("x")}),
            Change(Kind::kAdd, "x", Addr("x"), false));
  // Counted a voter, not alive: c moved, 3 voters, alive others = {b} = 1 < (3 - 1) / 2 + 1 = 2.
  EXPECT_EQ(Plan(config, {Member("a", MemberState::kLeft), Member("b"), Moved("c")}), std::nullopt);
}

// This node's own advertised address is never taken for a move: the leader does not take
// itself out of the configuration.
TEST(RegistryPlanTest, ThisNodeIsNeverReaddressedByItself) {
  EXPECT_EQ(Plan({Voter("a"), Voter("b"), Voter("c")}, {Moved("a"), Member("b"), Member("c")}),
            std::nullopt);
}

// A standby does not vote: it is re-addressed even when the voters have no alive majority
// (3 voters, only a alive: 1 < (3 - 1) / 2 + 1 = 2, which would refuse a voter).
TEST(RegistryPlanTest, AStandbyIsReaddressedWhateverTheMajority) {
  EXPECT_EQ(Plan({Voter("a"), Voter("b"), Voter("c"), Standby("s")},
                 {Member("a"), Member("b", MemberState::kDead), Member("c", MemberState::kDead),
                  Moved("s")}),
            Change(Kind::kReaddress, "s", NewAddr("s"), false));
}

// A moved voter goes when the other voters keep an alive majority of the voters without it.
TEST(RegistryPlanTest, AVoterIsReaddressedWhenTheOthersKeepAMajority) {
  // 3 voters all alive, b moved: alive others = {a, c} = 2 >= (3 - 1) / 2 + 1 = 2.
  EXPECT_EQ(Plan({Voter("a"), Voter("b"), Voter("c")}, {Member("a"), Moved("b"), Member("c")}),
            Change(Kind::kReaddress, "b", NewAddr("b"), false));
  // 5 voters, e dead, b moved: alive others = {a, c, d} = 3 >= (5 - 1) / 2 + 1 = 3.
  EXPECT_EQ(
      Plan({Voter("a"), Voter("b"), Voter("c"), Voter("d"), Voter("e")},
           {Member("a"), Moved("b"), Member("c"), Member("d"), Member("e", MemberState::kDead)}),
      Change(Kind::kReaddress, "b", NewAddr("b"), false));
}

// The majority guard: a moved voter stays while removing it would leave the registry without
// an alive majority; the decision then goes on with the next kinds of change.
TEST(RegistryPlanTest, AVoterIsNotReaddressedWhenThatWouldBreakTheMajority) {
  // 3 voters, c dead, b moved: alive others = {a} = 1 < (3 - 1) / 2 + 1 = 2. Nothing else to do.
  EXPECT_EQ(Plan({Voter("a"), Voter("b"), Voter("c")},
                 {Member("a"), Moved("b"), Member("c", MemberState::kDead)}),
            std::nullopt);
  // 5 voters, d and e dead, b moved: alive others = {a, c} = 2 < (5 - 1) / 2 + 1 = 3.
  EXPECT_EQ(Plan({Voter("a"), Voter("b"), Voter("c"), Voter("d"), Voter("e")},
                 {Member("a"), Moved("b"), Member("c"), Member("d", MemberState::kDead),
                  Member("e", MemberState::kDead)}),
            std::nullopt);
  // As the first, with an alive standby: the dead voter c is demoted instead.
  EXPECT_EQ(Plan({Voter("a"), Voter("b"), Voter("c"), Standby("s")},
                 {Member("a"), Moved("b"), Member("c", MemberState::kDead), Member("s")}),
            Change(Kind::kDemote, "c", Addr("c"), false));
}

// A member that advertises no Raft address (no metadata, or an empty value) has not moved:
// were it a move, 2 >= (3 - 1) / 2 + 1 = 2 would let b be re-addressed.
TEST(RegistryPlanTest, AnEmptyAdvertisedAddressIsNotAMove) {
  const std::vector<RegistryMember> config = {Voter("a"), Voter("b"), Voter("c")};
  EXPECT_EQ(Plan(config, {Member("a"), Member("b", MemberState::kAlive, ""), Member("c")}),
            std::nullopt);
  MemberInfo empty_value = Member("b");
  empty_value.metadata[kRaftAddressKey] = "";
  EXPECT_EQ(Plan(config, {Member("a"), empty_value, Member("c")}), std::nullopt);
}

// An alive member outside the configuration joins as a standby at the address it advertises
// (it votes only once promoted, after catching up).
TEST(RegistryPlanTest, AnAliveMemberMissingFromTheConfigurationIsAddedAsAStandby) {
  EXPECT_EQ(Plan({Voter("a")}, {Member("a"), Member("b", MemberState::kAlive, "10.0.0.2:7001")}),
            Change(Kind::kAdd, "b", "10.0.0.2:7001", false));
}

// Only an alive member that can be dialled is added: not a suspect, dead or left one, nor one
// that advertises no Raft address.
TEST(RegistryPlanTest, OnlyAliveMembersWithAnAddressAreAdded) {
  EXPECT_EQ(Plan({Voter("a")},
                 {Member("a"), Member("s", MemberState::kSuspect), Member("d", MemberState::kDead),
                  Member("l", MemberState::kLeft), Member("n", MemberState::kAlive, "")}),
            std::nullopt);
}

// A dead voter gives its vote up when an alive standby can take it (by a later promotion).
TEST(RegistryPlanTest, ADeadVoterIsDemotedWhenAnAliveStandbyExists) {
  EXPECT_EQ(Plan({Voter("a"), Voter("b"), Voter("c"), Standby("s")},
                 {Member("a"), Member("b"), Member("c", MemberState::kDead), Member("s")}),
            Change(Kind::kDemote, "c", Addr("c"), false));
}

// Without an alive standby a demotion gains nothing: the dead voter keeps its vote. A suspect
// voter is never demoted (suspicion is often refuted), and at 3 alive members of 3 voters
// nothing is promoted either.
TEST(RegistryPlanTest, NoDemotionWithoutAnAliveStandbyNorOfASuspectVoter) {
  const std::vector<RegistryMember> config = {Voter("a"), Voter("b"), Voter("c"), Standby("s")};
  EXPECT_EQ(Plan(config, {Member("a"), Member("b"), Member("c", MemberState::kDead),
                          Member("s", MemberState::kDead)}),
            std::nullopt);
  EXPECT_EQ(Plan(config, {Member("a"), Member("b"), Member("c", MemberState::kDead),
                          Member("s", MemberState::kSuspect)}),
            std::nullopt);
  EXPECT_EQ(
      Plan(config, {Member("a"), Member("b"), Member("c", MemberState::kSuspect), Member("s")}),
      std::nullopt);
}

// Voters grow to 1, 3 or 5 with the alive members of the configuration (< 3, 3-4, >= 5): the
// first alive standby in configuration order is promoted while voters < target.
TEST(RegistryPlanTest, AStandbyIsPromotedWhileVotersAreBelowTheTarget) {
  // 3 alive: target 3 > 1 voter. A dead standby first in order is passed over.
  EXPECT_EQ(Plan({Voter("a"), Standby("d"), Standby("b"), Standby("c")},
                 {Member("a"), Member("d", MemberState::kDead), Member("b"), Member("c")}),
            Change(Kind::kPromote, "b", Addr("b"), true));
  // 4 alive: target 3 > 2 voters.
  EXPECT_EQ(Plan({Voter("a"), Voter("b"), Standby("c"), Standby("d")},
                 {Member("a"), Member("b"), Member("c"), Member("d")}),
            Change(Kind::kPromote, "c", Addr("c"), true));
  // 5 alive: target 5 > 3 voters.
  EXPECT_EQ(Plan({Voter("a"), Voter("b"), Voter("c"), Standby("d"), Standby("e")},
                 {Member("a"), Member("b"), Member("c"), Member("d"), Member("e")}),
            Change(Kind::kPromote, "d", Addr("d"), true));
}

// At the target nothing is promoted: 2 alive -> 1 voter, 4 alive -> 3, 7 alive -> 5 (the cap).
// Only alive members count: 3 members but one standby dead is 2 alive, target 1.
TEST(RegistryPlanTest, NoPromotionAtTheTarget) {
  EXPECT_EQ(Plan({Voter("a"), Standby("b")}, {Member("a"), Member("b")}), std::nullopt);
  EXPECT_EQ(Plan({Voter("a"), Voter("b"), Voter("c"), Standby("d")},
                 {Member("a"), Member("b"), Member("c"), Member("d")}),
            std::nullopt);
  EXPECT_EQ(
      Plan({Voter("a"), Voter("b"), Voter("c"), Voter("d"), Voter("e"), Standby("f"), Standby("g")},
           {Member("a"), Member("b"), Member("c"), Member("d"), Member("e"), Member("f"),
            Member("g")}),
      std::nullopt);
  EXPECT_EQ(Plan({Voter("a"), Standby("b"), Standby("c")},
                 {Member("a"), Member("b"), Member("c", MemberState::kDead)}),
            std::nullopt);
}

// Precedence remove > re-address > add > demote > promote, one change per call: a
// configuration where every kind applies, replayed tick after tick until nothing is left.
TEST(RegistryPlanTest, ChangesComeOneAtATimeInPrecedenceOrder) {
  std::vector<RegistryMember> config = {Voter("a"), Voter("b"),   Voter("c"),  Voter("e"),
                                        Voter("g"), Standby("f"), Standby("l")};
  const MemberInfo e_dead = Member("e", MemberState::kDead);
  const MemberInfo l_left = Member("l", MemberState::kLeft);
  const std::vector<MemberInfo> members = {Member("a"), Member("b"), Moved("c"),  Member("d"),
                                           e_dead,      Member("f"), Member("g"), l_left};
  const std::vector<RegistryConfigChange> expected = {
      Change(Kind::kRemove, "l", Addr("l"), false),
      // 5 voters, e dead: alive others = {a, b, g} = 3 >= (5 - 1) / 2 + 1 = 3.
      Change(Kind::kReaddress, "c", NewAddr("c"), false),
      // Adds in membership order: c back at its new address, then d.
      Change(Kind::kAdd, "c", NewAddr("c"), false),
      Change(Kind::kAdd, "d", Addr("d"), false),
      Change(Kind::kDemote, "e", Addr("e"), false),
      // 6 alive (a, b, g, f, c, d): target 5; standbys in configuration order, e dead.
      Change(Kind::kPromote, "f", Addr("f"), true),
      Change(Kind::kPromote, "c", NewAddr("c"), true),
  };
  for (const RegistryConfigChange& want : expected) {
    std::optional<RegistryConfigChange> got = Plan(config, members);
    ASSERT_EQ(got, want);
    Apply(*got, &config);
  }
  EXPECT_EQ(Plan(config, members), std::nullopt);
}

// A configured member the membership does not know (not learned yet, or forgotten, which
// RegistryNode's kRemoved listener handles) is left alone: not removed, demoted or promoted.
// Members the membership does not know are never changed, but an unknown voter still counts:
// Raft needs its vote in every majority.
TEST(RegistryPlanTest, UnknownMembersAreNotChangedButUnknownVotersCount) {
  EXPECT_EQ(Plan({Voter("a"), Voter("x"), Standby("y")}, {Member("a")}), std::nullopt);
  // 3 alive members (a, b, c) want 3 voters; a, x and y are 3 already: no fourth.
  EXPECT_EQ(Plan({Voter("a"), Voter("x"), Voter("y"), Standby("b"), Standby("c")},
                 {Member("a"), Member("b"), Member("c")}),
            std::nullopt);
  // Voters a, b (moved), x (unknown): without b, Raft's majority of {a, x} needs x, which is not
  // known to be alive: 1 alive other < (3 - 1) / 2 + 1 = 2, so b stays.
  EXPECT_EQ(Plan({Voter("a"), Voter("b"), Voter("x")}, {Member("a"), Moved("b")}), std::nullopt);
}

// Every moved member is set aside (not alive, not promotable), and the first whose removal can
// commit is re-addressed: voter b is refused by the majority guard (alive others = {a} = 1 < 2),
// the moved standby t is re-addressed instead, and it is not the standby that would let the
// dead voter c be demoted.
TEST(RegistryPlanTest, EveryMovedMemberIsSetAsideAndTheFirstThatCanGoIsReaddressed) {
  EXPECT_EQ(Plan({Voter("a"), Voter("b"), Voter("c"), Standby("t")},
                 {Member("a"), Moved("b"), Member("c", MemberState::kDead), Moved("t")}),
            Change(Kind::kReaddress, "t", NewAddr("t"), false));
}

}  // namespace
}  // namespace mqtt::cluster
