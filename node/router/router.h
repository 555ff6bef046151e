// SPDX-License-Identifier: Apache-2.0
// Router: where a published message goes. One object per node owns the subscription trie, the
// shared-subscription groups, the retained index and the routes of remote nodes, with their
// locks, and answers a publish with targets:
// - sessions of this node (with their worker), one per session however many of its filters
//   match, at the highest QoS granted among them, carrying all their subscription identifiers
//   [MQTT-3.3.4-3], [MQTT-3.3.4-5]; No Local excludes only the publisher's own subscription
//   [MQTT-3.8.3-3];
// - one member per shared group (strategy: ShareStrategy), cluster-wide: a member is a session
//   of this node or a remote node holding members of the group; a node member chosen gets the
//   message for that group, and there RouteToGroup picks one of its sessions, so exactly one
//   member in the cluster receives it (5.0 section 4.8.2);
// - remote nodes holding a matching plain route, once per node whatever the number of their
//   routes (the node matches again against its own plain subscriptions: RouteLocal).
//
// Threading: every method may be called from any thread. Subscribe/Unsubscribe/AddNodeRoute/
// RemoveNodeRoute/SetNodeGroupMember/RemoveNodeGroupMember/SetRetained take a writer lock
// (Subscribe with `retained`: the retained store's reader lock around the trie's writer lock);
// Route, RouteLocal, RouteToGroup, Redistribute and RetainedMatching a reader lock, released
// before any visitor call, so a visitor may call back into the router. Route allocates nothing
// in the steady state (per-thread scratch) unless it picks a node member of a group.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "node/protocol/message.h"
#include "node/router/retained_store.h"
#include "node/router/shared_subscriptions.h"
#include "node/router/topic_tree.h"

namespace mqtt {

// A session of this node that gets a copy of the message.
struct SessionTarget {
  uint32_t worker = 0;
  uint64_t session_id = 0;
  uint8_t qos = 0;                         // min(message QoS, highest granted) [MQTT-3.8.4-6]
  bool retain = false;                     // the RETAIN flag this receiver sees
  uint64_t shared_group = 0;               // non-zero: chosen as a member of this shared group
  std::vector<uint32_t> subscription_ids;  // 5.0, of the matching subscriptions
  // The client id of a persistent session, null otherwise. Valid during the visit only.
  const std::string* durable_client_id = nullptr;
};

// Receives the targets of one publish, after the router's locks are released. A target is
// valid during the call only (the router reuses it for the next one).
class RouteVisitor {
 public:
  virtual void ToSession(const SessionTarget& target) = 0;
  // A remote node with at least one matching plain route: it gets one copy. `durable`: at least
  // one of them is held by a persistent session there.
  virtual void ToNode(uint32_t node, bool durable) = 0;
  // A remote node chosen as the member of shared group `group` with `filter`: it gets a copy for
  // that group alone (besides any plain copy). `durable`: a persistent session there is a
  // member. The views are valid during the call only.
  virtual void ToNodeShared(uint32_t node, bool durable, std::string_view group,
                            std::string_view filter) = 0;

 protected:
  ~RouteVisitor() = default;
};

// Node ids of remote routes occupy this bit of a trie entry's id (local session ids count up
// from 1 and never reach it; shared groups use kSharedGroupBit), with kDurableRouteBit for the
// routes of persistent sessions.
inline constexpr uint64_t kNodeRouteBit = uint64_t{1} << 62;
inline constexpr uint64_t kDurableRouteBit = uint64_t{1} << 40;

class Router {
 public:
  explicit Router(ShareStrategy share_strategy) : share_strategy_(share_strategy) {}
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // A local subscription. `filter` is valid and may be shared ($share/group/filter,
  // $queue/filter). `online` is the session's connected flag (shared groups prefer online
  // members); may be null for a plain filter.
  // `retained`, for a plain filter whose retained messages are to be sent: the retained messages
  // matching it are appended, taken together with the insertion (one step as far as SetRetained
  // is concerned), so that a retained publish racing the SUBSCRIBE reaches the subscription
  // once: in `retained` if SetRetained ran before (Route then skips the subscription for it),
  // else live. `retained->seq`: the retained sequence it saw (for RefreshRetained).
  struct RetainedSnapshot {
    std::vector<MessagePtr> messages;
    uint64_t seq = 0;
  };
  void Subscribe(std::string_view filter, const Subscriber& subscriber,
                 std::shared_ptr<const std::atomic<bool>> online,
                 RetainedSnapshot* retained = nullptr) ABSL_LOCKS_EXCLUDED(mu_, retained_mu_);
  void Unsubscribe(std::string_view filter, uint64_t session_id) ABSL_LOCKS_EXCLUDED(mu_);

