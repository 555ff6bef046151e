// SPDX-License-Identifier: Apache-2.0
// The route table over real gRPC: 2 to 5 RouteTables in one process, each with its own
// grpc::Server on 127.0.0.1, peers wired by hand (PeerAlive / PeerDead / PeerGone, as the
// node's membership listener will). Every wait has a deadline, so a hang fails the test instead
// of stalling ctest. Convergence times are printed.
#include "cluster/routes.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "cluster/membership.h"

namespace mqtt::cluster {
namespace {

Route R(std::string filter, bool persistent = false, std::string group = "") {
  return Route{std::move(filter), std::move(group), persistent};
}

// What a node's Router would hold. Records an error for an Added of a route already held or a
// Removed of one not held: events must come in order.
class TestSink final : public RouteSink {
 public:
  void Added(const std::string& origin, uint32_t index, const Route& route) override {
    absl::MutexLock lock(&mu_);
    if (index == 0) ++errors_;
    if (!routes_.emplace(origin, route).second) ++errors_;
    ++counts_[origin];
  }
  void Removed(const std::string& origin, uint32_t index, const Route& route) override {
    absl::MutexLock lock(&mu_);
    if (index == 0) ++errors_;
    if (routes_.erase({origin, route}) == 0) {
      ++errors_;
    } else {
      --counts_[origin];
    }
  }
  bool Has(const std::string& origin, const Route& route) const {
    absl::MutexLock lock(&mu_);
    return routes_.contains({origin, route});
  }
  size_t Count(const std::string& origin) const {
    absl::MutexLock lock(&mu_);
    auto it = counts_.find(origin);
    return it == counts_.end() ? 0 : it->second;
  }
  int errors() const {
    absl::MutexLock lock(&mu_);
    return errors_;
  }

 private:
  mutable absl::Mutex mu_;
  std::set<std::pair<std::string, Route>> routes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, size_t> counts_ ABSL_GUARDED_BY(mu_);  // origin -> routes held
  int errors_ ABSL_GUARDED_BY(mu_) = 0;
};

struct Node {
  std::string id;
  std::string address;
  int port = 0;
  TestSink sink;
  std::unique_ptr<RouteTable> table;
  std::unique_ptr<grpc::Server> server;

  void StopServer() {
    if (server != nullptr) server->Shutdown(std::chrono::system_clock::now());
    server.reset();
  }
  // A process kill as peers see it: the server stops answering; nothing is announced.
  void Kill() {
    StopServer();
    if (table != nullptr) table->Stop();
    table.reset();
  }
  ~Node() { Kill(); }
};

bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

void Report(const std::string& what, absl::Duration took) {
  std::cout << "[ measure  ] " << what << ": " << absl::FormatDuration(took) << std::endl;
}

class RoutesTest : public ::testing::Test {
 protected:
  // Digest every 200 ms unless given; 1 s per RPC.
  Node* StartNode(const std::string& id, absl::Duration digest = absl::Milliseconds(200),
                  uint64_t epoch = 1, int port = 0) {
    auto node = std::make_unique<Node>();
    node->id = id;
    RouteTableOptions options;
    options.node_id = id;
    options.epoch = epoch;
    options.digest_interval = digest;
    options.rpc_timeout = absl::Seconds(1);
    node->table = std::make_unique<RouteTable>(std::move(options), &node->sink);
    if (!StartServer(node.get(), port)) return nullptr;
    node->address = "127.0.0.1:" + std::to_string(node->port);
    EXPECT_TRUE(node->table->Start(node->address).ok());
    nodes_.push_back(std::move(node));
    return nodes_.back().get();
  }

  bool StartServer(Node* node, int port) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(),
                             &node->port);
    builder.RegisterService(node->table->service());
    node->server = builder.BuildAndStart();
    EXPECT_NE(node->server, nullptr);
    EXPECT_NE(node->port, 0) << "cannot bind 127.0.0.1:" << port;
    return node->server != nullptr && node->port != 0;
  }

