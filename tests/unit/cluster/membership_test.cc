// SPDX-License-Identifier: Apache-2.0
// Membership over real gRPC: 2 to 5 nodes in one process, each with its own grpc::Server on
// 127.0.0.1 (port 0 unless a test restarts a node on its old port), with short timings. Every
// wait has a deadline, so a hang fails the test instead of stalling ctest.
#include "cluster/membership.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

namespace mqtt::cluster {
namespace {

// Probe every 100 ms, 50 ms for a direct ack, dead 500 ms after suspicion.
MembershipOptions ShortTimings(const std::string& id, std::vector<std::string> seeds) {
  MembershipOptions o;
  o.node_id = id;
  o.seeds = std::move(seeds);
  o.probe_interval = absl::Milliseconds(100);
  o.probe_timeout = absl::Milliseconds(50);
  o.indirect_probes = 2;
  o.suspect_timeout = absl::Milliseconds(500);
  o.sync_interval = absl::Seconds(2);
  o.reconnect_interval = absl::Seconds(2);
  o.join_backoff_initial = absl::Milliseconds(50);
  o.join_backoff_max = absl::Milliseconds(400);
  return o;
}

struct Node {
  std::string id;
  std::string address;
  int port = 0;
  std::unique_ptr<Membership> membership;
  std::unique_ptr<grpc::Server> server;

  // A process kill as peers see it: the server stops answering; nothing is announced.
  void Kill() {
    if (server != nullptr) server->Shutdown(std::chrono::system_clock::now());
    if (membership != nullptr) membership->Stop();
    server.reset();
    membership.reset();
  }
  ~Node() { Kill(); }
};

std::optional<MemberInfo> Find(const Membership& m, const std::string& id) {
  for (MemberInfo& info : m.Members()) {
    if (info.node_id == id) return info;
  }
  return std::nullopt;
}

bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

class MembershipTest : public ::testing::Test {
 protected:
  // Starts a node; `port` 0 picks a free one. Fails the test if the port cannot be bound.
  Node* StartNode(const std::string& id, std::vector<std::string> seeds, int port = 0,
                  uint64_t incarnation = 1,
                  std::function<bool(const std::string&)> drop_probe = nullptr) {
    auto node = std::make_unique<Node>();
    node->id = id;
    MembershipOptions options = ShortTimings(id, std::move(seeds));
    options.start_incarnation = incarnation;
    options.drop_probe_for_test = std::move(drop_probe);
    node->membership = std::make_unique<Membership>(std::move(options));
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(),
                             &node->port);
    builder.RegisterService(node->membership->service());
    node->server = builder.BuildAndStart();
    EXPECT_NE(node->server, nullptr);
    EXPECT_NE(node->port, 0) << "cannot bind 127.0.0.1:" << port;
    if (node->server == nullptr || node->port == 0) return nullptr;
    node->address = "127.0.0.1:" + std::to_string(node->port);
    EXPECT_TRUE(node->membership->Start(node->address).ok());
    nodes_.push_back(std::move(node));
    return nodes_.back().get();
  }

  // Every running node other than `except` sees `id` in `state` at >= `min_incarnation`.
  bool AllSee(const std::string& id, MemberState state, uint64_t min_incarnation = 0,
              const Node* except = nullptr) {
    for (const auto& node : nodes_) {
      if (node.get() == except || node->membership == nullptr || node->id == id) continue;
      std::optional<MemberInfo> m = Find(*node->membership, id);
      if (!m || m->state != state || m->incarnation < min_incarnation) return false;
    }
    return true;
  }

  bool AllAliveEverywhere(size_t n) {
    for (const auto& node : nodes_) {
      if (node->membership == nullptr) continue;
      std::vector<MemberInfo> members = node->membership->Members();
      if (members.size() != n) return false;
      for (const MemberInfo& m : members) {
        if (m.state != MemberState::kAlive) return false;
      }
    }
    return true;
  }

