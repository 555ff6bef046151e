// SPDX-License-Identifier: Apache-2.0
#include "cluster/route_state.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace mqtt::cluster {

v1::Route ToProto(const Route& route) {
  v1::Route out;
  out.set_filter(route.filter);
  out.set_shared_group(route.shared_group);
  out.set_persistent(route.persistent);
  return out;
}

Route FromProto(const v1::Route& route) {
  return Route{route.filter(), route.shared_group(), route.persistent()};
}

absl::Status LocalRoutes::Add(const Route& route, bool* set_changed) {
  *set_changed = false;
  if (route.filter.empty()) return absl::InvalidArgumentError("cluster: empty route filter");
  if (++counts_[route] == 1) {
    ++version_;
    pending_.emplace_back(route, true);
    *set_changed = true;
  }
  return absl::OkStatus();
}

absl::Status LocalRoutes::Remove(const Route& route, bool* set_changed) {
  *set_changed = false;
  auto it = counts_.find(route);
  if (it == counts_.end()) {
    return absl::NotFoundError(absl::StrCat("cluster: no local route for ", route.filter));
  }
  if (--it->second == 0) {
    counts_.erase(it);
    ++version_;
    pending_.emplace_back(route, false);
    *set_changed = true;
  }
  return absl::OkStatus();
}

std::vector<v1::RouteDelta> LocalRoutes::TakeDeltas(int max_routes) {
  std::vector<v1::RouteDelta> deltas;
  const size_t chunk = static_cast<size_t>(std::max(max_routes, 1));
  for (size_t begin = 0; begin < pending_.size(); begin += chunk) {
    const size_t end = std::min(begin + chunk, pending_.size());
    // Each change flips the route's membership, so its net effect over the span is its last
    // change if the route changed an odd number of times, nothing otherwise.
    absl::flat_hash_map<Route, std::pair<int, bool>> net;  // route -> (changes, last added)
    for (size_t i = begin; i < end; ++i) {
      auto& [changes, added] = net[pending_[i].first];
      ++changes;
      added = pending_[i].second;
    }
    v1::RouteDelta& delta = deltas.emplace_back();
    delta.set_origin(origin_);
    delta.set_epoch(epoch_);
    delta.set_from_version(taken_version_ + begin);
    delta.set_to_version(taken_version_ + end);
    for (size_t i = begin; i < end; ++i) {  // in change order, for stable output
      auto it = net.find(pending_[i].first);
      if (it == net.end()) continue;
      if (it->second.first % 2 == 1) {
        *(it->second.second ? delta.add_added() : delta.add_removed()) = ToProto(it->first);
      }
      net.erase(it);
    }
  }
  taken_version_ = version_;
  pending_.clear();
  return deltas;
}

v1::RouteFetchResponse LocalRoutes::Snapshot() const {
  v1::RouteFetchResponse state;
  state.set_origin(origin_);
  state.set_epoch(epoch_);
  state.set_version(version_);
  for (const auto& [route, count] : counts_) *state.add_routes() = ToProto(route);
  return state;
}

std::vector<Route> LocalRoutes::Routes() const {
  std::vector<Route> out;
  out.reserve(counts_.size());
  for (const auto& [route, count] : counts_) out.push_back(route);
  std::sort(out.begin(), out.end());
  return out;
}

RemoteRoutes::DeltaResult RemoteRoutes::ApplyDelta(const v1::RouteDelta& delta,
                                                   std::vector<RouteEvent>* events) {
  Origin& o = origins_[delta.origin()];
  if (o.status != Status::kAlive) return DeltaResult::kIgnored;
  if (o.known) {
    if (delta.epoch() < o.version.epoch) return DeltaResult::kIgnored;  // an older process
    // A new epoch starts from the empty set while we hold the old process's routes: only a
    // full state tells what to drop.
    if (o.partial || delta.epoch() > o.version.epoch) return DeltaResult::kGap;
    if (delta.to_version() <= o.version.version) return DeltaResult::kDuplicate;
    if (delta.from_version() != o.version.version) return DeltaResult::kGap;
  } else if (delta.from_version() != 0 || !o.routes.empty()) {
    return DeltaResult::kGap;  // only a delta from the empty set can start an unknown origin
  }
  for (const v1::Route& r : delta.removed()) {
    Route route = FromProto(r);
    if (o.routes.erase(route) > 0) events->push_back({delta.origin(), std::move(route), false});
  }
  for (const v1::Route& r : delta.added()) {
    Route route = FromProto(r);
    if (o.routes.insert(route).second) {
      events->push_back({delta.origin(), std::move(route), true});
    }
  }
  o.known = true;
  o.version = {delta.epoch(), delta.to_version()};
  return DeltaResult::kApplied;
}

