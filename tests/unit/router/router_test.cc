// SPDX-License-Identifier: Apache-2.0
// Router: the targets of a publish (local sessions, shared-group members local or remote, remote
// nodes), with a recording visitor standing in for the delivery path.
#include "node/router/router.h"

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mqtt {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

// A node chosen as a shared group's member.
struct NodeShare {
  uint32_t node;
  bool durable;
  std::string group;
  std::string filter;
  friend bool operator==(const NodeShare&, const NodeShare&) = default;
};

struct Recorder final : RouteVisitor {
  void ToSession(const SessionTarget& target) override { sessions.push_back(target); }
  void ToNode(uint32_t node, bool durable) override {
    nodes.push_back(node);
    if (durable) durable_nodes.push_back(node);
  }
  void ToNodeShared(uint32_t node, bool durable, std::string_view group,
                    std::string_view filter) override {
    node_shares.push_back({node, durable, std::string(group), std::string(filter)});
  }
  std::vector<SessionTarget> sessions;
  std::vector<uint32_t> nodes;
  std::vector<uint32_t> durable_nodes;
  std::vector<NodeShare> node_shares;
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
    void ToNodeShared(uint32_t, bool, std::string_view, std::string_view) override {}
  } nested;
  nested.router = &router;
  router.Route(Msg("outer", 0), nested);
  EXPECT_THAT(nested.seen, ElementsAre(1u, 3u, 2u));
}

TEST(RouterTest, LocalRouteListenerSeesSubscriptionsAndGroupMembersWithTheirPersistence) {
  Router router(ShareStrategy::kRoundRobin);
  std::vector<std::string> seen;
  router.SetLocalRouteListener(
      [&seen](std::string_view filter, std::string_view group, bool persistent, bool added) {
        std::string line = std::string(added ? "+" : "-") + std::string(filter);
        if (!group.empty()) line += " g=" + std::string(group);
        seen.push_back(line + (persistent ? " p" : ""));
      });
  Subscriber durable = Sub(1, 1);
  durable.durable_client_id = std::make_shared<const std::string>("c1");
  router.Subscribe("a/#", durable, nullptr);
  router.Subscribe("a/#", Sub(2, 0), nullptr);
  router.Subscribe("a/#", Sub(2, 1), nullptr);  // options replaced: not a new subscription
  router.Subscribe("$share/g/a/#", Sub(3, 1), nullptr);
  router.Subscribe("$share/g/a/#", Sub(3, 2), nullptr);  // an update of the same member
  router.Subscribe("$share/g/a/#", durable, nullptr);    // a second member: reported too
  router.Subscribe("$queue/q", Sub(4, 1), nullptr);
  router.AddNodeRoute("a/#", 9);                   // a remote route: not local
  router.SetNodeGroupMember("g", "a/#", 9, true);  // a remote member: not local
  router.Unsubscribe("a/#", 1);
  router.Unsubscribe("a/#", 1);  // gone already
  router.Unsubscribe("a/#", 2);
  router.Unsubscribe("$share/g/a/#", 3);
  router.Unsubscribe("$share/g/a/#", 3);  // gone already
  router.Unsubscribe("$queue/q", 4);
  EXPECT_THAT(seen, ElementsAre("+a/# p", "+a/#", "+a/# g=g", "+a/# g=g p", "+q g=$queue", "-a/# p",
                                "-a/#", "-a/# g=g", "-q g=$queue"));
  router.SetLocalRouteListener(nullptr);
  router.Subscribe("b", Sub(5, 0), nullptr);
  EXPECT_EQ(seen.size(), 9u);
}

// A local member whose client is connected (shared groups prefer online members).
std::shared_ptr<const std::atomic<bool>> Online() {
  return std::make_shared<const std::atomic<bool>>(true);
}

