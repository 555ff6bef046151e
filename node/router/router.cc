#include "node/router/router.h"

#include <algorithm>
#include <utility>

namespace mqtt {
namespace {

// What one Route() call collects under the reader lock, reused per thread so that routing
// allocates nothing in the steady state. Route() moves it out while it runs, so a visitor that
// routes again (on the same thread) gets a fresh one instead of corrupting this one.
struct RouteScratch {
  std::vector<Subscriber> sessions;
  std::vector<std::pair<uint64_t, SharedGroups::Member>> shared;  // group id, picked member
  std::vector<uint64_t> nodes;                                    // node | kDurableRouteBit
  SessionTarget target;  // reused for every session: its id vector keeps its capacity
};

RouteScratch& ThreadScratch() {
  thread_local RouteScratch scratch;
  return scratch;
}

bool IsNodeRoute(uint64_t id) { return (id & kNodeRouteBit) != 0 && (id & kSharedGroupBit) == 0; }

// Emits one target per session from `matches` sorted by session id.
void VisitSessions(const Message& message, std::vector<Subscriber>& matches, SessionTarget& target,
                   RouteVisitor& visitor) {
  if (matches.size() > 1) {
    std::sort(matches.begin(), matches.end(),
              [](const Subscriber& a, const Subscriber& b) { return a.session_id < b.session_id; });
  }
  for (size_t i = 0; i < matches.size();) {
    const Subscriber& first = matches[i];
    target.worker = first.worker;
    target.session_id = first.session_id;
    target.shared_group = 0;
    target.subscription_ids.clear();
    target.durable_client_id = nullptr;
    uint8_t granted = 0;
    bool retain_as_published = false;
    bool matched = false;
    size_t j = i;
    for (; j < matches.size() && matches[j].session_id == first.session_id; ++j) {
      const Subscriber& s = matches[j];
      // No Local: this subscription does not match the session's own messages
      // [MQTT-3.8.3-3]; its other subscriptions still may.
      if (s.no_local && s.session_id == message.publisher_session_id) continue;
      matched = true;
      if (s.durable_client_id != nullptr) target.durable_client_id = s.durable_client_id.get();
      granted = std::max(granted, s.qos);
      retain_as_published |= s.retain_as_published;
      if (s.subscription_id != 0) target.subscription_ids.push_back(s.subscription_id);
    }
    i = j;
    if (!matched) continue;
    target.qos = std::min(message.qos, granted);            // [MQTT-3.8.4-6]
    target.retain = retain_as_published && message.retain;  // [MQTT-3.3.1-9], [MQTT-3.3.1-12]
    visitor.ToSession(target);
  }
}

// One visit per node, durable if any of its matching routes is.
void VisitNodes(std::vector<uint64_t>& nodes, RouteVisitor& visitor) {
  if (nodes.size() > 1) {
    std::sort(nodes.begin(), nodes.end(), [](uint64_t a, uint64_t b) {
      return static_cast<uint32_t>(a) < static_cast<uint32_t>(b);
    });
  }
  for (size_t i = 0; i < nodes.size();) {
    const uint32_t node = static_cast<uint32_t>(nodes[i]);
    bool durable = false;
    for (; i < nodes.size() && static_cast<uint32_t>(nodes[i]) == node; ++i) {
      durable |= (nodes[i] & kDurableRouteBit) != 0;
    }
    visitor.ToNode(node, durable);
  }
}

}  // namespace

void Router::Subscribe(std::string_view filter, const Subscriber& subscriber,
                       std::shared_ptr<const std::atomic<bool>> online) {
  absl::MutexLock lock(&mu_);
  auto shared = ParseSharedFilter(filter);
  if (!shared.ok() || !shared->has_value()) {
    if (subscriptions_.Subscribe(filter, subscriber) && local_route_listener_) {
      local_route_listener_(filter, subscriber.durable_client_id != nullptr, /*added=*/true);
    }
    return;
  }
  const SharedFilter& share = **shared;
  bool created = false;
  uint64_t group = shared_groups_.Join(
      share.group, share.filter,
      {subscriber.session_id, subscriber.worker, subscriber.qos, subscriber.subscription_id,
       subscriber.durable_client_id, std::move(online)},
      &created);
  if (created) {
    subscriptions_.Subscribe(share.filter, Subscriber{group, 0, 2, false, false, 0, nullptr});
  }
}

void Router::Unsubscribe(std::string_view filter, uint64_t session_id) {
  absl::MutexLock lock(&mu_);
  auto shared = ParseSharedFilter(filter);
  if (!shared.ok() || !shared->has_value()) {
    Subscriber removed;
    if (subscriptions_.Unsubscribe(filter, session_id, &removed) && local_route_listener_) {
      local_route_listener_(filter, removed.durable_client_id != nullptr, /*added=*/false);
    }
    return;
  }
  const SharedFilter& share = **shared;
  if (uint64_t empty_group = shared_groups_.Leave(share.group, share.filter, session_id)) {
    subscriptions_.Unsubscribe(share.filter, empty_group);
  }
}

void Router::SetLocalRouteListener(LocalRouteListener listener) {
  absl::MutexLock lock(&mu_);
  local_route_listener_ = std::move(listener);
}

namespace {

uint64_t NodeRouteId(uint32_t node, bool durable) {
  return kNodeRouteBit | (durable ? kDurableRouteBit : 0) | node;
}

}  // namespace

bool Router::AddNodeRoute(std::string_view filter, uint32_t node, bool durable) {
  absl::MutexLock lock(&mu_);
  return subscriptions_.Subscribe(
      filter, Subscriber{NodeRouteId(node, durable), 0, 2, false, false, 0, nullptr});
}

bool Router::RemoveNodeRoute(std::string_view filter, uint32_t node, bool durable) {
  absl::MutexLock lock(&mu_);
  return subscriptions_.Unsubscribe(filter, NodeRouteId(node, durable));
}

void Router::Route(const Message& message, RouteVisitor& visitor) const {
  RouteScratch scratch = std::move(ThreadScratch());
  scratch.sessions.clear();
  scratch.shared.clear();
  scratch.nodes.clear();
  {
    absl::ReaderMutexLock lock(&mu_);
    subscriptions_.Match(message.topic, [&scratch](const Subscriber& s) {
      if ((s.session_id & kSharedGroupBit) != 0) {
        scratch.shared.push_back({s.session_id, {}});
      } else if (IsNodeRoute(s.session_id)) {
        scratch.nodes.push_back(s.session_id & ~kNodeRouteBit);
      } else {
        scratch.sessions.push_back(s);  // copies durable_client_id: valid after the lock
      }
    });
    // Each group resolves to one member while its membership cannot change.
    for (auto& [group, member] : scratch.shared) {
      auto picked =
          shared_groups_.Select(group, share_strategy_, message.publisher_id, message.topic);
      if (picked) member = std::move(*picked);
    }
  }
  VisitSessions(message, scratch.sessions, scratch.target, visitor);
  for (const auto& [group, member] : scratch.shared) {
    if (member.session_id == 0) continue;
    visitor.ToSession(MemberTarget(message, group, member));
  }
  VisitNodes(scratch.nodes, visitor);
  ThreadScratch() = std::move(scratch);
}

SessionTarget Router::MemberTarget(const Message& message, uint64_t group,
                                   const SharedGroups::Member& member) {
  SessionTarget target;
  target.worker = member.worker;
  target.session_id = member.session_id;
  target.qos = std::min(message.qos, member.qos);
  target.shared_group = group;
  if (member.subscription_id != 0) target.subscription_ids.push_back(member.subscription_id);
  target.durable_client_id = member.durable_client_id.get();
  return target;
}

std::optional<SessionTarget> Router::Redistribute(const Message& message, uint64_t shared_group,
                                                  uint64_t exclude) const {
  std::optional<SharedGroups::Member> member;
  {
    absl::ReaderMutexLock lock(&mu_);
    member = shared_groups_.Select(shared_group, share_strategy_, message.publisher_id,
                                   message.topic, exclude);
  }
  if (!member || member->session_id == exclude) return std::nullopt;
  SessionTarget target = MemberTarget(message, shared_group, *member);
  target.durable_client_id = nullptr;  // the member's string dies with `member`
  return target;
}

void Router::SetRetained(MessagePtr message) {
  absl::MutexLock lock(&retained_mu_);
  retained_.Set(std::move(message));
}

std::vector<MessagePtr> Router::RetainedMatching(std::string_view filter) const {
  std::vector<MessagePtr> result;
  absl::ReaderMutexLock lock(&retained_mu_);
  retained_.Match(filter, [&result](const MessagePtr& message) { result.push_back(message); });
  return result;
}

size_t Router::retained_count() const {
  absl::ReaderMutexLock lock(&retained_mu_);
  return retained_.size();
}

size_t Router::subscription_count() const {
  absl::ReaderMutexLock lock(&mu_);
  return subscriptions_.size();
}

}  // namespace mqtt
