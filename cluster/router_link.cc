#include "cluster/router_link.h"

#include "node/base/log.h"

namespace mqtt::cluster {

void RouterLink::Attach(RouteTable* table) {
  router_->SetLocalRouteListener([table](std::string_view filter, bool persistent, bool added) {
    const Route route{std::string(filter), "", persistent};
    absl::Status s = added ? table->AddLocal(route) : table->RemoveLocal(route);
    if (!s.ok()) MQTT_LOG_WARN("cluster: local route %s: %s", filter, s.message());
  });
}

void RouterLink::Detach() { router_->SetLocalRouteListener(nullptr); }

void RouterLink::Added(const std::string&, uint32_t origin_index, const Route& route) {
  if (!route.shared_group.empty()) return;  // not exchanged yet (see the header)
  absl::MutexLock lock(&mu_);
  if (++counts_[{origin_index, route.filter, route.persistent}] == 1) {
    router_->AddNodeRoute(route.filter, origin_index, route.persistent);
  }
}

void RouterLink::Removed(const std::string&, uint32_t origin_index, const Route& route) {
  if (!route.shared_group.empty()) return;
  absl::MutexLock lock(&mu_);
  auto it = counts_.find(std::make_tuple(origin_index, route.filter, route.persistent));
  if (it == counts_.end()) return;
  if (--it->second == 0) {
    counts_.erase(it);
    router_->RemoveNodeRoute(route.filter, origin_index, route.persistent);
  }
}

}  // namespace mqtt::cluster
