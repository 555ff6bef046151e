// SPDX-License-Identifier: Apache-2.0
#include "cluster/router_link.h"

#include "node/base/log.h"

namespace mqtt::cluster {

void RouterLink::Attach(RouteTable* table) {
  router_->SetLocalRouteListener(
      [table](std::string_view filter, std::string_view group, bool persistent, bool added) {
        const Route route{std::string(filter), std::string(group), persistent};
        absl::Status s = added ? table->AddLocal(route) : table->RemoveLocal(route);
        if (!s.ok()) MQTT_LOG_WARN("cluster: local route %s (%s): %s", filter, group, s.message());
      });
}

void RouterLink::Detach() { router_->SetLocalRouteListener(nullptr); }

void RouterLink::Added(const std::string&, uint32_t origin_index, const Route& route) {
  absl::MutexLock lock(&mu_);
  if (!route.shared_group.empty()) return GroupRouteChanged(origin_index, route, true);
  if (++counts_[{origin_index, route.filter, route.persistent}] == 1) {
    router_->AddNodeRoute(route.filter, origin_index, route.persistent);
  }
}

void RouterLink::Removed(const std::string&, uint32_t origin_index, const Route& route) {
  absl::MutexLock lock(&mu_);
  if (!route.shared_group.empty()) return GroupRouteChanged(origin_index, route, false);
  auto it = counts_.find(std::make_tuple(origin_index, route.filter, route.persistent));
  if (it == counts_.end()) return;
  if (--it->second == 0) {
    counts_.erase(it);
    router_->RemoveNodeRoute(route.filter, origin_index, route.persistent);
  }
}

// Keeps the Router's node member in step with the origin's routes for the group: present while
// any is, durable while a persistent one is.
void RouterLink::GroupRouteChanged(uint32_t origin_index, const Route& route, bool added) {
  GroupKey key{origin_index, route.shared_group, route.filter};
  auto it = added ? group_counts_.try_emplace(std::move(key)).first : group_counts_.find(key);
  if (it == group_counts_.end()) return;
  std::array<uint32_t, 2>& count = it->second;
  const bool was_member = count[0] + count[1] > 0;
  const bool was_durable = count[1] > 0;
  uint32_t& kind = count[route.persistent ? 1 : 0];
  if (!added && kind == 0) return;
  kind += added ? 1 : -1;
  if (count[0] + count[1] == 0) {
    group_counts_.erase(it);
    router_->RemoveNodeGroupMember(route.shared_group, route.filter, origin_index);
  } else if (!was_member || (count[1] > 0) != was_durable) {
    router_->SetNodeGroupMember(route.shared_group, route.filter, origin_index, count[1] > 0,
                                AliveFlag(origin_index));
  }
}

std::shared_ptr<std::atomic<bool>> RouterLink::AliveFlag(uint32_t origin_index) {
  std::shared_ptr<std::atomic<bool>>& flag = alive_[origin_index];
  if (flag == nullptr) flag = std::make_shared<std::atomic<bool>>(true);
  return flag;
}

void RouterLink::SetOriginAlive(uint32_t origin_index, bool alive) {
  absl::MutexLock lock(&mu_);
  AliveFlag(origin_index)->store(alive, std::memory_order_relaxed);
}

}  // namespace mqtt::cluster
