// SPDX-License-Identifier: Apache-2.0
// The route table's rules without gRPC: aggregation and versions of local routes, deltas and
// their application, gap detection, full states, dead and gone origins.
#include "cluster/route_state.h"

#include <gtest/gtest.h>

namespace mqtt::cluster {
namespace {

Route R(std::string filter, bool persistent = false, std::string group = "") {
  return Route{std::move(filter), std::move(group), persistent};
}

bool Add(LocalRoutes& local, const Route& route) {
  bool changed = false;
  EXPECT_TRUE(local.Add(route, &changed).ok());
  return changed;
}

bool Remove(LocalRoutes& local, const Route& route) {
  bool changed = false;
  EXPECT_TRUE(local.Remove(route, &changed).ok());
  return changed;
}

std::vector<Route> Sorted(std::vector<Route> routes) {
  std::sort(routes.begin(), routes.end());
  return routes;
}

TEST(LocalRoutesTest, ManySubscribersOfOneRouteAreOneRouteAndOneVersion) {
  LocalRoutes local("a", 7);
  EXPECT_TRUE(Add(local, R("t/#")));
  for (int i = 0; i < 9999; ++i) EXPECT_FALSE(Add(local, R("t/#")));
  EXPECT_EQ(local.size(), 1u);
  EXPECT_EQ(local.version(), (RouteVersion{7, 1}));
  for (int i = 0; i < 9999; ++i) EXPECT_FALSE(Remove(local, R("t/#")));
  EXPECT_EQ(local.version(), (RouteVersion{7, 1}));
  EXPECT_TRUE(Remove(local, R("t/#")));
  EXPECT_EQ(local.version(), (RouteVersion{7, 2}));
  EXPECT_EQ(local.size(), 0u);

  bool changed = true;
  EXPECT_EQ(local.Remove(R("t/#"), &changed).code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(changed);
  EXPECT_EQ(local.Add(R(""), &changed).code(), absl::StatusCode::kInvalidArgument);
}

TEST(LocalRoutesTest, PersistenceAndGroupMakeDistinctRoutes) {
  LocalRoutes local("a", 1);
  EXPECT_TRUE(Add(local, R("t")));
  EXPECT_TRUE(Add(local, R("t", true)));
  EXPECT_TRUE(Add(local, R("t", false, "g")));
  EXPECT_EQ(local.size(), 3u);
  EXPECT_EQ(local.version().version, 3u);
}

TEST(LocalRoutesTest, DeltasAreConsecutiveChunksWithNetChanges) {
  LocalRoutes local("a", 1);
  Add(local, R("x"));
  Add(local, R("y"));
  Remove(local, R("x"));  // x added and removed within the first chunk: cancels out
  Add(local, R("z"));
  Add(local, R("w"));
  std::vector<v1::RouteDelta> deltas = local.TakeDeltas(3);
  ASSERT_EQ(deltas.size(), 2u);
  EXPECT_EQ(deltas[0].origin(), "a");
  EXPECT_EQ(deltas[0].epoch(), 1u);
  EXPECT_EQ(deltas[0].from_version(), 0u);
  EXPECT_EQ(deltas[0].to_version(), 3u);
  ASSERT_EQ(deltas[0].added_size(), 1);
  EXPECT_EQ(deltas[0].added(0).filter(), "y");
  EXPECT_EQ(deltas[0].removed_size(), 0);
  EXPECT_EQ(deltas[1].from_version(), 3u);
  EXPECT_EQ(deltas[1].to_version(), 5u);
  EXPECT_EQ(deltas[1].added_size(), 2);
  EXPECT_FALSE(local.has_pending());
  EXPECT_TRUE(local.TakeDeltas(3).empty());

  Remove(local, R("y"));
  deltas = local.TakeDeltas(3);
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].from_version(), 5u);
  EXPECT_EQ(deltas[0].to_version(), 6u);
  ASSERT_EQ(deltas[0].removed_size(), 1);
  EXPECT_EQ(deltas[0].removed(0).filter(), "y");
}

TEST(RemoteRoutesTest, DeltasApplyInOrderDuplicatesAreIgnoredGapsDetected) {
  LocalRoutes local("a", 1);
  RemoteRoutes remote;
  std::vector<RouteEvent> events;
  Add(local, R("x"));
  Add(local, R("y", true));
  v1::RouteDelta d1 = local.TakeDeltas(100)[0];
  Remove(local, R("x"));
  v1::RouteDelta d2 = local.TakeDeltas(100)[0];
  Add(local, R("z"));
  v1::RouteDelta d3 = local.TakeDeltas(100)[0];

  using Result = RemoteRoutes::DeltaResult;
  EXPECT_EQ(remote.ApplyDelta(d2, &events), Result::kGap);  // unknown origin, not from 0
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(remote.ApplyDelta(d1, &events), Result::kApplied);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(events[0].added);
  EXPECT_EQ(events[0].origin, "a");
  events.clear();
  EXPECT_EQ(remote.ApplyDelta(d1, &events), Result::kDuplicate);
  EXPECT_EQ(remote.ApplyDelta(d3, &events), Result::kGap);  // d2 missing
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(remote.ApplyDelta(d2, &events), Result::kApplied);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_FALSE(events[0].added);
  EXPECT_EQ(events[0].route, R("x"));
  EXPECT_EQ(remote.ApplyDelta(d3, &events), Result::kApplied);
  EXPECT_EQ(remote.Routes("a"), local.Routes());
  EXPECT_EQ(remote.CompleteVersion("a"), local.version());
}

TEST(RemoteRoutesTest, FullStateReplacesWithTheDifferenceAndDeltasChainOnIt) {
  LocalRoutes local("a", 1);
  RemoteRoutes remote;
  std::vector<RouteEvent> events;
  Add(local, R("x"));
  ASSERT_EQ(remote.ApplyDelta(local.TakeDeltas(100)[0], &events),
            RemoteRoutes::DeltaResult::kApplied);
  Remove(local, R("x"));
  Add(local, R("y"));
  local.TakeDeltas(100);  // lost on the way
  events.clear();
  ASSERT_TRUE(remote.ApplyState(local.Snapshot(), &events));
  ASSERT_EQ(events.size(), 2u);  // x removed, y added
  EXPECT_FALSE(remote.ApplyState(local.Snapshot(), &events)) << "not newer";
  Add(local, R("z"));
  EXPECT_EQ(remote.ApplyDelta(local.TakeDeltas(100)[0], &events),
            RemoteRoutes::DeltaResult::kApplied);
  EXPECT_EQ(remote.Routes("a"), local.Routes());
}

TEST(RemoteRoutesTest, NewEpochNeedsAFullStateAndOldEpochIsIgnored) {
  RemoteRoutes remote;
  std::vector<RouteEvent> events;
  LocalRoutes first("a", 5);
  Add(first, R("old"));
  remote.ApplyDelta(first.TakeDeltas(100)[0], &events);

  LocalRoutes restarted("a", 6);
  Add(restarted, R("new"));
  EXPECT_EQ(remote.ApplyDelta(restarted.TakeDeltas(100)[0], &events),
            RemoteRoutes::DeltaResult::kGap);
  events.clear();
  ASSERT_TRUE(remote.ApplyState(restarted.Snapshot(), &events));
  EXPECT_EQ(remote.Routes("a"), std::vector<Route>{R("new")});
  EXPECT_EQ(events.size(), 2u);

  Add(first, R("older"));
  EXPECT_EQ(remote.ApplyDelta(first.TakeDeltas(100)[0], &events),
            RemoteRoutes::DeltaResult::kIgnored);
  EXPECT_FALSE(remote.ApplyState(first.Snapshot(), &events));
}

TEST(RemoteRoutesTest, DeadKeepsPersistentRoutesUntilAliveAndRefetched) {
  LocalRoutes local("a", 1);
  RemoteRoutes remote;
  std::vector<RouteEvent> events;
  Add(local, R("plain"));
  Add(local, R("kept", true));
  remote.ApplyDelta(local.TakeDeltas(100)[0], &events);
  events.clear();

  remote.MarkDead("a", &events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].route, R("plain"));
  EXPECT_FALSE(events[0].added);
  EXPECT_EQ(remote.Routes("a"), std::vector<Route>{R("kept", true)});
  EXPECT_FALSE(remote.CompleteVersion("a")) << "partial: not offered in digests";
  EXPECT_FALSE(remote.State("a"));
  EXPECT_FALSE(remote.Accepts("a"));
  EXPECT_TRUE(remote.Digest().empty());
  Add(local, R("more"));
  EXPECT_EQ(remote.ApplyDelta(local.TakeDeltas(100)[0], &events),
            RemoteRoutes::DeltaResult::kIgnored);

