// SPDX-License-Identifier: Apache-2.0
// RouterLink + ClusterNode: two nodes in one process, each with its own Router, real gRPC on
// 127.0.0.1. A local subscription on one node becomes a route of kind "node" in the other's
// Router, a shared-group member makes that node a member of the group there; unsubscribing and
// leaving take them away again.
#include "cluster/router_link.h"

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cluster/drain.h"
#include "cluster/node.h"
#include "gtest/gtest.h"
#include "node/protocol/message.h"

namespace mqtt::cluster {
namespace {

struct NodeTargets final : RouteVisitor {
  void ToSession(const SessionTarget&) override {}
  void ToNode(uint32_t node, bool) override { nodes.push_back(node); }
  void ToNodeShared(uint32_t node, bool durable, std::string_view group,
                    std::string_view filter) override {
    shares.push_back(std::to_string(node) + (durable ? " durable " : " ") + std::string(group) +
                     " " + std::string(filter));
  }
  std::vector<uint32_t> nodes;
  std::vector<std::string> shares;  // "node [durable ]group filter"
};

NodeTargets TargetsOf(const Router& router, const std::string& topic) {
  Message message;
  message.topic = topic;
  NodeTargets targets;
  router.Route(message, targets);
  return targets;
}

std::vector<uint32_t> NodesFor(const Router& router, const std::string& topic) {
  return TargetsOf(router, topic).nodes;
}

std::vector<std::string> SharesFor(const Router& router, const std::string& topic) {
  return TargetsOf(router, topic).shares;
}

NodeParts PartsOf(Router* router) {
  NodeParts parts;
  parts.router = router;
  return parts;
}

// Polls `condition` until it holds or `timeout` passes.
template <typename Condition>
bool WaitFor(Condition condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

ClusterOptions Options(const std::string& id, std::vector<std::string> seeds) {
  ClusterOptions o;
  o.node_id = id;
  o.listen = "127.0.0.1:0";
  o.seeds = std::move(seeds);
  o.probe_interval = absl::Milliseconds(100);
  o.suspect_timeout = absl::Milliseconds(500);
  return o;
}

TEST(RouterLinkTest, LocalSubscriptionBecomesARemoteRouteOnThePeerAndGoesAway) {
  Router router_a(ShareStrategy::kRoundRobin);
  Router router_b(ShareStrategy::kRoundRobin);
  auto a = ClusterNode::Start(Options("link-a", {}), PartsOf(&router_a));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE((*a)->Join().ok());
  auto b = ClusterNode::Start(Options("link-b", {(*a)->listen_address()}), PartsOf(&router_b));
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE((*b)->Join().ok());
  const uint32_t a_on_b = (*b)->routes()->NodeIndex("link-a");

  Subscriber sub;
  sub.session_id = 1;
  sub.qos = 1;
  sub.durable_client_id = std::make_shared<const std::string>("c1");
  router_a.Subscribe("sensors/+/temp", sub, nullptr);
  ASSERT_TRUE(WaitFor([&] { return NodesFor(router_b, "sensors/7/temp").size() == 1; },
                      std::chrono::seconds(10)));
  EXPECT_EQ(NodesFor(router_b, "sensors/7/temp")[0], a_on_b);
  EXPECT_TRUE(NodesFor(router_b, "sensors/7/humidity").empty());
  EXPECT_TRUE(NodesFor(router_a, "sensors/7/temp").empty());  // its own route is not a node

  router_a.Unsubscribe("sensors/+/temp", 1);
  ASSERT_TRUE(WaitFor([&] { return NodesFor(router_b, "sensors/7/temp").empty(); },
                      std::chrono::seconds(10)));

  Subscriber clean = sub;
  clean.session_id = 2;
  clean.durable_client_id = nullptr;
  router_a.Subscribe("again/#", clean, nullptr);
  router_a.Subscribe("kept/#", sub, nullptr);
  ASSERT_TRUE(WaitFor(
      [&] {
        return NodesFor(router_b, "again/x").size() == 1 &&
               NodesFor(router_b, "kept/x").size() == 1;
      },
      std::chrono::seconds(10)));
  // Leaves (as at SIGTERM): like a dead node, its non-persistent routes go everywhere, those of
  // its persistent sessions stay until it is removed, so messages for them wait for it.
  (*a)->Shutdown(absl::Seconds(2));
  EXPECT_TRUE(
      WaitFor([&] { return NodesFor(router_b, "again/x").empty(); }, std::chrono::seconds(10)));
  EXPECT_EQ(NodesFor(router_b, "kept/x").size(), 1u);
  router_a.Subscribe("after/leave", sub, nullptr);  // the link is detached: nothing is called
  (*b)->Shutdown(absl::Seconds(1));
}

TEST(RouterLinkTest, SharedMembersMakeTheirNodeOneMemberOfTheGroupOnThePeer) {
  Router router_a(ShareStrategy::kRoundRobin);
  Router router_b(ShareStrategy::kRoundRobin);
  auto a = ClusterNode::Start(Options("share-a", {}), PartsOf(&router_a));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE((*a)->Join().ok());
  auto b = ClusterNode::Start(Options("share-b", {(*a)->listen_address()}), PartsOf(&router_b));
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE((*b)->Join().ok());
  const std::string a_on_b = std::to_string((*b)->routes()->NodeIndex("share-a"));
  auto shares_on_b_are = [&](std::vector<std::string> want) {
    return WaitFor([&] { return SharesFor(router_b, "jobs/1") == want; }, std::chrono::seconds(10));
  };

  Subscriber plain;
  plain.session_id = 1;
  plain.qos = 1;
  router_a.Subscribe("$share/workers/jobs/+", plain, nullptr);
  ASSERT_TRUE(shares_on_b_are({a_on_b + " workers jobs/+"}));
  EXPECT_TRUE(NodesFor(router_b, "jobs/1").empty());  // a member is not a plain route
  Subscriber durable = plain;
  durable.session_id = 2;
  durable.durable_client_id = std::make_shared<const std::string>("c2");
  router_a.Subscribe("$share/workers/jobs/+", durable, nullptr);  // still one member, durable
  ASSERT_TRUE(shares_on_b_are({a_on_b + " durable workers jobs/+"}));
  router_a.Unsubscribe("$share/workers/jobs/+", 2);
  ASSERT_TRUE(shares_on_b_are({a_on_b + " workers jobs/+"}));
  router_a.Unsubscribe("$share/workers/jobs/+", 1);
  ASSERT_TRUE(shares_on_b_are({}));
  EXPECT_EQ(router_b.subscription_count(), 0u);  // the group left b's trie too

  router_a.Subscribe("$queue/jobs/#", plain, nullptr);
  ASSERT_TRUE(shares_on_b_are({a_on_b + " $queue jobs/#"}));
  (*a)->Shutdown(absl::Seconds(2));  // leaves: its members go everywhere
  EXPECT_TRUE(shares_on_b_are({}));
  (*b)->Shutdown(absl::Seconds(1));
}

// --join-dns: every address the name resolves to is a seed, with the port kept; a name that
// does not resolve (yet) gives no seed rather than an error.
TEST(ResolveSeedsTest, EveryAddressOfTheNameWithItsPort) {
  std::vector<std::string> seeds = ResolveSeeds("localhost:7946");
  ASSERT_FALSE(seeds.empty());
  for (const std::string& seed : seeds) {
    EXPECT_TRUE(seed == "127.0.0.1:7946" || seed == "[::1]:7946") << seed;
  }
  EXPECT_TRUE(ResolveSeeds("no-such-host.invalid:7946").empty());
  EXPECT_TRUE(ResolveSeeds("no-port").empty());
}

// libraft 0.15 dials numeric IPv4 only: an advertised name becomes its IPv4 address, port kept.
TEST(RaftDialableAddressTest, NameBecomesItsIpv4AddressWithThePort) {
  EXPECT_EQ(RaftDialableAddress("10.1.2.3:7947").value(), "10.1.2.3:7947");
  EXPECT_EQ(RaftDialableAddress("localhost:7947").value(), "127.0.0.1:7947");
  EXPECT_EQ(RaftDialableAddress("no-such-host.invalid:7947").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(RaftDialableAddress("[::1]:7947").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(RaftDialableAddress("no-port").status().code(), absl::StatusCode::kInvalidArgument);
}

// A draining node whose relay stubs keep getting messages (steady traffic on the moved sessions'
// topics: their routes lead here until the stubs end) ends them `settle` after the last Finish,
// not at the drain's deadline (tests/helm/test_scale.py and the loss checker saw drains wait out
// their whole timeout when the stubs had to be quiet first).
class BusyRelays : public SessionSource {
 public:
  void ExportSession(const std::string&, uint64_t, const std::string&, bool, Exported) override {}
  void FinishExport(const std::string&, uint64_t) override {}
  void AdoptSession(const std::string&, const std::string&, Adopted) override {}
  void CollectSession(const std::string&, const std::string&, Adopted) override {}
  std::future<Handovers> HandoverState() override {
    std::promise<Handovers> state;
    // The exports finished when this object was made; relays go on (they no longer count).
    state.set_value(Handovers{0, ended_ ? 0u : 3u, last_finish_ms_});
    return state.get_future();
  }
  void EndRelays() override { ended_ = true; }
  bool ended() const { return ended_; }

 private:
  std::atomic<bool> ended_{false};
  const int64_t last_finish_ms_ = MonotonicMs();
};

TEST(DrainerTest, BusyRelaysEndSettleAfterTheLastFinishNotAtTheDeadline) {
  MembershipOptions m;
  m.node_id = "a";
  Membership membership(std::move(m));
  BusyRelays source;
  DrainOptions options;
  options.node_id = "a";
  options.settle = absl::Milliseconds(300);
  Drainer drainer(
      options, &membership, nullptr, nullptr, &source,
      [](SessionFilter) {
        std::promise<std::vector<SessionInfo>> none;
        none.set_value({});
        return none.get_future();
      },
      /*registry=*/nullptr);
  const absl::Time start = absl::Now();
  drainer.Run(start + absl::Seconds(30));
  EXPECT_TRUE(source.ended());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
}

}  // namespace
}  // namespace mqtt::cluster
