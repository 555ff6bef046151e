// SPDX-License-Identifier: Apache-2.0
// Retained messages, one per topic name, indexed by topic level so that a wildcard subscription
// visits only the matching subtree, never the whole store.
//
// Contract: Set() with an empty payload deletes the topic's retained message [MQTT-3.3.1-10];
// otherwise it replaces it [MQTT-3.3.1-5]. Match(filter) visits each retained message whose topic
// the filter matches, with the '$' rule of [MQTT-4.7.2-1].
// Thread-safety: none; the owner serializes access.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>

#include "node/protocol/message.h"

namespace mqtt {

class RetainedStore {
 public:
  RetainedStore();
  ~RetainedStore();
  RetainedStore(const RetainedStore&) = delete;
  RetainedStore& operator=(const RetainedStore&) = delete;

  // Keyed by message->topic. `stamp`: the owner's tag of this set, returned by Find.
  void Set(MessagePtr message, uint64_t stamp = 0);
  // The message retained for `topic` (a topic name) and its stamp; false if none.
  bool Find(std::string_view topic, MessagePtr* message, uint64_t* stamp) const;
  void Match(std::string_view filter, const std::function<void(const MessagePtr&)>& visit) const;
  // As Match; returns the number of trie nodes examined, which is bounded by the nodes of the
  // subtrees the filter can reach (for tests and metrics).
  size_t MatchCountingNodes(std::string_view filter,
                            const std::function<void(const MessagePtr&)>& visit) const;
  size_t size() const { return size_; }

  // Trie nodes besides the root, by a full walk: 0 once every message is deleted.
  size_t NodeCountForTesting() const;

 private:
  struct Node;
  std::unique_ptr<Node> root_;
  size_t size_ = 0;
};

}  // namespace mqtt