  // Five nodes, all joining through the first. Returns the time to converge.
  absl::Duration StartFive() {
    const absl::Time start = absl::Now();
    Node* seed = StartNode("n0", {});
    for (int i = 1; i < 5; ++i) StartNode("n" + std::to_string(i), {seed->address});
    EXPECT_TRUE(WaitUntil([&] { return AllAliveEverywhere(5); }, absl::Seconds(10)));
    return absl::Now() - start;
  }

  std::vector<std::unique_ptr<Node>> nodes_;
};

TEST_F(MembershipTest, FiveNodesJoinedThroughOneSeedConverge) {
  const absl::Duration took = StartFive();
  std::cout << "[measure] 5 nodes converged to 5 alive everywhere in " << took << std::endl;
  EXPECT_LT(took, absl::Seconds(3));
  for (const auto& node : nodes_) EXPECT_TRUE(node->membership->joined());
}

TEST_F(MembershipTest, KilledNodeBecomesSuspectThenDeadEverywhere) {
  StartFive();
  Node* victim = nodes_[3].get();
  std::atomic<bool> suspected{false};
  nodes_[0]->membership->Subscribe([&](const MemberInfo& m, MemberChange change) {
    if (m.node_id == "n3" && change == MemberChange::kSuspect) suspected = true;
  });
  const absl::Time killed = absl::Now();
  victim->Kill();
  // Detection (one probe round of up to 4 members) + suspect timeout + gossip, with slack.
  ASSERT_TRUE(
      WaitUntil([&] { return AllSee("n3", MemberState::kDead, 0, victim); }, absl::Seconds(5)));
  const absl::Duration took = absl::Now() - killed;
  std::cout << "[measure] killed node dead on all 4 others after " << took << std::endl;
  EXPECT_GE(took, absl::Milliseconds(500));  // never before the suspect timeout
  EXPECT_TRUE(WaitUntil([&] { return suspected.load(); }, absl::Seconds(1)));
  // The others stay alive to each other.
  for (const char* id : {"n0", "n1", "n2", "n4"}) {
    EXPECT_TRUE(AllSee(id, MemberState::kAlive, 0, victim)) << id;
  }
}

TEST_F(MembershipTest, RestartedNodeWithHigherIncarnationIsAliveAgain) {
  StartFive();
  Node* victim = nodes_[4].get();
  const int port = victim->port;
  victim->Kill();
  ASSERT_TRUE(
      WaitUntil([&] { return AllSee("n4", MemberState::kDead, 0, victim); }, absl::Seconds(5)));
  // Same id, same address, stored incarnation + 1; the others are its seeds.
  nodes_.erase(nodes_.begin() + 4);
  const absl::Time restarted = absl::Now();
  Node* back = StartNode("n4", {nodes_[1]->address, nodes_[2]->address}, port, 2);
  ASSERT_NE(back, nullptr);
  ASSERT_TRUE(WaitUntil([&] { return AllAliveEverywhere(5); }, absl::Seconds(5)));
  std::cout << "[measure] restarted node alive everywhere after " << absl::Now() - restarted
            << std::endl;
  EXPECT_TRUE(AllSee("n4", MemberState::kAlive, 2));
}

TEST_F(MembershipTest, GracefulLeaveIsSeenAsLeftQuickly) {
  Node* seed = StartNode("n0", {});
  for (int i = 1; i < 4; ++i) StartNode("n" + std::to_string(i), {seed->address});
  ASSERT_TRUE(WaitUntil([&] { return AllAliveEverywhere(4); }, absl::Seconds(5)));
  Node* leaver = nodes_[2].get();
  const absl::Time start = absl::Now();
  ASSERT_TRUE(leaver->membership->Leave(absl::Seconds(1)).ok());
  EXPECT_TRUE(AllSee("n2", MemberState::kLeft, 0, leaver)) << "Leave returns once all confirmed";
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
  leaver->Kill();
  // No probe of a member that left, so no suspicion and no death afterwards.
  absl::SleepFor(absl::Milliseconds(800));
  EXPECT_TRUE(AllSee("n2", MemberState::kLeft, 0, leaver));
}

TEST_F(MembershipTest, FalselySuspectedNodeRefutesWithHigherIncarnation) {
  std::atomic<bool> drop{false};
  Node* a = StartNode("a", {}, 0, 1,
                      [&](const std::string& target) { return drop.load() && target == "c"; });
  StartNode("b", {a->address});
  Node* c = StartNode("c", {a->address});
  ASSERT_TRUE(WaitUntil([&] { return AllAliveEverywhere(3); }, absl::Seconds(5)));
  std::atomic<int> suspicions{0};
  a->membership->Subscribe([&](const MemberInfo& m, MemberChange change) {
    if (m.node_id == "c" && change == MemberChange::kSuspect) ++suspicions;
  });
  drop = true;  // a's probes of c now fail, direct and indirect
  ASSERT_TRUE(WaitUntil([&] { return c->membership->incarnation() > 1; }, absl::Seconds(5)));
  drop = false;
  EXPECT_GE(suspicions.load(), 1);
  const uint64_t refuted = c->membership->incarnation();
  ASSERT_TRUE(
      WaitUntil([&] { return AllSee("c", MemberState::kAlive, refuted); }, absl::Seconds(5)));
  ASSERT_TRUE(WaitUntil([&] { return AllAliveEverywhere(3); }, absl::Seconds(5)));
}

// Both sides of a partition declare each other dead; nobody probes a dead member, so only the
// periodic sync with a dead member brings them back together once the partition heals.
TEST_F(MembershipTest, NodesDeadToEachOtherReconnectAfterThePartitionHeals) {
  std::atomic<bool> partitioned{false};
  Node* a = StartNode("a", {}, 0, 1, [&](const std::string& target) {
    return partitioned.load() && target == "b";
  });
  Node* b = StartNode("b", {a->address}, 0, 1, [&](const std::string& target) {
    return partitioned.load() && target == "a";
  });
  ASSERT_TRUE(WaitUntil([&] { return AllAliveEverywhere(2); }, absl::Seconds(5)));
  partitioned = true;
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::optional<MemberInfo> b_on_a = Find(*a->membership, "b");
        std::optional<MemberInfo> a_on_b = Find(*b->membership, "a");
        return b_on_a && b_on_a->state == MemberState::kDead && a_on_b &&
               a_on_b->state == MemberState::kDead;
      },
      absl::Seconds(3)))
      << "a and b never saw each other dead at the same time";
  partitioned = false;  // healed: nobody probes the other, both are DEAD there
  ASSERT_TRUE(WaitUntil([&] { return AllAliveEverywhere(2); }, absl::Seconds(6)));
}

