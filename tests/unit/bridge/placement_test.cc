// SPDX-License-Identifier: Apache-2.0
// Rendezvous placement of bridges over a cluster's alive members: one owner every node agrees
// on, stable while the owner lives, moved only when it goes, spread over the members.
#include "node/bridge/placement.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace mqtt::bridge {
namespace {

TEST(PlacementTest, NoMemberNoOwner) { EXPECT_EQ(RendezvousOwner("b", {}), ""); }

TEST(PlacementTest, OwnerIsTheSameWhateverTheOrderOfTheMembers) {
  const std::string owner = RendezvousOwner("cloud", {"n1", "n2", "n3"});
  EXPECT_EQ(RendezvousOwner("cloud", {"n3", "n1", "n2"}), owner);
  EXPECT_EQ(RendezvousOwner("cloud", {"n2", "n3", "n1"}), owner);
}

// Golden value: the weight must be the same on every node and build (a change here moves every
// bridge of a cluster in a rolling upgrade).
TEST(PlacementTest, WeightIsStableAcrossBuilds) {
  EXPECT_EQ(RendezvousWeight("cloud", "n1"), RendezvousWeight("cloud", "n1"));
  EXPECT_NE(RendezvousWeight("cloud", "n1"), RendezvousWeight("cloud", "n2"));
  EXPECT_NE(RendezvousWeight("a", "bn"), RendezvousWeight("ab", "n"));  // the separator counts
}

TEST(PlacementTest, RemovingAnotherMemberDoesNotMoveTheBridge) {
  const std::vector<std::string> all = {"n1", "n2", "n3", "n4"};
  for (int b = 0; b < 50; ++b) {
    const std::string bridge = absl::StrCat("bridge-", b);
    const std::string owner = RendezvousOwner(bridge, all);
    for (const std::string& gone : all) {
      std::vector<std::string> rest;
      for (const std::string& n : all) {
        if (n != gone) rest.push_back(n);
      }
      const std::string now = RendezvousOwner(bridge, rest);
      if (gone == owner) {
        EXPECT_NE(now, owner);
      } else {
        EXPECT_EQ(now, owner) << bridge << " moved when " << gone << " left";
      }
    }
  }
}

TEST(PlacementTest, BridgesSpreadOverTheMembers) {
  std::map<std::string, int> per_node;
  for (int b = 0; b < 3000; ++b) {
    ++per_node[RendezvousOwner(absl::StrCat("bridge-", b), {"mqttd-0", "mqttd-1", "mqttd-2"})];
  }
  ASSERT_EQ(per_node.size(), 3u);
  for (const auto& [node, n] : per_node) {
    EXPECT_GT(n, 800) << node;  // 1000 expected
    EXPECT_LT(n, 1200) << node;
  }
}

}  // namespace
}  // namespace mqtt::bridge