  // Every pair of running nodes learns of each other, as from membership events.
  void ConnectAll() {
    for (const auto& a : nodes_) {
      for (const auto& b : nodes_) {
        if (a != b && a->table != nullptr && b->table != nullptr) {
          a->table->PeerAlive(b->id, b->address);
        }
      }
    }
  }

  // Every running node other than `origin` holds (or, with !present, lacks) the route.
  bool AllSee(const Node* origin, const Route& route, bool present = true) {
    for (const auto& node : nodes_) {
      if (node.get() == origin || node->table == nullptr) continue;
      if (node->sink.Has(origin->id, route) != present) return false;
    }
    return true;
  }

  void TearDown() override {
    for (const auto& node : nodes_) EXPECT_EQ(node->sink.errors(), 0) << node->id;
  }

  std::vector<std::unique_ptr<Node>> nodes_;
};

TEST_F(RoutesTest, SubscribeReachesFiveNodesThroughDeltasAndUnsubscribeRemovesIt) {
  // Digests every 30 s: only the pushed deltas can make it in time.
  for (int i = 0; i < 5; ++i)
    ASSERT_NE(StartNode("n" + std::to_string(i), absl::Seconds(30)), nullptr);
  ConnectAll();
  absl::SleepFor(absl::Milliseconds(200));  // the join digests and fetches settle
  Node* n0 = nodes_[0].get();

  absl::Time start = absl::Now();
  ASSERT_TRUE(n0->table->AddLocal(R("sensors/+/temp")).ok());
  ASSERT_TRUE(WaitUntil([&] { return AllSee(n0, R("sensors/+/temp")); }, absl::Seconds(5)));
  const absl::Duration add = absl::Now() - start;
  Report("subscribe on 1 node seen by the 4 others", add);
  EXPECT_LT(add, absl::Seconds(1));

  // A second subscriber of the same route changes nothing; removing it leaves the route.
  ASSERT_TRUE(n0->table->AddLocal(R("sensors/+/temp")).ok());
  ASSERT_TRUE(n0->table->RemoveLocal(R("sensors/+/temp")).ok());
  EXPECT_EQ(n0->table->local_version().version, 1u);

  start = absl::Now();
  ASSERT_TRUE(n0->table->RemoveLocal(R("sensors/+/temp")).ok());
  ASSERT_TRUE(WaitUntil([&] { return AllSee(n0, R("sensors/+/temp"), false); }, absl::Seconds(5)));
  Report("unsubscribe on 1 node seen by the 4 others", absl::Now() - start);
  EXPECT_EQ(n0->table->RemoveLocal(R("sensors/+/temp")).code(), absl::StatusCode::kNotFound);

  // Every node subscribes at once: all 5 x 4 remote routes arrive.
  start = absl::Now();
  for (const auto& node : nodes_) ASSERT_TRUE(node->table->AddLocal(R("all/" + node->id)).ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        for (const auto& node : nodes_) {
          if (!AllSee(node.get(), R("all/" + node->id))) return false;
        }
        return true;
      },
      absl::Seconds(5)));
  Report("5 nodes subscribing at once, all seen everywhere", absl::Now() - start);
}