TEST(RouterTest, GroupWithOnlyNodeMembersStillMatchesAndGoesToOneNode) {
  Router router(ShareStrategy::kRoundRobin);
  EXPECT_TRUE(router.SetNodeGroupMember("g", "s/+", 3, /*durable=*/false));
  EXPECT_FALSE(router.SetNodeGroupMember("g", "s/+", 3, /*durable=*/true));  // an update
  EXPECT_EQ(router.subscription_count(), 1u);  // the group's trie entry
  Recorder r = RouteOf(router, Msg("s/x", 1));
  EXPECT_TRUE(r.sessions.empty());
  EXPECT_TRUE(r.nodes.empty());  // a group member is not a plain route
  EXPECT_THAT(r.node_shares, ElementsAre(NodeShare{3, true, "g", "s/+"}));
  EXPECT_TRUE(RouteOf(router, Msg("other", 1)).node_shares.empty());
  EXPECT_TRUE(router.RemoveNodeGroupMember("g", "s/+", 3));
  EXPECT_FALSE(router.RemoveNodeGroupMember("g", "s/+", 3));
  EXPECT_EQ(router.subscription_count(), 0u);
  EXPECT_TRUE(RouteOf(router, Msg("s/x", 1)).node_shares.empty());
}

TEST(RouterTest, RoundRobinSpansALocalMemberAndTwoNodes) {
  // 5.0 section 4.8.2: each message to one member only, here cluster-wide.
  Router router(ShareStrategy::kRoundRobin);
  router.Subscribe("$share/g/s/#", Sub(1, 1), Online());
  router.SetNodeGroupMember("g", "s/#", 3, false);
  router.SetNodeGroupMember("g", "s/#", 5, false);
  router.AddNodeRoute("s/#", 5);  // a plain route of node 5 too: its own copy
  std::map<std::string, int> picks;
  for (int i = 0; i < 6; ++i) {
    Recorder r = RouteOf(router, Msg("s/x", 1));
    ASSERT_EQ(r.sessions.size() + r.node_shares.size(), 1u) << "message " << i;
    if (!r.sessions.empty()) ++picks["session 1"];
    if (!r.node_shares.empty()) ++picks["node " + std::to_string(r.node_shares[0].node)];
    EXPECT_THAT(r.nodes, ElementsAre(5u));
  }
  EXPECT_THAT(picks, ElementsAre(std::pair<const std::string, int>("node 3", 2),
                                 std::pair<const std::string, int>("node 5", 2),
                                 std::pair<const std::string, int>("session 1", 2)));
}

TEST(RouterTest, ADeadNodesMemberIsPassedOverWhileAnotherIsOnline) {
  Router router(ShareStrategy::kRoundRobin);
  auto node_alive = std::make_shared<std::atomic<bool>>(true);
  router.Subscribe("$share/g/s/#", Sub(1, 1), Online());
  router.SetNodeGroupMember("g", "s/#", 3, /*durable=*/true, node_alive);
  node_alive->store(false);  // node 3 is dead; its persistent member stays
  for (int i = 0; i < 4; ++i) {
    Recorder r = RouteOf(router, Msg("s/x", 1));
    EXPECT_TRUE(r.node_shares.empty()) << "message " << i << " went to the dead node";
    EXPECT_EQ(r.sessions.size(), 1u);
  }
  router.Unsubscribe("$share/g/s/#", 1);  // only the dead node's member is left: it queues
  EXPECT_THAT(RouteOf(router, Msg("s/x", 1)).node_shares,
              ElementsAre(NodeShare{3, true, "g", "s/#"}));
  node_alive->store(true);
  EXPECT_EQ(RouteOf(router, Msg("s/x", 1)).node_shares.size(), 1u);
}

TEST(RouterTest, PreferLocalTakesAnOnlineLocalMemberElseANode) {
  Router router(ShareStrategy::kRoundRobin);
  router.set_prefer_local_members(true);
  auto online = std::make_shared<std::atomic<bool>>(true);
  router.SetNodeGroupMember("g", "t", 3, false);
  router.Subscribe("$share/g/t", Sub(1, 1), online);
  router.SetNodeGroupMember("g", "t", 5, false);
  for (int i = 0; i < 4; ++i) {
    Recorder r = RouteOf(router, Msg("t", 1));
    ASSERT_EQ(r.sessions.size(), 1u);
    EXPECT_EQ(r.sessions[0].session_id, 1u);
    EXPECT_TRUE(r.node_shares.empty());
  }
  *online = false;  // its client went away: the nodes take over
  std::vector<uint32_t> nodes;
  for (int i = 0; i < 4; ++i) {
    Recorder r = RouteOf(router, Msg("t", 1));
    EXPECT_TRUE(r.sessions.empty());
    ASSERT_EQ(r.node_shares.size(), 1u);
    nodes.push_back(r.node_shares[0].node);
  }
  EXPECT_THAT(nodes, ::testing::IsSupersetOf({3u, 5u}));
  router.set_prefer_local_members(false);
  *online = true;
  int local = 0;
  for (int i = 0; i < 6; ++i)
    local += static_cast<int>(RouteOf(router, Msg("t", 1)).sessions.size());
  EXPECT_EQ(local, 2);  // an even spread again
}

