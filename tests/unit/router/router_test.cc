// Router: the targets of a publish (local sessions, shared-group members, remote nodes), with a
// recording visitor standing in for the delivery path.
#include "node/router/router.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mqtt {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

struct Recorder final : RouteVisitor {
  void ToSession(const SessionTarget& target) override { sessions.push_back(target); }
  void ToNode(uint32_t node, bool durable) override {
    nodes.push_back(node);
    if (durable) durable_nodes.push_back(node);
  }
  std::vector<SessionTarget> sessions;
  std::vector<uint32_t> nodes;
  std::vector<uint32_t> durable_nodes;
};

Message Msg(std::string topic, uint8_t qos, bool retain = false, uint64_t publisher_session = 0) {
  Message m;
  m.topic = std::move(topic);
  m.qos = qos;
  m.retain = retain;
  m.publisher_session_id = publisher_session;
  return m;
}

Subscriber Sub(uint64_t session, uint8_t qos, uint32_t worker = 0, uint32_t subscription_id = 0) {
  Subscriber s;
  s.session_id = session;
  s.worker = worker;
  s.qos = qos;
  s.subscription_id = subscription_id;
  return s;
}

Recorder RouteOf(const Router& router, const Message& message) {
  Recorder r;
  router.Route(message, r);
  return r;
}

TEST(RouterTest, OneCopyPerSessionAtHighestGrantedQosWithAllSubscriptionIds) {
  // [MQTT-3.3.4-3], [MQTT-3.3.4-5]: overlapping subscriptions give one copy here.
  Router router(ShareStrategy::kRoundRobin);
  router.Subscribe("a/+", Sub(7, 0, 1, 11), nullptr);
  router.Subscribe("a/#", Sub(7, 1, 1, 12), nullptr);
  router.Subscribe("a/b", Sub(8, 2, 0), nullptr);
  Recorder r = RouteOf(router, Msg("a/b", 2));
  ASSERT_EQ(r.sessions.size(), 2u);
  EXPECT_EQ(r.sessions[0].session_id, 7u);
  EXPECT_EQ(r.sessions[0].worker, 1u);
  EXPECT_EQ(r.sessions[0].qos, 1);  // min(published 2, granted max(0, 1)) [MQTT-3.8.4-6]
  EXPECT_THAT(r.sessions[0].subscription_ids, UnorderedElementsAre(11u, 12u));
  EXPECT_EQ(r.sessions[1].session_id, 8u);
  EXPECT_EQ(r.sessions[1].qos, 2);
  EXPECT_TRUE(r.nodes.empty());
}

TEST(RouterTest, NoLocalSkipsOnlyThePublishersOwnSubscription) {
  // [MQTT-3.8.3-3]
  Router router(ShareStrategy::kRoundRobin);
  Subscriber no_local = Sub(5, 1);
  no_local.no_local = true;
  router.Subscribe("t", no_local, nullptr);
  router.Subscribe("t", Sub(6, 1), nullptr);
  Recorder own = RouteOf(router, Msg("t", 1, false, /*publisher_session=*/5));
  ASSERT_EQ(own.sessions.size(), 1u);
  EXPECT_EQ(own.sessions[0].session_id, 6u);
  EXPECT_EQ(RouteOf(router, Msg("t", 1, false, 6)).sessions.size(), 2u);
}

TEST(RouterTest, RetainAsPublishedKeepsTheFlagOthersClearIt) {
  // [MQTT-3.3.1-12], [MQTT-3.3.1-13]
  Router router(ShareStrategy::kRoundRobin);
  Subscriber rap = Sub(1, 0);
  rap.retain_as_published = true;
  router.Subscribe("t", rap, nullptr);
  router.Subscribe("t", Sub(2, 0), nullptr);
  Recorder r = RouteOf(router, Msg("t", 0, /*retain=*/true));
  ASSERT_EQ(r.sessions.size(), 2u);
  EXPECT_TRUE(r.sessions[0].retain);
  EXPECT_FALSE(r.sessions[1].retain);
}

