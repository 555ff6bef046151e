// SPDX-License-Identifier: Apache-2.0
// MemberTable: one node's view of the cluster's members and the SWIM rules that change it.
// Pure logic, no I/O and no clock of its own (callers pass `now`), so the ordering rules are
// testable without gRPC. Not thread-safe: `Membership` (membership.h) owns one under its mutex.
//
// Ordering of two records about one node (SWIM paper, section 4.2): the higher incarnation
// wins; at an equal incarnation ALIVE < SUSPECT < DEAD < LEFT. So alive(i) overrides
// suspect(j) iff i > j and suspect(i) overrides alive(j) iff i >= j. One deviation: the paper
// makes DEAD final for a node id; here alive(i) overrides dead(j) iff i > j, because a node
// restarted with the same id rejoins with a higher incarnation (issue 11).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "proto/cluster.pb.h"

namespace mqtt::cluster {

enum class MemberState { kAlive, kSuspect, kDead, kLeft };
const char* MemberStateName(MemberState state);

// What a listener is told. kJoined: first seen (or seen again after removal). kAlive: back to
// ALIVE from SUSPECT/DEAD/LEFT. kRemoved: a DEAD or LEFT member forgotten after remove_after.
enum class MemberChange { kJoined, kAlive, kSuspect, kDead, kLeft, kRemoved };
const char* MemberChangeName(MemberChange change);

struct MemberInfo {
  std::string node_id;
  std::string address;  // host:port
  MemberState state = MemberState::kAlive;
  uint64_t incarnation = 0;
  absl::Time started_at;   // reported by the member itself
  absl::Time state_since;  // local time this node learned the current state
  std::map<std::string, std::string> metadata;
};

struct MemberEvent {
  MemberInfo member;
  MemberChange change;
};

class MemberTable {
 public:
  // `self` is this node (state ALIVE); `retransmit_mult` is SWIM's lambda: an update is
  // piggybacked at most lambda * ceil(log10(n + 1)) times, n counting this node.
  MemberTable(MemberInfo self, int retransmit_mult);

  // Applies a record received from a peer (gossip, Sync, Leave) by the ordering rules. A record
  // about this node that says SUSPECT/DEAD/LEFT at >= our incarnation, or anything at a higher
  // one, is refuted: our incarnation becomes its + 1 and an ALIVE record is queued. A DEAD or
  // LEFT record about an unknown node is ignored (otherwise a removed node would come back
  // through a peer that has not removed it yet). Returns true if the table changed.
  bool Apply(const v1::Member& record, absl::Time now, std::vector<MemberEvent>* events);

  // Local decisions. Suspect: ALIVE at exactly `incarnation` -> SUSPECT (a refutation that
  // arrived during the probe wins). Expire: SUSPECT older than suspect_timeout -> DEAD; DEAD or
  // LEFT older than remove_after -> forgotten.
  bool Suspect(const std::string& node_id, uint64_t incarnation, absl::Time now,
               std::vector<MemberEvent>* events);
  void Expire(absl::Time now, absl::Duration suspect_timeout, absl::Duration remove_after,
              std::vector<MemberEvent>* events);
  // This node leaves: its record becomes LEFT (never refuted again) and is queued.
  void MarkSelfLeft();
  void set_self_address(std::string address) { self_.address = std::move(address); }

  // Up to `max` queued updates, fewest transmissions first; each counts as one transmission.
  std::vector<v1::Member> TakeUpdates(int max);
  std::vector<v1::Member> FullState() const;  // this node first
  v1::Member SelfRecord() const { return ToRecord(self_); }

  const MemberInfo& self() const { return self_; }
  const MemberInfo* Find(const std::string& node_id) const;
  std::vector<MemberInfo> Snapshot() const;  // this node first, then by node id
  // Ids of other members in state ALIVE or SUSPECT: who is probed and who may probe for us.
  std::vector<std::string> Reachable() const;
  // Ids of other members in state DEAD (not LEFT): tried now and then, since a partition heals
  // without anyone probing across it.
  std::vector<std::string> Dead() const;
  size_t pending_updates() const { return queue_.size(); }
  uint64_t refutations() const { return refutations_; }

  static v1::Member ToRecord(const MemberInfo& info);

 private:
  bool ApplySelf(const v1::Member& record);
  void Enqueue(const std::string& node_id);
  int RetransmitLimit() const;

  MemberInfo self_;
  const int retransmit_mult_;
  std::map<std::string, MemberInfo> members_;    // others only; ordered for stable snapshots
  absl::flat_hash_map<std::string, int> queue_;  // node id -> transmissions so far
  uint64_t refutations_ = 0;
};

}  // namespace mqtt::cluster
