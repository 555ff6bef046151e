#include "node/router/shared_subscriptions.h"

#include <functional>
#include <random>

#include "absl/strings/str_cat.h"

namespace mqtt {

struct SharedGroups::Group {
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

bool IsOnline(const SharedGroups::Member& member) {
  return member.online != nullptr && member.online->load(std::memory_order_relaxed);
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
                            bool* created) {
  auto [it, inserted] = ids_.try_emplace(GroupKey(group, filter), 0);
  *created = inserted;
  if (inserted) {
    it->second = kSharedGroupBit | next_id_++;
    groups_.emplace(it->second, std::make_unique<Group>());
  }
  std::vector<Member>& members = groups_.at(it->second)->members;
  for (Member& existing : members) {
    if (existing.session_id == member.session_id) {
      existing = member;
      return it->second;
    }
  }
  members.push_back(member);
  return it->second;
}

uint64_t SharedGroups::Leave(std::string_view group, std::string_view filter, uint64_t session_id) {
  auto id = ids_.find(GroupKey(group, filter));
  if (id == ids_.end()) return 0;
  std::vector<Member>& members = groups_.at(id->second)->members;
  std::erase_if(members, [session_id](const Member& m) { return m.session_id == session_id; });
  if (!members.empty()) return 0;
  uint64_t group_id = id->second;
  groups_.erase(group_id);
  ids_.erase(id);
  return group_id;
}

// Every strategy picks a starting position; the first eligible member from there wins, so all
// strategies share the online/exclude rules.
std::optional<SharedGroups::Member> SharedGroups::Select(uint64_t group_id, ShareStrategy strategy,
                                                         std::string_view publisher_id,
                                                         std::string_view topic,
                                                         uint64_t exclude) const {
  auto it = groups_.find(group_id);
  if (it == groups_.end() || it->second->members.empty()) return std::nullopt;
  const Group& g = *it->second;
  const std::vector<Member>& members = g.members;
  const size_t n = members.size();
  if (strategy == ShareStrategy::kSticky) {
    uint64_t sticky = g.sticky.load(std::memory_order_relaxed);
    for (const Member& m : members) {
      if (m.session_id == sticky && m.session_id != exclude && IsOnline(m)) return m;
    }
  }
  size_t start = 0;
  switch (strategy) {
    case ShareStrategy::kRoundRobin:
    case ShareStrategy::kSticky:
      start = g.next.fetch_add(1, std::memory_order_relaxed) % n;
      break;
    case ShareStrategy::kRandom: {
      thread_local std::minstd_rand random(std::random_device{}());
      start = random() % n;
      break;
    }
    case ShareStrategy::kHashClientId:
      start = std::hash<std::string_view>()(publisher_id) % n;
      break;
    case ShareStrategy::kHashTopic:
      start = std::hash<std::string_view>()(topic) % n;
      break;
  }
  // Passes: online and not excluded; then any not excluded; then anyone.
  for (int pass = 0; pass < 3; ++pass) {
    for (size_t i = 0; i < n; ++i) {
      const Member& m = members[(start + i) % n];
      if (pass < 2 && m.session_id == exclude) continue;
      if (pass == 0 && !IsOnline(m)) continue;
      if (strategy == ShareStrategy::kSticky) g.sticky.store(m.session_id);
      return m;
    }
  }
  return std::nullopt;
}

}  // namespace mqtt