  // Told, under the router's writer lock (so calls for one filter arrive in order), when a local
  // subscription is added or removed, with its session's persistence: the cluster turns these
  // into this node's routes. `shared_group` is empty for a plain filter, else the group of a
  // member that joined or left (`filter` then without the $share/{group}/ or $queue/ prefix;
  // $queue's group is "$queue"). Must be quick and must not call the router. Replacing the
  // options of an existing subscription or member is not reported. Null: no listener.
  using LocalRouteListener = std::function<void(
      std::string_view filter, std::string_view shared_group, bool persistent, bool added)>;
  void SetLocalRouteListener(LocalRouteListener listener) ABSL_LOCKS_EXCLUDED(mu_);

  // Routes of remote node `node` (> 0, < 2^32): one entry per (filter, node, durable); the
  // cluster layer aggregates its own subscribers' filters before calling. `durable`: held by a
  // persistent session there. Returns false if nothing changed.
  bool AddNodeRoute(std::string_view filter, uint32_t node, bool durable = false)
      ABSL_LOCKS_EXCLUDED(mu_);
  bool RemoveNodeRoute(std::string_view filter, uint32_t node, bool durable = false)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Remote node `node` holds members of shared group `group` with `filter`: it becomes one
  // member of the group here, however many it holds (the cluster layer aggregates), created or
  // updated with `durable` (one of them is a persistent session there). A group with node
  // members only still matches, so that a message published here reaches them. Set: true if the
  // node became a member (false: it was one, its durability is updated). Remove: false if it
  // was not a member.
  // `node_alive` (may be null: always alive) says whether the node is up: a dead node's member
  // is passed over like an offline session while another member is online.
  bool SetNodeGroupMember(std::string_view group, std::string_view filter, uint32_t node,
                          bool durable,
                          std::shared_ptr<const std::atomic<bool>> node_alive = nullptr)
      ABSL_LOCKS_EXCLUDED(mu_);
  bool RemoveNodeGroupMember(std::string_view group, std::string_view filter, uint32_t node)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Shared groups: when on, a group picks an online local member if it has one, and a node
  // member only otherwise (fewer hops, at the cost of an even spread). Off by default; applies
  // from the next message.
  void set_prefer_local_members(bool on) { prefer_local_.store(on, std::memory_order_relaxed); }

  // Visits every target of `message` (see the file comment). `retained_seq`: what SetRetained
  // returned for this message, 0 if it is not a retained publish set here: subscriptions whose
  // SUBSCRIBE already got it from the retained store are skipped (Subscribe).
  void Route(const Message& message, RouteVisitor& visitor, uint64_t retained_seq = 0) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // A plain copy forwarded by another node: only this node's plain subscriptions (the sender
  // chose the groups' members and sends their copies apart; nothing goes to other nodes).
  // `retained_seq` as for Route: RetainedSeqOf(message) for a retained publish.
  void RouteLocal(const Message& message, RouteVisitor& visitor, uint64_t retained_seq = 0) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // A copy another node sent for shared group `group` with `filter`: one member of that group,
  // a local online one if any (never a plain subscriber: they get the plain copy); else, if
  // `may_pass_on`, a node member (ToNodeShared: no member here is online, e.g. the last one left
  // after the sender chose this node); else an offline local one (a persistent session queues
  // it). False when the group has no such member (the message is not delivered).
  bool RouteToGroup(const Message& message, std::string_view group, std::string_view filter,
                    bool may_pass_on, RouteVisitor& visitor) const ABSL_LOCKS_EXCLUDED(mu_);