  EXPECT_TRUE(remote.MarkAlive("a")) << "partial: fetch wanted";
  events.clear();
  ASSERT_TRUE(remote.ApplyState(local.Snapshot(), &events));
  EXPECT_EQ(events.size(), 2u);  // plain and more come back
  EXPECT_EQ(remote.Routes("a"), local.Routes());
  EXPECT_TRUE(remote.CompleteVersion("a"));
}

TEST(RemoteRoutesTest, FalselyDeadNodeWithUnchangedVersionIsRestoredBySameVersionState) {
  LocalRoutes local("a", 1);
  RemoteRoutes remote;
  std::vector<RouteEvent> events;
  Add(local, R("plain"));
  remote.ApplyDelta(local.TakeDeltas(100)[0], &events);
  remote.MarkDead("a", &events);
  EXPECT_TRUE(remote.Routes("a").empty());
  EXPECT_TRUE(remote.MarkAlive("a"));
  EXPECT_TRUE(remote.ApplyState(local.Snapshot(), &events)) << "same version, held partial";
  EXPECT_EQ(remote.Routes("a"), local.Routes());
}

TEST(RemoteRoutesTest, DeadBeforeAnyDataStillRefusesDataUntilAlive) {
  LocalRoutes local("a", 1);
  RemoteRoutes remote;
  std::vector<RouteEvent> events;
  Add(local, R("plain"));
  remote.MarkDead("a", &events);
  EXPECT_TRUE(events.empty());
  EXPECT_FALSE(remote.ApplyState(local.Snapshot(), &events));
  EXPECT_TRUE(remote.MarkAlive("a"));
  EXPECT_TRUE(remote.ApplyState(local.Snapshot(), &events));
  EXPECT_EQ(remote.Routes("a"), local.Routes());
}

