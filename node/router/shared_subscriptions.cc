// SPDX-License-Identifier: Apache-2.0
#include "node/router/shared_subscriptions.h"

#include <algorithm>
#include <functional>
#include <random>

#include "absl/strings/str_cat.h"

namespace mqtt {

struct SharedGroups::Group {
  std::string name;
  std::string filter;
  std::vector<Member> members;
  mutable std::atomic<uint64_t> next{0};    // round robin position
  mutable std::atomic<uint64_t> sticky{0};  // session id of the sticky member
};

namespace {

std::string GroupKey(std::string_view group, std::string_view filter) {
  std::string key(group);
  key.push_back('/');
  key.append(filter);
  return key;
}

// A local member is online while its client is connected; a node member while its node is
// alive (no flag: always).
bool IsOnline(const SharedGroups::Member& member) {
  if (member.online == nullptr) return member.node != 0;
  return member.online->load(std::memory_order_relaxed);
}

bool Eligible(const SharedGroups::Member& m, const SharedGroups::Pass& pass, uint64_t exclude) {
  using Kind = SharedGroups::Kind;
  if (pass.kind == Kind::kLocal && m.node != 0) return false;
  if (pass.kind == Kind::kNode && m.node == 0) return false;
  if (!pass.may_exclude && m.session_id == exclude) return false;
  return !pass.online_only || IsOnline(m);
}

// The strategy's draw; a pass takes the eligible member at this position modulo their number.
uint64_t Draw(const SharedGroups::Choice& choice, std::atomic<uint64_t>& next) {
  switch (choice.strategy) {
    case ShareStrategy::kRoundRobin:
    case ShareStrategy::kSticky:
      return next.fetch_add(1, std::memory_order_relaxed);
    case ShareStrategy::kRandom: {
      thread_local std::minstd_rand random(std::random_device{}());
      return random();
    }
    case ShareStrategy::kHashClientId:
      return std::hash<std::string_view>()(choice.publisher_id);
    case ShareStrategy::kHashTopic:
      return std::hash<std::string_view>()(choice.topic);
  }
  return 0;
}

}  // namespace

absl::StatusOr<std::optional<SharedFilter>> ParseSharedFilter(std::string_view filter) {
  constexpr std::string_view kShare = "$share/";
  constexpr std::string_view kQueue = "$queue/";
  if (filter.starts_with(kQueue)) {
    std::string_view rest = filter.substr(kQueue.size());
    if (rest.empty()) return absl::InvalidArgumentError("$queue/ without a topic filter");
    return SharedFilter{"$queue", rest};
  }
  if (!filter.starts_with(kShare)) return std::nullopt;
  std::string_view rest = filter.substr(kShare.size());
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash + 1 >= rest.size()) {
    return absl::InvalidArgumentError("shared subscription without a topic filter");
  }
  std::string_view group = rest.substr(0, slash);
  if (group.empty() || group.find_first_of("+#") != std::string_view::npos) {
    return absl::InvalidArgumentError("share name empty or containing a wildcard");
  }
  return SharedFilter{group, rest.substr(slash + 1)};
}

bool ParseShareStrategy(std::string_view name, ShareStrategy* strategy) {
  static constexpr std::pair<std::string_view, ShareStrategy> kNames[] = {
      {"round_robin", ShareStrategy::kRoundRobin}, {"random", ShareStrategy::kRandom},
      {"sticky", ShareStrategy::kSticky},          {"hash_clientid", ShareStrategy::kHashClientId},
      {"hash_topic", ShareStrategy::kHashTopic},
  };
  for (const auto& [n, s] : kNames) {
    if (n == name) {
      *strategy = s;
      return true;
    }
  }
  return false;
}

SharedGroups::SharedGroups() = default;
SharedGroups::~SharedGroups() = default;

uint64_t SharedGroups::Join(std::string_view group, std::string_view filter, const Member& member,
                            bool* created, bool* added) {
  auto [it, inserted] = ids_.try_emplace(GroupKey(group, filter), 0);
  *created = inserted;
  if (inserted) {
    it->second = kSharedGroupBit | next_id_++;
    auto g = std::make_unique<Group>();
    g->name = std::string(group);
    g->filter = std::string(filter);
    groups_.emplace(it->second, std::move(g));
  }
  std::vector<Member>& members = groups_.at(it->second)->members;
  *added = false;
  for (Member& existing : members) {
    if (existing.session_id == member.session_id) {
      existing = member;
      return it->second;
    }
  }
  members.push_back(member);
  *added = true;
  return it->second;
}

bool SharedGroups::Leave(std::string_view group, std::string_view filter, uint64_t session_id,
                         Member* removed, uint64_t* emptied) {
  *emptied = 0;
  auto id = ids_.find(GroupKey(group, filter));
  if (id == ids_.end()) return false;
  std::vector<Member>& members = groups_.at(id->second)->members;
  auto it = std::find_if(members.begin(), members.end(),
                         [session_id](const Member& m) { return m.session_id == session_id; });
  if (it == members.end()) return false;
  *removed = std::move(*it);
  members.erase(it);
  if (members.empty()) {
    *emptied = id->second;
    groups_.erase(id->second);
    ids_.erase(id);
  }
  return true;
}

uint64_t SharedGroups::Find(std::string_view group, std::string_view filter) const {
  auto it = ids_.find(GroupKey(group, filter));
  return it == ids_.end() ? 0 : it->second;
}

std::pair<std::string_view, std::string_view> SharedGroups::NameOf(uint64_t group_id) const {
  auto it = groups_.find(group_id);
  if (it == groups_.end()) return {};
  return {it->second->name, it->second->filter};
}

// Every strategy draws a number; each pass takes the sticky member (kSticky) if eligible, else
// the eligible member at the draw modulo their number, so that the members a pass may take
// share evenly (a node member or an offline one in between does not tilt the choice).
std::optional<SharedGroups::Member> SharedGroups::Select(uint64_t group_id,
                                                         const Choice& choice) const {
  auto it = groups_.find(group_id);
  if (it == groups_.end() || it->second->members.empty()) return std::nullopt;
  const Group& g = *it->second;
  const std::vector<Member>& members = g.members;
  const bool sticky = choice.strategy == ShareStrategy::kSticky;
  const uint64_t sticky_id = sticky ? g.sticky.load(std::memory_order_relaxed) : 0;
  const uint64_t draw = Draw(choice, g.next);
  for (const Pass& pass : choice.passes) {
    size_t eligible = 0;
    for (const Member& m : members) {
      if (!Eligible(m, pass, choice.exclude)) continue;
      if (sticky_id != 0 && m.session_id == sticky_id) return m;
      ++eligible;
    }
    if (eligible == 0) continue;
    uint64_t skip = draw % eligible;
    for (const Member& m : members) {
      if (!Eligible(m, pass, choice.exclude) || skip-- != 0) continue;
      if (sticky) g.sticky.store(m.session_id, std::memory_order_relaxed);
      return m;
    }
  }
  return std::nullopt;
}

}  // namespace mqtt
