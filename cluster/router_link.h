// SPDX-License-Identifier: Apache-2.0
// RouterLink: joins the node's Router (node/router/router.h) and the cluster's RouteTable.
// - Local subscriptions become this node's routes: the Router's local route listener calls
//   RouteTable::AddLocal/RemoveLocal once per plain subscription and once per shared-group
//   member (Route::shared_group set; the table counts them and replicates the set).
// - Remote plain routes become Router entries of kind "node": one per (origin, filter,
//   persistent), however many routes the origin holds for that filter (the persistent ones tell
//   the forwarder that a message must survive the loss of a node).
// - Remote shared routes make the origin one member of the group here: one per (origin, group,
//   filter), durable while the origin holds a persistent member (so a group spans the cluster:
//   the publisher's node picks one member, a session here or a node).
//
// Threading: the RouteSink side runs on the table's thread; the listener side on whichever
// worker subscribes, under the Router's writer lock. Attach before the first local subscription
// that should be announced; Detach before the table stops, so the router never calls a stopped
// table.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "cluster/routes.h"
#include "node/router/router.h"

namespace mqtt::cluster {

class RouterLink final : public RouteSink {
 public:
  explicit RouterLink(Router* router) : router_(router) {}

  void Attach(RouteTable* table);
  void Detach();

  // RouteSink.
  void Added(const std::string& origin, uint32_t origin_index, const Route& route) override;
  void Removed(const std::string& origin, uint32_t origin_index, const Route& route) override;

  // Whether an origin is alive (membership): a dead or departed node's shared-group members
  // (kept while it holds persistent ones) are passed over while another member is online.
  void SetOriginAlive(uint32_t origin_index, bool alive) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  std::shared_ptr<std::atomic<bool>> AliveFlag(uint32_t origin_index)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Router* const router_;
  absl::Mutex mu_;
  absl::flat_hash_map<uint32_t, std::shared_ptr<std::atomic<bool>>> alive_ ABSL_GUARDED_BY(mu_);
  // Remote routes per (origin index, filter, persistent): the Router holds one entry while this
  // is > 0.
  absl::flat_hash_map<std::tuple<uint32_t, std::string, bool>, uint32_t> counts_
      ABSL_GUARDED_BY(mu_);
  // Remote shared routes per (origin index, group, filter): [persistent?]. The Router holds one
  // node member while the sum is > 0, durable while [1] is.
  using GroupKey = std::tuple<uint32_t, std::string, std::string>;
  absl::flat_hash_map<GroupKey, std::array<uint32_t, 2>> group_counts_ ABSL_GUARDED_BY(mu_);

  void GroupRouteChanged(uint32_t origin_index, const Route& route, bool added)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
};

}  // namespace mqtt::cluster
