// SPDX-License-Identifier: Apache-2.0
#include "cluster/registry_plan.h"

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"

namespace mqtt::cluster {
namespace {

using Kind = RegistryConfigChange::Kind;

// Voters for `n` members: the largest odd number <= min(n, 5).
size_t VoterTarget(size_t n) { return n >= 5 ? 5 : n >= 3 ? 3 : 1; }

}  // namespace

std::string RaftAddressOf(const MemberInfo& member) {
  auto it = member.metadata.find(kRaftAddressKey);
  return it == member.metadata.end() ? std::string() : it->second;
}

const char* RegistryConfigChangeName(Kind kind) {
  switch (kind) {
    case Kind::kRemove:
      return "remove";
    case Kind::kReaddress:
      return "re-address";
    case Kind::kAdd:
      return "add";
    case Kind::kDemote:
      return "demote";
    case Kind::kPromote:
      return "promote";
  }
  return "?";
}

std::optional<RegistryConfigChange> PlanRegistryConfigChange(
    const std::vector<RegistryMember>& config, const std::vector<MemberInfo>& members,
    std::string_view self) {
  absl::flat_hash_map<std::string, const MemberInfo*> by_id;
  for (const MemberInfo& m : members) by_id[m.node_id] = &m;

  size_t voters = 0;
  size_t alive_voters = 0;
  size_t alive_in_config = 0;
  const RegistryMember* standby_to_promote = nullptr;
  const RegistryMember* dead_voter = nullptr;
  // Alive, advertising another Raft address: unreachable where the configuration says.
  std::vector<std::pair<const RegistryMember*, std::string>> moved;
  absl::flat_hash_set<std::string> in_config;
  for (const RegistryMember& member : config) {
    in_config.insert(member.node_id);
    const bool voter = member.role == RegistryMember::Role::kVoter;
    auto it = by_id.find(member.node_id);
    if (it == by_id.end()) {  // not known (yet) by this node's membership: a voter not alive
      if (voter) ++voters;
      continue;
    }
    const MemberInfo& info = *it->second;
    if (info.state == MemberState::kLeft && member.node_id != self) {
      return RegistryConfigChange{Kind::kRemove, member.node_id, member.raft_address, false};
    }
    if (voter) ++voters;
    if (voter && info.state == MemberState::kDead && dead_voter == nullptr) dead_voter = &member;
    if (info.state != MemberState::kAlive) continue;
    std::string advertised = RaftAddressOf(info);
    if (!advertised.empty() && advertised != member.raft_address && member.node_id != self) {
      moved.emplace_back(&member, std::move(advertised));
      continue;  // neither alive nor promotable: Raft cannot reach it
    }
    ++alive_in_config;
    if (voter) ++alive_voters;
    if (!voter && standby_to_promote == nullptr) standby_to_promote = &member;
  }
  // The first moved member whose removal can commit. `voters` >= 1 when a moved member is a
  // voter, so `voters - 1` does not wrap.
  for (const auto& [member, moved_to] : moved) {
    if (member->role != RegistryMember::Role::kVoter || alive_voters >= (voters - 1) / 2 + 1) {
      return RegistryConfigChange{Kind::kReaddress, member->node_id, moved_to, false};
    }
  }
  for (const MemberInfo& m : members) {
    std::string raft = RaftAddressOf(m);
    if (m.state != MemberState::kAlive || raft.empty() || in_config.contains(m.node_id)) continue;
    return RegistryConfigChange{Kind::kAdd, m.node_id, std::move(raft), false};
  }
  if (dead_voter != nullptr && standby_to_promote != nullptr) {
    return RegistryConfigChange{Kind::kDemote, dead_voter->node_id, dead_voter->raft_address,
                                false};
  }
  if (standby_to_promote != nullptr && voters < VoterTarget(alive_in_config)) {
    return RegistryConfigChange{Kind::kPromote, standby_to_promote->node_id,
                                standby_to_promote->raft_address, true};
  }
  return std::nullopt;
}

}  // namespace mqtt::cluster