TEST(RouterTest, RouteToGroupPicksALocalMemberOnly) {
  Router router(ShareStrategy::kRoundRobin);
  router.Subscribe("$share/g/t/#", Sub(1, 1, 2, 7), Online());
  router.Subscribe("$share/g/t/#", Sub(2, 0), Online());
  router.Subscribe("t/#", Sub(3, 1), nullptr);      // plain: never for a group's copy
  router.SetNodeGroupMember("g", "t/#", 4, false);  // a node: only when no local member
  std::vector<uint64_t> picked;
  for (int i = 0; i < 4; ++i) {
    Recorder r;
    EXPECT_TRUE(router.RouteToGroup(Msg("t/x", 1), "g", "t/#", /*may_pass_on=*/true, r));
    ASSERT_EQ(r.sessions.size(), 1u);
    EXPECT_TRUE(r.node_shares.empty());
    EXPECT_NE(r.sessions[0].shared_group, 0u);  // so that Redistribute can find it again
    picked.push_back(r.sessions[0].session_id);
    if (picked.back() == 1) {
      EXPECT_EQ(r.sessions[0].worker, 2u);
      EXPECT_THAT(r.sessions[0].subscription_ids, ElementsAre(7u));
    } else {
      EXPECT_EQ(r.sessions[0].qos, 0);  // the member's granted QoS [MQTT-4.8.2-3]
    }
  }
  EXPECT_THAT(picked, ::testing::UnorderedElementsAre(1u, 1u, 2u, 2u));
  Recorder unknown;
  EXPECT_FALSE(router.RouteToGroup(Msg("t/x", 1), "h", "t/#", true, unknown));
  EXPECT_FALSE(router.RouteToGroup(Msg("t/x", 1), "g", "t/+", true, unknown));
  EXPECT_TRUE(unknown.sessions.empty());
}

TEST(RouterTest, RouteToGroupWithoutALocalMemberPassesOnOnceOrQueuesForAnOfflineOne) {
  Router router(ShareStrategy::kRoundRobin);
  router.SetNodeGroupMember("g", "t", 4, true);
  Recorder passed;
  EXPECT_TRUE(router.RouteToGroup(Msg("t", 1), "g", "t", /*may_pass_on=*/true, passed));
  EXPECT_THAT(passed.node_shares, ElementsAre(NodeShare{4, true, "g", "t"}));
  Recorder dropped;  // passed on once already: no second hop
  EXPECT_FALSE(router.RouteToGroup(Msg("t", 1), "g", "t", /*may_pass_on=*/false, dropped));
  EXPECT_TRUE(dropped.node_shares.empty());
  // An offline local member: an online node member first, the offline one when it cannot.
  router.Subscribe("$share/g/t", Sub(1, 1), nullptr);
  Recorder r;
  EXPECT_TRUE(router.RouteToGroup(Msg("t", 1), "g", "t", true, r));
  EXPECT_EQ(r.node_shares.size(), 1u);
  Recorder queued;
  EXPECT_TRUE(router.RouteToGroup(Msg("t", 1), "g", "t", false, queued));
  ASSERT_EQ(queued.sessions.size(), 1u);
  EXPECT_EQ(queued.sessions[0].session_id, 1u);
}

TEST(RouterTest, RouteLocalGivesPlainSubscriptionsOnly) {
  Router router(ShareStrategy::kRoundRobin);
  router.Subscribe("t", Sub(1, 1), nullptr);
  router.Subscribe("$share/g/t", Sub(2, 1), Online());
  router.SetNodeGroupMember("g", "t", 4, false);
  router.AddNodeRoute("t", 5);
  Recorder r;
  router.RouteLocal(Msg("t", 1), r);
  ASSERT_EQ(r.sessions.size(), 1u);
  EXPECT_EQ(r.sessions[0].session_id, 1u);
  EXPECT_TRUE(r.nodes.empty());
  EXPECT_TRUE(r.node_shares.empty());
}

