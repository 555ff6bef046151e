// SPDX-License-Identifier: Apache-2.0
// Membership over real gRPC: 2 to 5 nodes in one process, each with its own grpc::Server on
// 127.0.0.1 (port 0 unless a test restarts a node on its old port), with short timings. Every
// wait has a deadline, so a hang fails the test instead of stalling ctest.
#include "cluster/membership.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include "absl/strings/match.h"

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
                  std::function<bool(const std::string&)> drop_probe = nullptr,
                  const std::string& cluster_name = "mqttd") {
    auto node = std::make_unique<Node>();
    node->id = id;
    MembershipOptions options = ShortTimings(id, std::move(seeds));
    options.cluster_name = cluster_name;
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
  // joined() is set at the end of each join pass, which may end just after the views converged.
  for (const auto& node : nodes_) {
    EXPECT_TRUE(WaitUntil([&] { return node->membership->joined(); }, absl::Seconds(5)))
        << node->id;
  }
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
  // An empty name is accepted in requests (older versions) but no node has one.
  MembershipOptions unnamed = ShortTimings("z", {});
  unnamed.cluster_name.clear();
  Membership no_name(unnamed);
  absl::Status s = no_name.Start("127.0.0.1:1");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(s.message(), "cluster: cluster name is empty");
}