bool RemoteRoutes::ApplyState(const v1::RouteFetchResponse& state,
                              std::vector<RouteEvent>* events) {
  Origin& o = origins_[state.origin()];
  if (o.status != Status::kAlive) return false;
  const RouteVersion incoming{state.epoch(), state.version()};
  if (o.known && (o.partial ? incoming < o.version : incoming <= o.version)) return false;
  absl::flat_hash_set<Route> next;
  next.reserve(state.routes_size());
  for (const v1::Route& r : state.routes()) next.insert(FromProto(r));
  for (const Route& route : o.routes) {
    if (!next.contains(route)) events->push_back({state.origin(), route, false});
  }
  for (const Route& route : next) {
    if (!o.routes.contains(route)) events->push_back({state.origin(), route, true});
  }
  o.routes = std::move(next);
  o.known = true;
  o.partial = false;
  o.version = incoming;
  return true;
}

void RemoteRoutes::MarkDead(const std::string& origin, std::vector<RouteEvent>* events) {
  // An origin not heard of yet is recorded too, so that a peer's digest cannot bring in its
  // routes while it is dead.
  Origin& o = origins_[origin];
  if (o.status == Status::kGone) return;  // removed already: nothing left to drop
  o.status = Status::kDead;
  for (auto r = o.routes.begin(); r != o.routes.end();) {
    if (r->persistent) {
      ++r;
      continue;
    }
    events->push_back({origin, *r, false});
    o.routes.erase(r++);
  }
  o.partial = true;
}

void RemoteRoutes::MarkGone(const std::string& origin, std::vector<RouteEvent>* events) {
  Origin& o = origins_[origin];
  for (const Route& route : o.routes) events->push_back({origin, route, false});
  o = Origin{};
  o.status = Status::kGone;
}

bool RemoteRoutes::MarkAlive(const std::string& origin) {
  Origin& o = origins_[origin];
  o.status = Status::kAlive;
  return o.partial || !o.known;
}

std::optional<RouteVersion> RemoteRoutes::CompleteVersion(const std::string& origin) const {
  auto it = origins_.find(origin);
  if (it == origins_.end()) return std::nullopt;
  const Origin& o = it->second;
  if (o.status != Status::kAlive || !o.known || o.partial) return std::nullopt;
  return o.version;
}

bool RemoteRoutes::Accepts(const std::string& origin) const {
  auto it = origins_.find(origin);
  return it == origins_.end() || it->second.status == Status::kAlive;
}

std::vector<v1::RouteVersion> RemoteRoutes::Digest() const {
  std::vector<v1::RouteVersion> out;
  for (const auto& [id, o] : origins_) {
    if (o.status != Status::kAlive || !o.known || o.partial) continue;
    v1::RouteVersion& v = out.emplace_back();
    v.set_origin(id);
    v.set_epoch(o.version.epoch);
    v.set_version(o.version.version);
  }
  return out;
}

std::optional<v1::RouteFetchResponse> RemoteRoutes::State(const std::string& origin) const {
  if (!CompleteVersion(origin)) return std::nullopt;
  const Origin& o = origins_.at(origin);
  v1::RouteFetchResponse state;
  state.set_origin(origin);
  state.set_epoch(o.version.epoch);
  state.set_version(o.version.version);
  for (const Route& route : o.routes) *state.add_routes() = ToProto(route);
  return state;
}

std::vector<Route> RemoteRoutes::Routes(const std::string& origin) const {
  std::vector<Route> out;
  auto it = origins_.find(origin);
  if (it == origins_.end()) return out;
  out.assign(it->second.routes.begin(), it->second.routes.end());
  std::sort(out.begin(), out.end());
  return out;
}

size_t RemoteRoutes::route_count() const {
  size_t n = 0;
  for (const auto& [id, o] : origins_) n += o.routes.size();
  return n;
}

}  // namespace mqtt::cluster