TEST(RouterTest, SharedGroupGivesOneMemberPerMessageInTurn) {
  Router router(ShareStrategy::kRoundRobin);
  router.Subscribe("$share/g/s/+", Sub(1, 1), nullptr);
  router.Subscribe("$share/g/s/+", Sub(2, 1), nullptr);
  std::vector<uint64_t> picked;
  for (int i = 0; i < 4; ++i) {
    Recorder r = RouteOf(router, Msg("s/x", 1));
    ASSERT_EQ(r.sessions.size(), 1u);
    EXPECT_NE(r.sessions[0].shared_group, 0u);
    picked.push_back(r.sessions[0].session_id);
  }
  EXPECT_EQ(picked[0], picked[2]);
  EXPECT_EQ(picked[1], picked[3]);
  EXPECT_NE(picked[0], picked[1]);
}

TEST(RouterTest, RedistributeAvoidsTheMemberThatDidNotAcknowledge) {
  Router router(ShareStrategy::kSticky);
  router.Subscribe("$share/g/t", Sub(1, 1), nullptr);
  router.Subscribe("$share/g/t", Sub(2, 2), nullptr);
  Message m = Msg("t", 1);
  Recorder r = RouteOf(router, m);
  ASSERT_EQ(r.sessions.size(), 1u);
  const uint64_t first = r.sessions[0].session_id;
  std::optional<SessionTarget> other = router.Redistribute(m, r.sessions[0].shared_group, first);
  ASSERT_TRUE(other.has_value());
  EXPECT_NE(other->session_id, first);
  router.Unsubscribe("$share/g/t", other->session_id);
  EXPECT_FALSE(router.Redistribute(m, r.sessions[0].shared_group, first).has_value());
}

TEST(RouterTest, RemoteNodeGetsOneCopyWhateverItsNumberOfMatchingRoutes) {
  Router router(ShareStrategy::kRoundRobin);
  EXPECT_TRUE(router.AddNodeRoute("a/#", 3));
  EXPECT_TRUE(router.AddNodeRoute("a/+", 3));
  EXPECT_TRUE(router.AddNodeRoute("a/b", 9));
  EXPECT_FALSE(router.AddNodeRoute("a/b", 9));  // one entry per (filter, node)
  router.Subscribe("a/b", Sub(4, 1), nullptr);
  Recorder r = RouteOf(router, Msg("a/b", 1));
  EXPECT_THAT(r.nodes, ElementsAre(3u, 9u));
  ASSERT_EQ(r.sessions.size(), 1u);  // routes are not sessions
  EXPECT_EQ(r.sessions[0].session_id, 4u);
  EXPECT_THAT(RouteOf(router, Msg("a/c", 1)).nodes, ElementsAre(3u));
  EXPECT_TRUE(router.RemoveNodeRoute("a/#", 3));
  EXPECT_TRUE(router.RemoveNodeRoute("a/+", 3));
  EXPECT_THAT(RouteOf(router, Msg("a/c", 1)).nodes, ElementsAre());
  EXPECT_FALSE(router.RemoveNodeRoute("a/#", 3));
}

