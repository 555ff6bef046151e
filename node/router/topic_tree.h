// SPDX-License-Identifier: Apache-2.0
// Subscription trie: topic filter -> subscribers, matched against a topic name on every publish.
//
// Contract: Subscribe/Unsubscribe add and remove one (filter, subscriber) entry; Match visits
// every entry whose filter matches the topic, once per entry (a subscriber with two matching
// filters is visited twice: de-duplication is the caller's policy). Empty nodes are pruned on
// Unsubscribe so the tree does not grow with churn.
// Thread-safety: none. The owner serializes writers and readers (the broker holds it under a
// reader/writer lock). Match does not allocate when the visitor does not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace mqtt {

// Who subscribed, and with which options. `session_id` is unique per session for the life of
// the process; `worker` is the worker thread that owns the session.
struct Subscriber {
  uint64_t session_id = 0;
  uint32_t worker = 0;
  uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  uint32_t subscription_id = 0;  // 5.0 Subscription Identifier; 0 = none
  // Set for persistent sessions: the client id, which a publisher on another worker writes in
  // its outbox so that a crash cannot lose the message between the two workers' writes.
  std::shared_ptr<const std::string> durable_client_id;
  // The retained sequence (Router::SetRetained) up to which this subscription got the retained
  // messages matching it at its SUBSCRIBE; 0 if it got none. Route skips it for a retained
  // publish at or below: that message (or a newer one on its topic) was in what it got.
  uint64_t retained_seen = 0;
};

class TopicTree {
 public:
  TopicTree();
  ~TopicTree();
  TopicTree(const TopicTree&) = delete;
  TopicTree& operator=(const TopicTree&) = delete;

  // Adds the subscription, or replaces the options of an existing one with the same
  // (filter, session_id). Returns true if it was new. `filter` must be valid.
  bool Subscribe(std::string_view filter, const Subscriber& subscriber);

  // Removes (filter, session_id), copying the entry to *removed if given. Returns false if there
  // was no such subscription.
  bool Unsubscribe(std::string_view filter, uint64_t session_id, Subscriber* removed = nullptr);

  // Calls visit(subscriber) for each subscription whose filter matches `topic`.
  void Match(std::string_view topic, const std::function<void(const Subscriber&)>& visit) const;

  size_t size() const { return size_; }  // number of (filter, subscriber) entries

  // Trie nodes besides the root, by a full walk: 0 once every subscription is gone.
  size_t NodeCountForTesting() const;

 private:
  struct Node;
  std::unique_ptr<Node> root_;
  size_t size_ = 0;
};

}  // namespace mqtt