TEST(RouterTest, RedistributeStaysOnThisNode) {
  Router router(ShareStrategy::kRoundRobin);
  router.Subscribe("$share/g/t", Sub(1, 1), Online());
  router.SetNodeGroupMember("g", "t", 4, false);
  Recorder r;
  ASSERT_TRUE(router.RouteToGroup(Msg("t", 1), "g", "t", false, r));
  ASSERT_EQ(r.sessions.size(), 1u);
  EXPECT_FALSE(router.Redistribute(Msg("t", 1), r.sessions[0].shared_group, 1).has_value());
  router.Subscribe("$share/g/t", Sub(2, 1), nullptr);
  std::optional<SessionTarget> other =
      router.Redistribute(Msg("t", 1), r.sessions[0].shared_group, 1);
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->session_id, 2u);
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

MessagePtr RetainedMsg(std::string topic, std::string payload) {
  auto m = std::make_shared<Message>(Msg(std::move(topic), 0, true));
  m->payload = std::move(payload);
  return m;
}

Recorder RouteRetained(const Router& router, const MessagePtr& message, uint64_t retained_seq) {
  Recorder r;
  router.Route(*message, r, retained_seq);
  return r;
}

// A retained publish whose SetRetained ran before a SUBSCRIBE took its retained messages, but
// whose Route runs after (another worker): the subscription got it from the store and is not
// given it live as well [MQTT-3.3.1-6].
TEST(RouterTest, RetainedPublishSetBeforeTheSubscribeIsNotRoutedToIt) {
  Router router(ShareStrategy::kRoundRobin);
  MessagePtr m = RetainedMsg("r/1", "x");
  const uint64_t seq = router.SetRetained(m);
  Router::RetainedSnapshot got;
  router.Subscribe("r/+", Sub(7, 0), nullptr, &got);
  ASSERT_EQ(got.messages.size(), 1u);
  EXPECT_EQ(got.messages[0], m);
  EXPECT_TRUE(RouteRetained(router, m, seq).sessions.empty());
}

// Set after the SUBSCRIBE took its retained messages: not among them, so it goes live.
TEST(RouterTest, RetainedPublishSetAfterTheSubscribeIsRoutedToIt) {
  Router router(ShareStrategy::kRoundRobin);
  router.SetRetained(RetainedMsg("r/1", "old"));
  Router::RetainedSnapshot got;
  router.Subscribe("r/+", Sub(7, 0), nullptr, &got);
  ASSERT_EQ(got.messages.size(), 1u);
  MessagePtr m = RetainedMsg("r/1", "new");
  const uint64_t seq = router.SetRetained(m);
  Recorder r = RouteRetained(router, m, seq);
  ASSERT_EQ(r.sessions.size(), 1u);
  EXPECT_EQ(r.sessions[0].session_id, 7u);
}

// Only the subscription that took the retained messages is skipped: the session's older
// subscription, a subscription that took none (Retain Handling 2, a restored session) and a
// message that is not a retained publish made here (sequence 0) go as before.
TEST(RouterTest, OnlyTheSubscriptionThatTookTheRetainedMessagesIsSkipped) {
  Router router(ShareStrategy::kRoundRobin);
  router.Subscribe("r/#", Sub(7, 1), nullptr);
  router.Subscribe("r/1", Sub(8, 0), nullptr);
  MessagePtr m = RetainedMsg("r/1", "x");
  const uint64_t seq = router.SetRetained(m);
  Router::RetainedSnapshot got;
  router.Subscribe("r/+", Sub(7, 0), nullptr, &got);  // session 7's second filter
  router.Subscribe("+/1", Sub(9, 0), nullptr, &got);
  EXPECT_EQ(got.messages.size(), 2u);
  Recorder r = RouteRetained(router, m, seq);
  ASSERT_EQ(r.sessions.size(), 2u);
  EXPECT_EQ(r.sessions[0].session_id, 7u);  // through r/#, at its QoS
  EXPECT_EQ(r.sessions[0].qos, 0);          // min(published 0, granted 1)
  EXPECT_EQ(r.sessions[1].session_id, 8u);
  EXPECT_EQ(RouteRetained(router, m, 0).sessions.size(), 3u);
}