std::vector<std::string> MemberIds(const Membership& m) {
  std::vector<std::string> ids;
  for (const MemberInfo& info : m.Members()) ids.push_back(info.node_id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

// b (cluster "beta") is seeded with a (cluster "alpha"), c ("alpha") with both: c joins a, while
// a refuses b and b refuses c, so that neither cluster ever lists a node of the other, and b,
// whose only seed is of another cluster, never counts as joined (it keeps retrying).
TEST_F(MembershipTest, NodesOfDifferentClusterNamesNeverMerge) {
  Node* a = StartNode("a", {}, 0, 1, nullptr, "alpha");
  ASSERT_NE(a, nullptr);
  Node* b = StartNode("b", {a->address}, 0, 1, nullptr, "beta");
  ASSERT_NE(b, nullptr);
  Node* c = StartNode("c", {a->address, b->address}, 0, 1, nullptr, "alpha");
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(WaitUntil(
      [&] {
        return c->membership->joined() &&
               MemberIds(*a->membership) == std::vector<std::string>{"a", "c"} &&
               MemberIds(*c->membership) == std::vector<std::string>{"a", "c"};
      },
      absl::Seconds(5)))
      << "a and c, both of cluster alpha, did not join";
  // For 10 probe periods (b's join retries every 50-400 ms, a's and c's probes and syncs), every
  // view stays as it is: a merge would show within one of them.
  const absl::Time until = absl::Now() + absl::Seconds(1);
  while (absl::Now() < until) {
    ASSERT_EQ(MemberIds(*a->membership), (std::vector<std::string>{"a", "c"}));
    ASSERT_EQ(MemberIds(*c->membership), (std::vector<std::string>{"a", "c"}));
    ASSERT_EQ(MemberIds(*b->membership), (std::vector<std::string>{"b"}));
    ASSERT_FALSE(b->membership->joined());
    absl::SleepFor(absl::Milliseconds(20));  // sampling the views, not synchronisation
  }
  EXPECT_TRUE(c->membership->joined());
}

TEST_F(MembershipTest, NodesOfTheSameClusterNameJoin) {
  Node* a = StartNode("a", {}, 0, 1, nullptr, "alpha");
  ASSERT_NE(a, nullptr);
  Node* b = StartNode("b", {a->address}, 0, 1, nullptr, "alpha");
  ASSERT_NE(b, nullptr);
  // joined() turns true once b's join pass has synced with every seed, a moment after a's view
  // reached b: waited for with the views, else the check races the end of that pass.
  EXPECT_TRUE(
      WaitUntil([&] { return AllAliveEverywhere(2) && b->membership->joined(); }, absl::Seconds(5)))
      << "b, of cluster alpha like its seed a, did not join";
}

v1::Member Record(const std::string& id, const std::string& address, v1::MemberState state) {
  v1::Member m;
  m.set_node_id(id);
  m.set_address(address);
  m.set_state(state);
  m.set_incarnation(1);
  return m;
}

// The service called directly: a request with an empty name (a node of a version without names,
// during a rolling upgrade) is applied; one with another name is refused with the names in the
// message, by every method, and nothing of it is applied.
TEST_F(MembershipTest, EmptyClusterNameIsAcceptedAndAnotherIsRefusedByEveryMethod) {
  Node* a = StartNode("a", {}, 0, 1, nullptr, "alpha");
  ASSERT_NE(a, nullptr);
  auto stub =
      v1::Membership::NewStub(grpc::CreateChannel(a->address, grpc::InsecureChannelCredentials()));
  auto call = [](auto method) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    return method(&ctx);
  };
  // Port 1 of loopback: nobody answers, a's probes of these records fail (no matter here).
  const v1::Member old_node = Record("old", "127.0.0.1:1", v1::MEMBER_STATE_ALIVE);
  const v1::Member stranger = Record("stranger", "127.0.0.1:1", v1::MEMBER_STATE_ALIVE);

  v1::SyncRequest sync;
  *sync.mutable_sender() = old_node;  // cluster_name left empty
  v1::SyncResponse synced;
  grpc::Status s = call([&](grpc::ClientContext* ctx) { return stub->Sync(ctx, sync, &synced); });
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::vector<std::string> answered;  // a's whole list, the sender merged into it first
  for (const v1::Member& m : synced.members()) answered.push_back(m.node_id());
  std::sort(answered.begin(), answered.end());
  EXPECT_EQ(answered, (std::vector<std::string>{"a", "old"}));
  EXPECT_TRUE(Find(*a->membership, "old").has_value()) << "the empty-name sync was not applied";

  const std::string refusal =
      "cluster name mismatch: this node (a) is in cluster 'alpha', the caller (stranger, "
      "127.0.0.1:1) in 'beta'";
  sync.set_cluster_name("beta");
  *sync.mutable_sender() = stranger;
  *sync.add_members() = Record("friend-of-stranger", "127.0.0.1:1", v1::MEMBER_STATE_ALIVE);
  s = call([&](grpc::ClientContext* ctx) { return stub->Sync(ctx, sync, &synced); });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), refusal);

  v1::PingRequest ping;
  ping.set_cluster_name("beta");
  *ping.mutable_sender() = stranger;
  ping.set_target_node_id("a");
  *ping.add_updates() = Record("friend-of-stranger", "127.0.0.1:1", v1::MEMBER_STATE_ALIVE);
  v1::PingResponse pong;
  s = call([&](grpc::ClientContext* ctx) { return stub->Ping(ctx, ping, &pong); });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), refusal);

  v1::PingReqRequest ping_req;
  ping_req.set_cluster_name("beta");
  *ping_req.mutable_sender() = stranger;
  ping_req.set_target_node_id("old");
  ping_req.set_target_address("127.0.0.1:1");
  v1::PingReqResponse ping_req_answer;
  s = call(
      [&](grpc::ClientContext* ctx) { return stub->PingReq(ctx, ping_req, &ping_req_answer); });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), refusal);

  // A LEFT record of a member a knows, from another cluster: not applied either.
  v1::LeaveRequest leave;
  leave.set_cluster_name("beta");
  *leave.mutable_member() = Record("old", "127.0.0.1:1", v1::MEMBER_STATE_LEFT);
  leave.mutable_member()->set_incarnation(5);
  v1::LeaveResponse left;
  s = call([&](grpc::ClientContext* ctx) { return stub->Leave(ctx, leave, &left); });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(absl::StartsWith(s.error_message(), "cluster name mismatch: this node (a)"))
      << s.error_message();

  EXPECT_EQ(MemberIds(*a->membership), (std::vector<std::string>{"a", "old"}));
  std::optional<MemberInfo> old_on_a = Find(*a->membership, "old");
  ASSERT_TRUE(old_on_a.has_value());
  EXPECT_NE(old_on_a->state, MemberState::kLeft);
  EXPECT_EQ(old_on_a->incarnation, 1u);

  // The same LEFT record with an empty name is applied.
  leave.clear_cluster_name();
  s = call([&](grpc::ClientContext* ctx) { return stub->Leave(ctx, leave, &left); });
  ASSERT_TRUE(s.ok()) << s.error_message();
  old_on_a = Find(*a->membership, "old");
  ASSERT_TRUE(old_on_a.has_value());
  EXPECT_EQ(old_on_a->state, MemberState::kLeft);
}

}  // namespace
}  // namespace mqtt::cluster