TEST(RouterTest, RemoteNodeIsDurableWhenAnyOfItsMatchingRoutesIs) {
  Router router(ShareStrategy::kRoundRobin);
  EXPECT_TRUE(router.AddNodeRoute("a/#", 3, /*durable=*/false));
  EXPECT_TRUE(router.AddNodeRoute("a/b", 3, /*durable=*/true));
  EXPECT_TRUE(router.AddNodeRoute("a/b", 3, /*durable=*/false));  // another entry
  EXPECT_TRUE(router.AddNodeRoute("a/+", 5, /*durable=*/false));
  Recorder r = RouteOf(router, Msg("a/b", 1));
  EXPECT_THAT(r.nodes, ElementsAre(3u, 5u));  // still one copy per node
  EXPECT_THAT(r.durable_nodes, ElementsAre(3u));
  EXPECT_THAT(RouteOf(router, Msg("a/c", 1)).durable_nodes, ElementsAre());
  EXPECT_TRUE(router.RemoveNodeRoute("a/b", 3, /*durable=*/true));
  EXPECT_THAT(RouteOf(router, Msg("a/b", 1)).durable_nodes, ElementsAre());
  EXPECT_THAT(RouteOf(router, Msg("a/b", 1)).nodes, ElementsAre(3u, 5u));
}

TEST(RouterTest, VisitorMayRouteAgainFromInsideAVisit) {
  // The per-thread scratch is moved out during a visit: a nested Route sees its own.
  Router router(ShareStrategy::kRoundRobin);
  router.Subscribe("outer", Sub(1, 0), nullptr);
  router.Subscribe("outer", Sub(2, 0), nullptr);
  router.Subscribe("inner", Sub(3, 0), nullptr);
  struct Nested final : RouteVisitor {
    const Router* router;
    std::vector<uint64_t> seen;
    void ToSession(const SessionTarget& t) override {
      seen.push_back(t.session_id);
      if (t.session_id == 1) {
        Recorder inner;
        router->Route(Msg("inner", 0), inner);
        for (const SessionTarget& s : inner.sessions) seen.push_back(s.session_id);
      }
    }
    void ToNode(uint32_t, bool) override {}
  } nested;
  nested.router = &router;
  router.Route(Msg("outer", 0), nested);
  EXPECT_THAT(nested.seen, ElementsAre(1u, 3u, 2u));
}

TEST(RouterTest, LocalRouteListenerSeesPlainSubscriptionsWithTheirPersistence) {
  Router router(ShareStrategy::kRoundRobin);
  std::vector<std::string> seen;
  router.SetLocalRouteListener([&seen](std::string_view filter, bool persistent, bool added) {
    seen.push_back(std::string(added ? "+" : "-") + std::string(filter) + (persistent ? " p" : ""));
  });
  Subscriber durable = Sub(1, 1);
  durable.durable_client_id = std::make_shared<const std::string>("c1");
  router.Subscribe("a/#", durable, nullptr);
  router.Subscribe("a/#", Sub(2, 0), nullptr);
  router.Subscribe("a/#", Sub(2, 1), nullptr);           // options replaced: not a new subscription
  router.Subscribe("$share/g/a/#", Sub(3, 1), nullptr);  // shared: not reported (yet)
  router.AddNodeRoute("a/#", 9);                         // a remote route: not local
  router.Unsubscribe("a/#", 1);
  router.Unsubscribe("a/#", 1);  // gone already
  router.Unsubscribe("a/#", 2);
  EXPECT_THAT(seen, ElementsAre("+a/# p", "+a/#", "-a/# p", "-a/#"));
  router.SetLocalRouteListener(nullptr);
  router.Subscribe("b", Sub(4, 0), nullptr);
  EXPECT_EQ(seen.size(), 4u);
}

TEST(RouterTest, RetainedMessagesMatchByFilterAndEmptyPayloadDeletes) {
  Router router(ShareStrategy::kRoundRobin);
  auto retained = std::make_shared<Message>(Msg("r/1", 1, true));
  retained->payload = "x";
  router.SetRetained(retained);
  EXPECT_EQ(router.retained_count(), 1u);
  ASSERT_EQ(router.RetainedMatching("r/#").size(), 1u);
  EXPECT_TRUE(router.RetainedMatching("q/#").empty());
  router.SetRetained(std::make_shared<Message>(Msg("r/1", 0, true)));  // [MQTT-3.3.1-10]
  EXPECT_EQ(router.retained_count(), 0u);
}

}  // namespace
}  // namespace mqtt
