// SPDX-License-Identifier: Apache-2.0
#include "node/router/router.h"

#include <algorithm>
#include <utility>

namespace mqtt {

// What one Route() call collects under the reader lock, reused per thread so that routing
// allocates nothing in the steady state. Route() moves it out while it runs, so a visitor that
// routes again (on the same thread) gets a fresh one instead of corrupting this one.
struct Router::Scratch {
  // A node picked as a group's member, with copies of the group's names (the group may go once
  // the lock is released). Elements are reused, keeping their strings' capacity.
  struct NodeShare {
    uint32_t node = 0;
    bool durable = false;
    std::string group;
    std::string filter;
  };
  std::vector<Subscriber> sessions;
  std::vector<std::pair<uint64_t, SharedGroups::Member>> shared;  // group id, picked local member
  std::vector<NodeShare> node_shares;                             // [0, node_share_count)
  size_t node_share_count = 0;
  std::vector<uint64_t> nodes;  // node | kDurableRouteBit
  SessionTarget target;         // reused for every session: its id vector keeps its capacity
};

namespace {

using Pass = SharedGroups::Pass;
using Kind = SharedGroups::Kind;

// Member choice of a publish made here: online first, then anyone (persistent sessions queue).
constexpr Pass kPublishPasses[] = {{Kind::kAny, true, false}, {Kind::kAny, false, false}};
// The same with a local online member ahead of everyone.
constexpr Pass kPreferLocalPasses[] = {
    {Kind::kLocal, true, false}, {Kind::kAny, true, false}, {Kind::kAny, false, false}};
// A copy another node chose this node for: keep it here if a local member is online, else pass
// it on to a node that has one, else queue it for an offline local member.
constexpr Pass kPassOnPasses[] = {
    {Kind::kLocal, true, false}, {Kind::kNode, false, false}, {Kind::kLocal, false, false}};
// Local members only (a copy passed on once already; a redistributed message).
constexpr Pass kLocalPasses[] = {{Kind::kLocal, true, false}, {Kind::kLocal, false, false}};

SharedGroups::Choice ChoiceFor(ShareStrategy strategy, const Message& message,
                               absl::Span<const Pass> passes, uint64_t exclude = 0) {
  SharedGroups::Choice choice;
  choice.strategy = strategy;
  choice.publisher_id = message.publisher_id;
  choice.topic = message.topic;
  choice.exclude = exclude;
  choice.passes = passes;
  return choice;
}

bool IsNodeRoute(uint64_t id) { return (id & kNodeRouteBit) != 0 && (id & kSharedGroupBit) == 0; }

uint64_t NodeRouteId(uint32_t node, bool durable) {
  return kNodeRouteBit | (durable ? kDurableRouteBit : 0) | node;
}

// A node's id as a group member: durability is the member's attribute, not its identity, so
// that it may change without moving the node in the group's order.
uint64_t NodeMemberId(uint32_t node) { return kNodeRouteBit | node; }

// The trie entry standing for a whole group.
Subscriber GroupEntry(uint64_t group_id) {
  return Subscriber{group_id, 0, 2, false, false, 0, nullptr};
}

// Emits one target per session from `matches` sorted by session id.
void VisitSessions(const Message& message, std::vector<Subscriber>& matches, SessionTarget& target,
                   RouteVisitor& visitor) {
  // A filter's subscribers are in subscription order, which is mostly session id order: the
  // check costs far less than sorting the list of a large fan-out on every publish.
  const auto by_session = [](const Subscriber& a, const Subscriber& b) {
    return a.session_id < b.session_id;
  };
  if (!std::is_sorted(matches.begin(), matches.end(), by_session)) {
    std::sort(matches.begin(), matches.end(), by_session);
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

Router::Scratch& Router::ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

void Router::Subscribe(std::string_view filter, const Subscriber& subscriber,
                       std::shared_ptr<const std::atomic<bool>> online,
                       RetainedSnapshot* retained) {
  auto shared = ParseSharedFilter(filter);
  if (!shared.ok() || !shared->has_value()) {
    if (retained != nullptr) return SubscribeWithRetained(filter, subscriber, *retained);
    absl::MutexLock lock(&mu_);
    AddPlain(filter, subscriber);
    return;
  }
  const SharedFilter& share = **shared;
  absl::MutexLock lock(&mu_);
  bool created = false;
  bool added = false;
  uint64_t group = shared_groups_.Join(
      share.group, share.filter,
      {subscriber.session_id, subscriber.worker, subscriber.qos, subscriber.subscription_id,
       subscriber.durable_client_id, std::move(online)},
      &created, &added);
  if (created) subscriptions_.Subscribe(share.filter, GroupEntry(group));
  if (added && local_route_listener_) {
    local_route_listener_(share.filter, share.group, subscriber.durable_client_id != nullptr,
                          /*added=*/true);
  }
}

void Router::AddPlain(std::string_view filter, const Subscriber& subscriber) {
  if (subscriptions_.Subscribe(filter, subscriber) && local_route_listener_) {
    local_route_listener_(filter, {}, subscriber.durable_client_id != nullptr, /*added=*/true);
  }
}

// The reader lock on the retained store keeps SetRetained out from before the sequence is read
// until the matching messages are taken: a set is in both (below the sequence, and among the
// messages, or replaced by a newer one) or in neither. Lock order: retained_mu_, then mu_
// (nothing else holds both).
void Router::SubscribeWithRetained(std::string_view filter, Subscriber subscriber,
                                   RetainedSnapshot& retained) {
  absl::ReaderMutexLock retained_lock(&retained_mu_);
  subscriber.retained_seen = retained_seq_;
  retained.seq = retained_seq_;
  {
    absl::MutexLock lock(&mu_);
    AddPlain(filter, subscriber);
  }
  retained_.Match(filter,
                  [&retained](const MessagePtr& message) { retained.messages.push_back(message); });
}

void Router::Unsubscribe(std::string_view filter, uint64_t session_id) {
  absl::MutexLock lock(&mu_);
  auto shared = ParseSharedFilter(filter);
  if (!shared.ok() || !shared->has_value()) {
    Subscriber removed;
    if (subscriptions_.Unsubscribe(filter, session_id, &removed) && local_route_listener_) {
      local_route_listener_(filter, {}, removed.durable_client_id != nullptr, /*added=*/false);
    }
    return;
  }
  const SharedFilter& share = **shared;
  SharedGroups::Member removed;
  uint64_t emptied = 0;
  if (!shared_groups_.Leave(share.group, share.filter, session_id, &removed, &emptied)) return;
  if (emptied != 0) subscriptions_.Unsubscribe(share.filter, emptied);
  if (local_route_listener_) {
    local_route_listener_(share.filter, share.group, removed.durable_client_id != nullptr,
                          /*added=*/false);
  }
}

void Router::SetLocalRouteListener(LocalRouteListener listener) {
  absl::MutexLock lock(&mu_);
  local_route_listener_ = std::move(listener);
}

bool Router::AddNodeRoute(std::string_view filter, uint32_t node, bool durable) {
  absl::MutexLock lock(&mu_);
  return subscriptions_.Subscribe(
      filter, Subscriber{NodeRouteId(node, durable), 0, 2, false, false, 0, nullptr});
}

bool Router::RemoveNodeRoute(std::string_view filter, uint32_t node, bool durable) {
  absl::MutexLock lock(&mu_);
  return subscriptions_.Unsubscribe(filter, NodeRouteId(node, durable));
}

bool Router::SetNodeGroupMember(std::string_view group, std::string_view filter, uint32_t node,
                                bool durable, std::shared_ptr<const std::atomic<bool>> node_alive) {
  SharedGroups::Member member;
  member.session_id = NodeMemberId(node);
  member.qos = 2;
  member.node = node;
  member.durable = durable;
  member.online = std::move(node_alive);
  absl::MutexLock lock(&mu_);
  bool created = false;
  bool added = false;
  const uint64_t id = shared_groups_.Join(group, filter, member, &created, &added);
  if (created) subscriptions_.Subscribe(filter, GroupEntry(id));
  return added;
}

bool Router::RemoveNodeGroupMember(std::string_view group, std::string_view filter, uint32_t node) {
  absl::MutexLock lock(&mu_);
  SharedGroups::Member removed;
  uint64_t emptied = 0;
  if (!shared_groups_.Leave(group, filter, NodeMemberId(node), &removed, &emptied)) return false;
  if (emptied != 0) subscriptions_.Unsubscribe(filter, emptied);
  return true;
}

// Fills `scratch` under the reader lock: the matching sessions and, if `groups_and_nodes`, each
// matching group's member (resolved while its membership cannot change) and the matching nodes.
void Router::Collect(const Message& message, bool groups_and_nodes, uint64_t retained_seq,
                     Scratch& scratch) const {
  scratch.sessions.clear();
  scratch.shared.clear();
  scratch.nodes.clear();
  scratch.node_share_count = 0;
  absl::ReaderMutexLock lock(&mu_);
  subscriptions_.Match(
      message.topic, [&scratch, groups_and_nodes, retained_seq](const Subscriber& s) {
        if ((s.session_id & kSharedGroupBit) != 0) {
          if (groups_and_nodes) scratch.shared.push_back({s.session_id, {}});
        } else if (IsNodeRoute(s.session_id)) {
          if (groups_and_nodes) scratch.nodes.push_back(s.session_id & ~kNodeRouteBit);
        } else if (retained_seq == 0 || s.retained_seen < retained_seq) {
          scratch.sessions.push_back(s);  // copies durable_client_id: valid after the lock
        }
      });
  if (scratch.shared.empty()) return;
  const SharedGroups::Choice choice = ChoiceFor(share_strategy_, message,
                                                prefer_local_.load(std::memory_order_relaxed)
                                                    ? absl::Span<const Pass>(kPreferLocalPasses)
                                                    : kPublishPasses);
  for (auto& [group, member] : scratch.shared) {
    std::optional<SharedGroups::Member> picked = shared_groups_.Select(group, choice);
    if (!picked) continue;
    if (picked->node == 0) {
      member = std::move(*picked);
      continue;
    }
    if (scratch.node_share_count == scratch.node_shares.size()) scratch.node_shares.emplace_back();
    Scratch::NodeShare& share = scratch.node_shares[scratch.node_share_count++];
    share.node = picked->node;
    share.durable = picked->durable;
    const auto [name, filter] = shared_groups_.NameOf(group);
    share.group.assign(name);
    share.filter.assign(filter);
  }
}

void Router::Route(const Message& message, RouteVisitor& visitor, uint64_t retained_seq) const {
  Scratch scratch = std::move(ThreadScratch());
  Collect(message, /*groups_and_nodes=*/true, retained_seq, scratch);
  VisitSessions(message, scratch.sessions, scratch.target, visitor);
  for (const auto& [group, member] : scratch.shared) {
    if (member.session_id == 0) continue;  // none, or a node (below)
    visitor.ToSession(MemberTarget(message, group, member));
  }
  for (size_t i = 0; i < scratch.node_share_count; ++i) {
    const Scratch::NodeShare& share = scratch.node_shares[i];
    visitor.ToNodeShared(share.node, share.durable, share.group, share.filter);
  }
  VisitNodes(scratch.nodes, visitor);
  ThreadScratch() = std::move(scratch);
}

void Router::RouteLocal(const Message& message, RouteVisitor& visitor,
                        uint64_t retained_seq) const {
  Scratch scratch = std::move(ThreadScratch());
  Collect(message, /*groups_and_nodes=*/false, retained_seq, scratch);
  VisitSessions(message, scratch.sessions, scratch.target, visitor);
  ThreadScratch() = std::move(scratch);
}

bool Router::RouteToGroup(const Message& message, std::string_view group, std::string_view filter,
                          bool may_pass_on, RouteVisitor& visitor) const {
  const SharedGroups::Choice choice = ChoiceFor(
      share_strategy_, message, may_pass_on ? absl::Span<const Pass>(kPassOnPasses) : kLocalPasses);
  uint64_t id = 0;
  std::optional<SharedGroups::Member> member;
  {
    absl::ReaderMutexLock lock(&mu_);
    id = shared_groups_.Find(group, filter);
    if (id != 0) member = shared_groups_.Select(id, choice);
  }
  if (!member) return false;
  if (member->node != 0) {
    visitor.ToNodeShared(member->node, member->durable, group, filter);
  } else {
    visitor.ToSession(MemberTarget(message, id, *member));  // `member` holds its client id
  }
  return true;
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
  const SharedGroups::Choice choice = ChoiceFor(share_strategy_, message, kLocalPasses, exclude);
  std::optional<SharedGroups::Member> member;
  {
    absl::ReaderMutexLock lock(&mu_);
    member = shared_groups_.Select(shared_group, choice);
  }
  if (!member) return std::nullopt;
  SessionTarget target = MemberTarget(message, shared_group, *member);
  target.durable_client_id = nullptr;  // the member's string dies with `member`
  return target;
}

// A store entry's stamp: the set's sequence, and whether its publish is routed here (low bit).
uint64_t Router::SetRetained(MessagePtr message, bool routed_here) {
  absl::MutexLock lock(&retained_mu_);
  const uint64_t seq = ++retained_seq_;
  retained_.Set(std::move(message), seq << 1 | (routed_here ? 1 : 0));
  return seq;
}

std::vector<MessagePtr> Router::RetainedMatching(std::string_view filter) const {
  std::vector<MessagePtr> result;
  absl::ReaderMutexLock lock(&retained_mu_);
  retained_.Match(filter, [&result](const MessagePtr& message) { result.push_back(message); });
  return result;
}

void Router::RefreshRetained(uint64_t seen, absl::Span<MessagePtr> messages) const {
  absl::ReaderMutexLock lock(&retained_mu_);
  for (MessagePtr& message : messages) {
    const MessagePtr taken = std::move(message);  // keeps the topic alive for Find
    uint64_t stamp = 0;
    if (!retained_.Find(taken->topic, &message, &stamp)) continue;  // none now: null
    const bool set_since = (stamp >> 1) > seen;
    if (set_since && (stamp & 1) != 0) message = nullptr;  // routed to the subscription live
  }
}

uint64_t Router::RetainedSeqOf(const Message& message) const {
  if (message.origin.empty()) return 0;
  absl::ReaderMutexLock lock(&retained_mu_);
  MessagePtr current;
  uint64_t stamp = 0;
  if (!retained_.Find(message.topic, &current, &stamp) || current->origin != message.origin) {
    return 0;
  }
  return stamp >> 1;
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
