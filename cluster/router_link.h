// RouterLink: joins the node's Router (node/router/router.h) and the cluster's RouteTable.
// - Local plain subscriptions become this node's routes: the Router's local route listener calls
//   RouteTable::AddLocal/RemoveLocal once per subscription (the table counts them).
// - Remote routes become Router entries of kind "node": one per (origin, filter, persistent),
//   however many routes the origin holds for that filter (the persistent ones tell the
//   forwarder that a message must survive the loss of a node).
// Shared-subscription routes are not exchanged yet: a $share group is served by the members on
// the publisher's node only until forwarding brings cluster-wide groups (issue 11).
//
// Threading: the RouteSink side runs on the table's thread; the listener side on whichever
// worker subscribes, under the Router's writer lock. Attach before the first local subscription
// that should be announced; Detach before the table stops, so the router never calls a stopped
// table.
#pragma once

#include <cstdint>
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

 private:
  Router* const router_;
  absl::Mutex mu_;
  // Remote routes per (origin index, filter, persistent): the Router holds one entry while this
  // is > 0.
  absl::flat_hash_map<std::tuple<uint32_t, std::string, bool>, uint32_t> counts_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace mqtt::cluster
