// SPDX-License-Identifier: Apache-2.0
// The registry leader's reconciliation decision (RegistryNode, registry_node.h): from the Raft
// configuration of the client-id registry and this node's membership view, the one
// configuration change to make next, if any. The caller makes it, waits for it, and asks again
// (next tick) with the new configuration: libraft runs one configuration change at a time.
//
// Precedence (the first that applies is returned; "first" is in configuration order, except for
// kAdd, in membership order):
// 1. kRemove: a member the membership says LEFT. Never `self`: this node LEFT stays, and counts
//    as a voter (if it is one) that is not alive.
// 2. kReaddress: an alive member (not `self`) that advertises a non-empty Raft address other
//    than its configured one (restarted with a new IP). libraft cannot change a member's
//    address: it is removed, and a later kAdd puts it back, at the address it advertises, as a
//    standby. The first such member whose removal can commit; every moved member counts as
//    neither alive nor promotable (Raft cannot reach it where the configuration says). A voter
//    is removed only while the other alive voters keep a majority of the voters without it:
//        alive_voters >= (voters - 1) / 2 + 1   (alive_voters excludes the moved member)
//    e.g. 3 voters: 2 others alive; 5 voters: 3 others alive. Why: libraft counts a
//    configuration entry under the new configuration as soon as it is appended, so without that
//    majority the removal cannot commit and the leader is left, until the member comes back,
//    with a configuration it has no quorum in (every CONNECT refused). Refused, the decision
//    goes on with 3-5.
// 3. kAdd: an alive member advertising a Raft address, not in the configuration: added as a
//    standby at that address. Not a SUSPECT, DEAD or LEFT one, nor one without an address.
// 4. kDemote: a voter the membership says DEAD (not SUSPECT: suspicion is often refuted) becomes
//    a standby, when an alive standby exists to take its vote (kPromote, next): a dead voter keeps
//    the registry one failure closer to losing its majority until it is forgotten.
// 5. kPromote: an alive standby becomes a voter while voters < target, target = 1, 3 or 5 for
//    < 3, 3-4, >= 5 alive members of the configuration (an even count of voters adds round trips
//    and no fault tolerance).
// Counts: `voters` are the configuration's voters in any state (this node included), those the
// membership does not know (not learned yet, or forgotten: RegistryNode removes those on
// kRemoved) too, as voters that are not alive: Raft counts them in every majority. Alive means
// MemberState::kAlive. Unknown members are never changed.
//
// Threading: pure functions (no I/O, no clock, no Raft calls); callable from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/member_table.h"
#include "cluster/registry.h"

namespace mqtt::cluster {

// The metadata key under which a member advertises its registry's Raft address.
inline constexpr char kRaftAddressKey[] = "raft";

// The Raft address `member` advertises; empty if none.
std::string RaftAddressOf(const MemberInfo& member);

struct RegistryConfigChange {
  enum class Kind { kRemove, kReaddress, kAdd, kDemote, kPromote };
  Kind kind = Kind::kRemove;
  std::string node_id;
  // kAdd: the advertised address; kReaddress: the new advertised address (where a later kAdd
  // puts the member); otherwise the configured address.
  std::string raft_address;
  bool voter = false;  // the role after the change: true for kPromote only

  // kRemove and kReaddress are Registry::RemoveMember; the others Registry::AddMember.
  bool removes() const { return kind == Kind::kRemove || kind == Kind::kReaddress; }
  friend bool operator==(const RegistryConfigChange&, const RegistryConfigChange&) = default;
};

// "remove", "re-address", "add", "demote", "promote" (for logs).
const char* RegistryConfigChangeName(RegistryConfigChange::Kind kind);

// The next change (see above), or nullopt when the configuration is as it should be. `self` is
// this node's id (the leader's).
std::optional<RegistryConfigChange> PlanRegistryConfigChange(
    const std::vector<RegistryMember>& config, const std::vector<MemberInfo>& members,
    std::string_view self);

}  // namespace mqtt::cluster