// The sequence orders every set, deletes included: a delete made before the SUBSCRIBE is not
// routed to it either (it did not see the message, and the delete came first).
TEST(RouterTest, RetainedSequenceCountsDeletes) {
  Router router(ShareStrategy::kRoundRobin);
  const uint64_t first = router.SetRetained(RetainedMsg("r/1", "x"));
  MessagePtr deleted = RetainedMsg("r/1", "");
  const uint64_t second = router.SetRetained(deleted);
  EXPECT_GT(second, first);
  Router::RetainedSnapshot got;
  router.Subscribe("r/1", Sub(7, 0), nullptr, &got);
  EXPECT_TRUE(got.messages.empty());
  EXPECT_TRUE(RouteRetained(router, deleted, second).sessions.empty());
}

// Shared subscriptions get no retained messages (5.0 section 4.8.2): the argument is ignored.
TEST(RouterTest, SharedSubscriptionTakesNoRetainedMessages) {
  Router router(ShareStrategy::kRoundRobin);
  MessagePtr m = RetainedMsg("r/1", "x");
  const uint64_t seq = router.SetRetained(m);
  Router::RetainedSnapshot got;
  auto online = std::make_shared<std::atomic<bool>>(true);
  router.Subscribe("$share/g/r/1", Sub(7, 0), online, &got);
  EXPECT_TRUE(got.messages.empty());
  EXPECT_EQ(RouteRetained(router, m, seq).sessions.size(), 1u);
}

// What a SUBSCRIBE took and sends only later (the client reads slowly): the same message while
// its topic was not set again; nothing once a publish routed here replaced it (the subscription
// got that one live) or deleted it; the current one when another node's copy replaced it.
TEST(RouterTest, RefreshRetainedSendsWhatTheSubscriptionHasNotGotLive) {
  Router router(ShareStrategy::kRoundRobin);
  MessagePtr a = RetainedMsg("r/a", "1");
  MessagePtr b = RetainedMsg("r/b", "1");
  MessagePtr c = RetainedMsg("r/c", "1");
  MessagePtr d = RetainedMsg("r/d", "1");
  for (const MessagePtr& m : {a, b, c, d}) router.SetRetained(m);
  Router::RetainedSnapshot got;
  router.Subscribe("r/+", Sub(7, 0), nullptr, &got);
  ASSERT_EQ(got.messages.size(), 4u);
  router.SetRetained(RetainedMsg("r/b", "2"));  // published here: routed to session 7 live
  router.SetRetained(RetainedMsg("r/c", ""));   // deleted
  MessagePtr d2 = RetainedMsg("r/d", "2");
  router.SetRetained(d2, /*routed_here=*/false);  // replicated from another node
  std::vector<MessagePtr> messages = {a, b, c, d};
  router.RefreshRetained(got.seq, absl::MakeSpan(messages));
  EXPECT_EQ(messages[0], a);
  EXPECT_EQ(messages[1], nullptr);
  EXPECT_EQ(messages[2], nullptr);
  EXPECT_EQ(messages[3], d2);
}

// A retained publish of another node reaches this one twice: its replicated copy (into the
// store) and the forwarded live copy (RouteLocal), in either order. A SUBSCRIBE made after the
// copy was stored got it from the store and is skipped; one made before gets it live.
TEST(RouterTest, ForwardedRetainedPublishSkipsSubscriptionsThatGotItsReplicatedCopy) {
  Router router(ShareStrategy::kRoundRobin);
  router.Subscribe("r/1", Sub(7, 0), nullptr);  // before: gets it live
  auto replicated = std::make_shared<Message>(Msg("r/1", 0, true));
  replicated->payload = "x";
  replicated->origin = {42, 7};
  Message forwarded = *replicated;  // another object: the forwarding path decoded it apart
  EXPECT_EQ(router.RetainedSeqOf(forwarded), 0u);  // not stored yet
  router.SetRetained(replicated, /*routed_here=*/false);
  Router::RetainedSnapshot got;
  router.Subscribe("r/+", Sub(8, 0), nullptr, &got);  // after: got it from the store
  ASSERT_EQ(got.messages.size(), 1u);
  const uint64_t seq = router.RetainedSeqOf(forwarded);
  EXPECT_GT(seq, 0u);
  Recorder r;
  router.RouteLocal(forwarded, r, seq);
  ASSERT_EQ(r.sessions.size(), 1u);
  EXPECT_EQ(r.sessions[0].session_id, 7u);
  forwarded.origin = {42, 8};  // another publish on the same topic: not what the store holds
  EXPECT_EQ(router.RetainedSeqOf(forwarded), 0u);
}

}  // namespace
}  // namespace mqtt