TEST_F(MembershipTest, JoinRetriesUntilSeedAnswers) {
  // Reserve a port, then free it: the seed is unreachable (connection refused) at first.
  int port = 0;
  {
    Membership never_started(ShortTimings("placeholder", {}));  // a server needs a service
    grpc::ServerBuilder builder;
    builder.RegisterService(never_started.service());
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    std::unique_ptr<grpc::Server> placeholder = builder.BuildAndStart();
    ASSERT_NE(port, 0);
    placeholder->Shutdown();
  }
  const std::string seed_address = "127.0.0.1:" + std::to_string(port);
  Node* joiner = StartNode("joiner", {seed_address});
  absl::SleepFor(absl::Milliseconds(700));  // several failed attempts
  EXPECT_FALSE(joiner->membership->joined());
  const absl::Time seed_up = absl::Now();
  Node* seed = StartNode("seed", {}, port);
  ASSERT_NE(seed, nullptr);
  ASSERT_TRUE(WaitUntil([&] { return joiner->membership->joined() && AllAliveEverywhere(2); },
                        absl::Seconds(5)));
  std::cout << "[measure] joined " << absl::Now() - seed_up << " after the seed came up"
            << std::endl;
}

TEST_F(MembershipTest, StartRejectsBadOptions) {
  MembershipOptions options = ShortTimings("x", {});
  options.probe_timeout = absl::Seconds(2);  // longer than the probe interval
  Membership m(options);
  EXPECT_EQ(m.Start("127.0.0.1:1").code(), absl::StatusCode::kInvalidArgument);
  Membership no_address(ShortTimings("y", {}));
  EXPECT_EQ(no_address.Start().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mqtt::cluster