TEST(RemoteRoutesTest, GoneDropsEverythingAndAcceptsNothingUntilAlive) {
  LocalRoutes local("a", 1);
  RemoteRoutes remote;
  std::vector<RouteEvent> events;
  Add(local, R("plain"));
  Add(local, R("kept", true));
  remote.ApplyDelta(local.TakeDeltas(100)[0], &events);
  events.clear();
  remote.MarkGone("a", &events);
  EXPECT_EQ(events.size(), 2u);
  EXPECT_TRUE(remote.Routes("a").empty());
  EXPECT_FALSE(remote.ApplyState(local.Snapshot(), &events)) << "a late digest must not revive";
  EXPECT_TRUE(remote.MarkAlive("a"));
  EXPECT_TRUE(remote.ApplyState(local.Snapshot(), &events));
  EXPECT_EQ(remote.Routes("a"), Sorted({R("plain"), R("kept", true)}));
}

TEST(RemoteRoutesTest, DigestListsCompleteOrigins) {
  RemoteRoutes remote;
  std::vector<RouteEvent> events;
  for (const char* id : {"a", "b", "c"}) {
    LocalRoutes local(id, 3);
    Add(local, R("t"));
    remote.ApplyDelta(local.TakeDeltas(100)[0], &events);
  }
  remote.MarkDead("b", &events);
  remote.MarkGone("c", &events);
  std::vector<v1::RouteVersion> digest = remote.Digest();
  ASSERT_EQ(digest.size(), 1u);
  EXPECT_EQ(digest[0].origin(), "a");
  EXPECT_EQ(digest[0].epoch(), 3u);
  EXPECT_EQ(digest[0].version(), 1u);
  EXPECT_EQ(remote.route_count(), 1u);
}

}  // namespace
}  // namespace mqtt::cluster
