// SPDX-License-Identifier: Apache-2.0
// The route table's rules without I/O: this node's aggregated routes with their version and
// deltas (LocalRoutes), and what this node holds of every other origin (RemoteRoutes): delta
// application with gap detection, full-state replacement, dead / gone origins. Not thread-safe:
// `RouteTable` (routes.h) owns one of each under its mutex. Wire format: proto/cluster.proto.
//
// Versions: each origin numbers the changes of its route SET (not of subscriber counts) as
// (epoch, version). The epoch is fixed per process and greater than any earlier process of the
// same node id had; the version counts set changes from 0 (the empty set). Two 64-bit fields
// rather than one packed (epoch << 32 | counter) word: a busy node can make 2^32 set changes in
// weeks, and a wrapped counter would look older than it is.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "proto/cluster.pb.h"

namespace mqtt::cluster {

// "A node has at least one local subscriber of this (filter, group, persistence)". A filter held
// by both persistent and non-persistent sessions of one node is two routes.
struct Route {
  std::string filter;        // without any $share/<group>/ prefix
  std::string shared_group;  // empty: not shared
  bool persistent = false;

  friend auto operator<=>(const Route&, const Route&) = default;
  friend bool operator==(const Route&, const Route&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const Route& r) {
    return H::combine(std::move(h), r.filter, r.shared_group, r.persistent);
  }
};

v1::Route ToProto(const Route& route);
Route FromProto(const v1::Route& route);

struct RouteVersion {
  uint64_t epoch = 0;
  uint64_t version = 0;
  friend auto operator<=>(const RouteVersion&, const RouteVersion&) = default;
  friend bool operator==(const RouteVersion&, const RouteVersion&) = default;
};

// A remote route appeared or disappeared in this node's view.
struct RouteEvent {
  std::string origin;
  Route route;
  bool added = false;  // false: removed
};

// This node's routes. Add/Remove are called once per local subscriber; the route set changes
// only when a count goes 0 -> 1 or 1 -> 0, and each such change bumps the version by one.
class LocalRoutes {
 public:
  LocalRoutes(std::string origin, uint64_t epoch) : origin_(std::move(origin)), epoch_(epoch) {}

  // True if the route set changed (first subscriber of this route). InvalidArgument for an
  // empty filter.
  absl::Status Add(const Route& route, bool* set_changed);
  // True if the route set changed (last subscriber gone). NotFound if no subscriber holds it.
  absl::Status Remove(const Route& route, bool* set_changed);

  // The changes not yet taken, as consecutive deltas of at most `max_routes` routes each
  // (added + removed), oldest first. A route added and removed again in one delta's span
  // cancels out, but still counts in its version range.
  std::vector<v1::RouteDelta> TakeDeltas(int max_routes);
  bool has_pending() const { return !pending_.empty(); }

  // The full set at the current version. Callers that also push deltas take them first, so the
  // snapshot's version is a delta boundary and every later delta chains onto it.
  v1::RouteFetchResponse Snapshot() const;

  RouteVersion version() const { return {epoch_, version_}; }
  size_t size() const { return counts_.size(); }
  std::vector<Route> Routes() const;  // sorted
  const std::string& origin() const { return origin_; }

 private:
  const std::string origin_;
  const uint64_t epoch_;
  uint64_t version_ = 0;                         // set changes so far
  uint64_t taken_version_ = 0;                   // version at the end of the last TakeDeltas
  absl::flat_hash_map<Route, uint64_t> counts_;  // every count > 0
  std::vector<std::pair<Route, bool>> pending_;  // (route, added) since taken_version_
};

// What this node holds of every other origin. An origin is ALIVE unless told otherwise
// (data about a node the membership has not reported yet is accepted: its first delta may beat
// the membership event). A DEAD origin keeps only its persistent routes and accepts nothing
// until MarkAlive; its state is then "partial" until a full state replaces it. A GONE origin
// (removed or left) holds nothing and accepts nothing until MarkAlive (a restart under the same
// id): otherwise a peer that has not forgotten it yet would bring it back through a digest.
class RemoteRoutes {
 public:
  enum class DeltaResult {
    kApplied,
    kDuplicate,  // already covered by what is held
    kGap,        // from_version is not what is held: fetch the origin's full state
    kIgnored,    // dead / gone origin, or an older epoch
  };
  DeltaResult ApplyDelta(const v1::RouteDelta& delta, std::vector<RouteEvent>* events);

  // Replaces the origin's set if the state is newer than what is held (or what is held is
  // partial and the state is not older). Emits the difference. Returns true if applied.
  bool ApplyState(const v1::RouteFetchResponse& state, std::vector<RouteEvent>* events);

  // Dead: drop non-persistent routes now (events), keep persistent ones, mark partial.
  void MarkDead(const std::string& origin, std::vector<RouteEvent>* events);
  // Removed or left: drop everything (events), accept nothing until MarkAlive.
  void MarkGone(const std::string& origin, std::vector<RouteEvent>* events);
  // Accepts the origin's data again. True if what is held is partial or absent, i.e. a full
  // state should be fetched (from the origin itself, the authority).
  bool MarkAlive(const std::string& origin);

  // The version held in full of an ALIVE origin; nullopt if none (unknown, partial, dead, gone).
  std::optional<RouteVersion> CompleteVersion(const std::string& origin) const;
  // Whether data about `origin` would be accepted at all (not dead, not gone).
  bool Accepts(const std::string& origin) const;
  // Every origin held in full (see CompleteVersion).
  std::vector<v1::RouteVersion> Digest() const;
  // Full state of an origin held in full; nullopt otherwise.
  std::optional<v1::RouteFetchResponse> State(const std::string& origin) const;

  std::vector<Route> Routes(const std::string& origin) const;  // sorted
  size_t route_count() const;

 private:
  enum class Status { kAlive, kDead, kGone };
  struct Origin {
    Status status = Status::kAlive;
    bool known = false;    // `version` is meaningful
    bool partial = false;  // `routes` is a subset of what `version` says (dead meanwhile)
    RouteVersion version;
    absl::flat_hash_set<Route> routes;
  };

  absl::flat_hash_map<std::string, Origin> origins_;
};

}  // namespace mqtt::cluster