TEST_F(RoutesTest, NodeIndicesAreSmallStableAndNeverReused) {
  Node* a = StartNode("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->table->NodeIndex("x"), 1u);
  EXPECT_EQ(a->table->NodeIndex("y"), 2u);
  EXPECT_EQ(a->table->NodeIndex("x"), 1u);
  a->table->PeerGone("x");
  EXPECT_EQ(a->table->NodeIndex("x"), 1u);
  EXPECT_EQ(a->table->NodeIndex("z"), 3u);
}

TEST_F(RoutesTest, NodeThatMissedDeltasConvergesThroughTheDigest) {
  Node* n0 = StartNode("n0");
  Node* n1 = StartNode("n1");
  // n2 never starts a digest itself (it would repair through n1 even while its server is down):
  // the repair comes from n0's and n1's digests, which find n2 behind.
  Node* n2 = StartNode("n2", absl::Seconds(30));
  ASSERT_TRUE(n0 && n1 && n2);
  ConnectAll();
  ASSERT_TRUE(n0->table->AddLocal(R("before")).ok());
  ASSERT_TRUE(WaitUntil([&] { return AllSee(n0, R("before")); }, absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(100));  // n2's join digests and fetches are over

  // n2's server goes down: n0's pushes to it fail and those deltas are lost for it.
  n2->StopServer();
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(n0->table->AddLocal(R("missed/" + std::to_string(i))).ok());
  ASSERT_TRUE(n0->table->RemoveLocal(R("before")).ok());
  ASSERT_TRUE(WaitUntil([&] { return n1->sink.Count("n0") == 20; }, absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(100));  // the pushes to n2 have failed by now
  EXPECT_EQ(n2->sink.Count("n0"), 1u);

  // Back on its port, with no further change on n0: only the digest can repair it.
  const absl::Time start = absl::Now();
  ASSERT_TRUE(StartServer(n2, n2->port));
  ASSERT_TRUE(WaitUntil([&] { return n2->sink.Count("n0") == 20; }, absl::Seconds(10)));
  Report("missed deltas repaired by the digest (200 ms period)", absl::Now() - start);
  EXPECT_FALSE(n2->sink.Has("n0", R("before")));
  EXPECT_EQ(n2->table->RemoteRouteSet("n0"), n0->table->LocalRouteSet());
}

TEST_F(RoutesTest, DigestThroughAThirdNodeCarriesAnOriginItNeverPushedTo) {
  Node* n0 = StartNode("n0");
  Node* n1 = StartNode("n1");
  Node* n2 = StartNode("n2");
  ASSERT_TRUE(n0 && n1 && n2);
  // n0 and n2 do not know each other (yet): n0 pushes to n1 only.
  n0->table->PeerAlive("n1", n1->address);
  n1->table->PeerAlive("n0", n0->address);
  n1->table->PeerAlive("n2", n2->address);
  n2->table->PeerAlive("n1", n1->address);
  absl::SleepFor(absl::Milliseconds(100));  // the join digests are over: only periodic ones left
  const absl::Time start = absl::Now();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(n0->table->AddLocal(R("f/" + std::to_string(i))).ok());
  ASSERT_TRUE(WaitUntil([&] { return n2->sink.Count("n0") == 10; }, absl::Seconds(10)));
  Report("routes of n0 reach n2 through n1 by the periodic digest (200 ms)", absl::Now() - start);
  EXPECT_EQ(n2->table->RemoteRouteSet("n0"), n0->table->LocalRouteSet());
}

TEST_F(RoutesTest, DeadDropsNonPersistentRoutesGoneDropsAll) {
  Node* n0 = StartNode("n0");
  Node* n1 = StartNode("n1");
  Node* n2 = StartNode("n2");
  ASSERT_TRUE(n0 && n1 && n2);
  ConnectAll();
  ASSERT_TRUE(n0->table->AddLocal(R("plain")).ok());
  ASSERT_TRUE(n0->table->AddLocal(R("kept", true)).ok());
  ASSERT_TRUE(n0->table->AddLocal(R("group", false, "g")).ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        return AllSee(n0, R("plain")) && AllSee(n0, R("kept", true)) &&
               AllSee(n0, R("group", false, "g"));
      },
      absl::Seconds(5)));

  n0->Kill();
  for (Node* n : {n1, n2}) n->table->PeerDead("n0");
  ASSERT_TRUE(WaitUntil([&] { return n1->sink.Count("n0") == 1 && n2->sink.Count("n0") == 1; },
                        absl::Seconds(5)));
  EXPECT_TRUE(n1->sink.Has("n0", R("kept", true)));
  // A digest between n1 and n2 (every 200 ms) must not bring the dropped routes back.
  absl::SleepFor(absl::Milliseconds(600));
  EXPECT_EQ(n1->sink.Count("n0"), 1u);
  EXPECT_EQ(n2->sink.Count("n0"), 1u);

  n1->table->PeerGone("n0");
  ASSERT_TRUE(WaitUntil([&] { return n1->sink.Count("n0") == 0; }, absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(600));  // n2 still holds "kept" as partial: not offered
  EXPECT_EQ(n1->sink.Count("n0"), 0u);
}

TEST_F(RoutesTest, FalselyDeadPeerGetsItsRoutesBackWhenAliveAgain) {
  Node* n0 = StartNode("n0");
  Node* n1 = StartNode("n1");
  ASSERT_TRUE(n0 && n1);
  ConnectAll();
  ASSERT_TRUE(n0->table->AddLocal(R("plain")).ok());
  ASSERT_TRUE(WaitUntil([&] { return n1->sink.Has("n0", R("plain")); }, absl::Seconds(5)));
  n1->table->PeerDead("n0");
  ASSERT_TRUE(WaitUntil([&] { return !n1->sink.Has("n0", R("plain")); }, absl::Seconds(5)));
  n1->table->PeerAlive("n0", n0->address);
  ASSERT_TRUE(WaitUntil([&] { return n1->sink.Has("n0", R("plain")); }, absl::Seconds(5)));
}

TEST_F(RoutesTest, RestartedNodeReplacesItsOldRoutesEverywhere) {
  Node* n0 = StartNode("n0", absl::Milliseconds(200), /*epoch=*/1);
  Node* n1 = StartNode("n1");
  ASSERT_TRUE(n0 && n1);
  ConnectAll();
  ASSERT_TRUE(n0->table->AddLocal(R("old", true)).ok());
  ASSERT_TRUE(WaitUntil([&] { return n1->sink.Has("n0", R("old", true)); }, absl::Seconds(5)));
  n0->Kill();
  n1->table->PeerDead("n0");

  Node* again = StartNode("n0", absl::Milliseconds(200), /*epoch=*/2);
  ASSERT_NE(again, nullptr);
  ASSERT_TRUE(again->table->AddLocal(R("new")).ok());
  again->table->PeerAlive("n1", n1->address);
  n1->table->PeerAlive("n0", again->address);
  ASSERT_TRUE(WaitUntil([&] { return n1->sink.Has("n0", R("new")); }, absl::Seconds(5)));
  EXPECT_FALSE(n1->sink.Has("n0", R("old", true)));
  EXPECT_EQ(n1->table->RemoteRouteSet("n0"), std::vector<Route>{R("new")});
}

TEST_F(RoutesTest, ThousandFiltersReachAJoiningNode) {
  Node* n0 = StartNode("n0", absl::Seconds(30));
  ASSERT_NE(n0, nullptr);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(n0->table->AddLocal(R("site/" + std::to_string(i) + "/#")).ok());
  }
  Node* n1 = StartNode("n1", absl::Seconds(30));
  ASSERT_NE(n1, nullptr);
  const absl::Time start = absl::Now();
  ConnectAll();
  ASSERT_TRUE(WaitUntil([&] { return n1->sink.Count("n0") == 1000; }, absl::Seconds(10)));
  Report("1,000 filters on 1 node held by a joining node", absl::Now() - start);
  EXPECT_EQ(n1->table->RemoteRouteSet("n0"), n0->table->LocalRouteSet());
}

TEST_F(RoutesTest, HundredThousandFiltersReachAJoiningNode) {
  Node* n0 = StartNode("n0", absl::Seconds(30));
  ASSERT_NE(n0, nullptr);
  for (int i = 0; i < 100000; ++i) {
    ASSERT_TRUE(n0->table->AddLocal(R("site/" + std::to_string(i) + "/+/temp")).ok());
  }
  Node* n1 = StartNode("n1", absl::Seconds(30));
  ASSERT_NE(n1, nullptr);
  const absl::Time start = absl::Now();
  ConnectAll();
  ASSERT_TRUE(WaitUntil([&] { return n1->sink.Count("n0") == 100000; }, absl::Seconds(30)));
  Report("100,000 filters on 1 node held by a joining node", absl::Now() - start);
  EXPECT_EQ(n1->table->remote_route_count(), 100000u);
}

// The wiring the node will do: one server hosting Membership and RouteTable, the membership
// listener feeding OnMemberChange. Probe 100 ms / ack 50 ms / dead 500 ms after suspicion,
// removed 1 s after that.
TEST(RoutesWithMembershipTest, MembershipEventsDriveTheRouteTable) {
  struct Full {
    std::string id;
    std::string address;
    TestSink sink;
    std::unique_ptr<Membership> membership;
    std::unique_ptr<RouteTable> table;
    std::unique_ptr<grpc::Server> server;
    void Kill() {
      if (server != nullptr) server->Shutdown(std::chrono::system_clock::now());
      server.reset();
      if (membership != nullptr) membership->Stop();
      if (table != nullptr) table->Stop();
    }
    ~Full() { Kill(); }
  };
  std::vector<std::unique_ptr<Full>> nodes;
  for (int i = 0; i < 3; ++i) {
    auto n = std::make_unique<Full>();
    n->id = "m" + std::to_string(i);
    MembershipOptions m;
    m.node_id = n->id;
    if (i > 0) m.seeds = {nodes[0]->address};
    m.probe_interval = absl::Milliseconds(100);
    m.probe_timeout = absl::Milliseconds(50);
    m.indirect_probes = 1;
    m.suspect_timeout = absl::Milliseconds(500);
    m.remove_after = absl::Seconds(1);
    m.join_backoff_initial = absl::Milliseconds(50);
    m.join_backoff_max = absl::Milliseconds(400);
    n->membership = std::make_unique<Membership>(std::move(m));
    RouteTableOptions r;
    r.node_id = n->id;
    r.digest_interval = absl::Milliseconds(500);
    r.rpc_timeout = absl::Seconds(1);
    n->table = std::make_unique<RouteTable>(std::move(r), &n->sink);
    n->membership->Subscribe(
        [table = n->table.get()](const MemberInfo& member, MemberChange change) {
          table->OnMemberChange(member, change);
        });
    int port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(n->membership->service());
    builder.RegisterService(n->table->service());
    n->server = builder.BuildAndStart();
    ASSERT_NE(n->server, nullptr);
    ASSERT_NE(port, 0);
    n->address = "127.0.0.1:" + std::to_string(port);
    ASSERT_TRUE(n->table->Start(n->address).ok());
    ASSERT_TRUE(n->membership->Start(n->address).ok());
    nodes.push_back(std::move(n));
  }
  Full* m2 = nodes[2].get();
  ASSERT_TRUE(m2->table->AddLocal(R("plain")).ok());
  ASSERT_TRUE(m2->table->AddLocal(R("kept", true)).ok());
  auto others_hold = [&](size_t n) {
    return nodes[0]->sink.Count("m2") == n && nodes[1]->sink.Count("m2") == n;
  };
  ASSERT_TRUE(WaitUntil([&] { return others_hold(2); }, absl::Seconds(10)));

  const absl::Time killed = absl::Now();
  m2->Kill();
  ASSERT_TRUE(WaitUntil([&] { return others_hold(1); }, absl::Seconds(10)));
  Report("kill -> non-persistent routes dropped (suspect 500 ms)", absl::Now() - killed);
  EXPECT_TRUE(nodes[0]->sink.Has("m2", R("kept", true)));
  ASSERT_TRUE(WaitUntil([&] { return others_hold(0); }, absl::Seconds(10)));
  Report("kill -> all routes dropped (removed 1 s after dead)", absl::Now() - killed);
  for (const auto& n : nodes) EXPECT_EQ(n->sink.errors(), 0) << n->id;
}

}  // namespace
}  // namespace mqtt::cluster
