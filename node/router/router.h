// Router: where a published message goes. One object per node owns the subscription trie, the
// shared-subscription groups, the retained index and the routes of remote nodes, with their
// locks, and answers a publish with targets:
// - sessions of this node (with their worker), one per session however many of its filters
//   match, at the highest QoS granted among them, carrying all their subscription identifiers
//   [MQTT-3.3.4-3], [MQTT-3.3.4-5]; No Local excludes only the publisher's own subscription
//   [MQTT-3.8.3-3];
// - one member per shared group (strategy: ShareStrategy);
// - remote nodes holding a matching route, once per node whatever the number of their routes
//   (the node matches again against its own sessions).
//
// Threading: every method may be called from any thread. Subscribe/Unsubscribe/AddNodeRoute/
// RemoveNodeRoute/SetRetained take a writer lock; Route, Redistribute and RetainedMatching a
// reader lock, released before any visitor call, so a visitor may call back into the router.
// Route allocates nothing in the steady state (per-thread scratch).
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
  // A remote node with at least one matching route: it gets one copy. `durable`: at least one
  // of them is held by a persistent session there.
  virtual void ToNode(uint32_t node, bool durable) = 0;

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
  void Subscribe(std::string_view filter, const Subscriber& subscriber,
                 std::shared_ptr<const std::atomic<bool>> online) ABSL_LOCKS_EXCLUDED(mu_);
  void Unsubscribe(std::string_view filter, uint64_t session_id) ABSL_LOCKS_EXCLUDED(mu_);

  // Told, under the router's writer lock (so calls for one filter arrive in order), when a plain
  // (not shared) local subscription is added or removed, with its session's persistence: the
  // cluster turns these into this node's routes. Must be quick and must not call the router.
  // Replacing the options of an existing subscription is not reported. Null: no listener.
  using LocalRouteListener =
      std::function<void(std::string_view filter, bool persistent, bool added)>;
  void SetLocalRouteListener(LocalRouteListener listener) ABSL_LOCKS_EXCLUDED(mu_);

  // Routes of remote node `node` (> 0, < 2^32): one entry per (filter, node, durable); the
  // cluster layer aggregates its own subscribers' filters before calling. `durable`: held by a
  // persistent session there. Returns false if nothing changed.
  bool AddNodeRoute(std::string_view filter, uint32_t node, bool durable = false)
      ABSL_LOCKS_EXCLUDED(mu_);
  bool RemoveNodeRoute(std::string_view filter, uint32_t node, bool durable = false)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Visits every target of `message` (see the file comment).
  void Route(const Message& message, RouteVisitor& visitor) const ABSL_LOCKS_EXCLUDED(mu_);

  // Another member of `shared_group` for a message that session `exclude` did not acknowledge;
  // nullopt when the group has no other member.
  std::optional<SessionTarget> Redistribute(const Message& message, uint64_t shared_group,
                                            uint64_t exclude) const ABSL_LOCKS_EXCLUDED(mu_);

  // Retained messages: Set with an empty payload deletes [MQTT-3.3.1-10].
  void SetRetained(MessagePtr message) ABSL_LOCKS_EXCLUDED(retained_mu_);
  std::vector<MessagePtr> RetainedMatching(std::string_view filter) const
      ABSL_LOCKS_EXCLUDED(retained_mu_);
  size_t retained_count() const ABSL_LOCKS_EXCLUDED(retained_mu_);

  size_t subscription_count() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  static SessionTarget MemberTarget(const Message& message, uint64_t group,
                                    const SharedGroups::Member& member);

  const ShareStrategy share_strategy_;
  mutable absl::Mutex mu_;
  TopicTree subscriptions_ ABSL_GUARDED_BY(mu_);
  // Select() only reads membership and updates atomics: a reader lock is enough for it.
  SharedGroups shared_groups_ ABSL_GUARDED_BY(mu_);
  LocalRouteListener local_route_listener_ ABSL_GUARDED_BY(mu_);
  mutable absl::Mutex retained_mu_;
  RetainedStore retained_ ABSL_GUARDED_BY(retained_mu_);
};

}  // namespace mqtt
