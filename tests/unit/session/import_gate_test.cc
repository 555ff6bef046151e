// SPDX-License-Identifier: Apache-2.0
// ImportGate: which requests wait for a session still on its way to this node, and that every
// waiter runs once what it depends on settles (docs/cluster-sessions.md, "Claims in flight").
#include "node/session/import_gate.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mqtt {
namespace {

class ImportGateTest : public ::testing::Test {
 protected:
  // Registers a waiter that records `name` in `ran_` when it runs.
  void Wait(const std::string& client_id, ImportGate::Waiter who, std::string name) {
    gate_.WhenSettled(client_id, std::move(who), [this, name] { ran_.push_back(name); });
  }

  ImportGate gate_;
  std::vector<std::string> ran_;
};

TEST_F(ImportGateTest, NothingOpenRunsAtOnce) {
  Wait("c", {"B", 0}, "take");
  Wait("c", {"", 7}, "connect");
  EXPECT_EQ(ran_, (std::vector<std::string>{"take", "connect"}));
}

// The drain race: node B claimed the id to adopt a draining node's session; node C's newer
// claim sends a Take to B before B fetched it. The Take waits for the import.
TEST_F(ImportGateTest, TakeWaitsForAClaimAndItsFetch) {
  const uint64_t ticket = gate_.Open("c");
  Wait("c", {"C", 0}, "take");
  EXPECT_TRUE(ran_.empty());
  gate_.Fetching("c", ticket, "A");
  EXPECT_TRUE(ran_.empty());
  gate_.Close("c", ticket);
  EXPECT_EQ(ran_, (std::vector<std::string>{"take"}));
  EXPECT_EQ(gate_.open_for_test("c"), 0u);
}

// A Take from the node this one is fetching from must not wait: that node waits for our fetch.
TEST_F(ImportGateTest, TakeFromTheFetchedNodeDoesNotWait) {
  const uint64_t ticket = gate_.Open("c");
  Wait("c", {"A", 0}, "take from A");
  EXPECT_TRUE(ran_.empty());  // still claiming: the source is not known yet
  gate_.Fetching("c", ticket, "A");
  EXPECT_EQ(ran_, (std::vector<std::string>{"take from A"}));
  Wait("c", {"A", 0}, "second take from A");
  EXPECT_EQ(ran_.size(), 2u);
  gate_.Close("c", ticket);
}

// A local CONNECT that needs no fetch waits for another claim's fetch, not for a claim still
// being made (two CONNECTs would wait for each other) and not for its own ticket.
TEST_F(ImportGateTest, ConnectWaitsForFetchesOnly) {
  const uint64_t adopting = gate_.Open("c");
  const uint64_t connecting = gate_.Open("c");
  const uint64_t other_connect = gate_.Open("c");
  Wait("c", {"", connecting}, "connect");
  EXPECT_EQ(ran_, (std::vector<std::string>{"connect"}));
  gate_.Fetching("c", adopting, "A");
  Wait("c", {"", other_connect}, "other connect");
  EXPECT_EQ(ran_.size(), 1u);
  gate_.Close("c", connecting);
  EXPECT_EQ(ran_.size(), 1u);
  gate_.Close("c", adopting);
  EXPECT_EQ(ran_, (std::vector<std::string>{"connect", "other connect"}));
  gate_.Close("c", other_connect);
  EXPECT_EQ(gate_.open_for_test("c"), 0u);
}

TEST_F(ImportGateTest, ClientIdsAreIndependent) {
  const uint64_t ticket = gate_.Open("a");
  Wait("b", {"C", 0}, "take b");
  Wait("a", {"C", 0}, "take a");
  EXPECT_EQ(ran_, (std::vector<std::string>{"take b"}));
  gate_.Close("a", ticket);
  EXPECT_EQ(ran_, (std::vector<std::string>{"take b", "take a"}));
}

// A waiter may open a ticket from inside its run (a deferred export that triggers a claim):
// runs happen outside the gate's lock.
TEST_F(ImportGateTest, WaiterMayReenterTheGate) {
  const uint64_t ticket = gate_.Open("c");
  uint64_t reopened = 0;
  gate_.WhenSettled("c", {"C", 0}, [&] { reopened = gate_.Open("c"); });
  gate_.Close("c", ticket);
  ASSERT_NE(reopened, 0u);
  EXPECT_EQ(gate_.open_for_test("c"), 1u);
  gate_.Close("c", reopened);
}

}  // namespace
}  // namespace mqtt