  // Another local member of `shared_group` for a message that session `exclude` did not
  // acknowledge; nullopt when the group has no other local member. Local only: node members
  // are not asked (the message is already on this node and stays within its sessions).
  std::optional<SessionTarget> Redistribute(const Message& message, uint64_t shared_group,
                                            uint64_t exclude) const ABSL_LOCKS_EXCLUDED(mu_);

  // Retained messages: Set with an empty payload deletes [MQTT-3.3.1-10]. Returns the set's
  // sequence number (1, 2, ...: the order of the sets), for Route. `routed_here`: the caller
  // routes the message here next (a publish made on this node), as opposed to a copy another
  // node replicated (RefreshRetained tells them apart).
  uint64_t SetRetained(MessagePtr message, bool routed_here = true)
      ABSL_LOCKS_EXCLUDED(retained_mu_);
  std::vector<MessagePtr> RetainedMatching(std::string_view filter) const
      ABSL_LOCKS_EXCLUDED(retained_mu_);
  // For messages a SUBSCRIBE took (Subscribe, at sequence `seen`) and sends only now: replaces
  // each by what to send now, under one lock: the same message if its topic was not set since;
  // null if the topic has no retained message now, or one set since by a publish routed here
  // (the subscription got it live); else (set since by another node: no live copy came from
  // here) the topic's current message.
  void RefreshRetained(uint64_t seen, absl::Span<MessagePtr> messages) const
      ABSL_LOCKS_EXCLUDED(retained_mu_);
  size_t retained_count() const ABSL_LOCKS_EXCLUDED(retained_mu_);
  // For a retained publish another node made and forwarded here: the sequence at which this
  // node's store took its replicated copy (the same publish: same Message::origin), 0 if the
  // store holds another message for the topic (or the copy has not come yet, or the message has
  // no origin). A SUBSCRIBE after that sequence got the copy from the store: RouteLocal skips it.
  uint64_t RetainedSeqOf(const Message& message) const ABSL_LOCKS_EXCLUDED(retained_mu_);

  size_t subscription_count() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Scratch;  // router.cc
  void AddPlain(std::string_view filter, const Subscriber& subscriber)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SubscribeWithRetained(std::string_view filter, Subscriber subscriber,
                             RetainedSnapshot& retained) ABSL_LOCKS_EXCLUDED(mu_, retained_mu_);
  static Scratch& ThreadScratch();
  void Collect(const Message& message, bool groups_and_nodes, uint64_t retained_seq,
               Scratch& scratch) const ABSL_LOCKS_EXCLUDED(mu_);
  static SessionTarget MemberTarget(const Message& message, uint64_t group,
                                    const SharedGroups::Member& member);

  const ShareStrategy share_strategy_;
  std::atomic<bool> prefer_local_{false};
  mutable absl::Mutex mu_;
  TopicTree subscriptions_ ABSL_GUARDED_BY(mu_);
  // Select() only reads membership and updates atomics: a reader lock is enough for it.
  SharedGroups shared_groups_ ABSL_GUARDED_BY(mu_);
  LocalRouteListener local_route_listener_ ABSL_GUARDED_BY(mu_);
  mutable absl::Mutex retained_mu_;
  RetainedStore retained_ ABSL_GUARDED_BY(retained_mu_);
  uint64_t retained_seq_ ABSL_GUARDED_BY(retained_mu_) = 0;  // of the last SetRetained
};

}  // namespace mqtt
