// SPDX-License-Identifier: Apache-2.0
#include "node/router/topic_tree.h"

#include <cassert>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "node/router/topic.h"

namespace mqtt {
namespace {

// Map keys are looked up by level without building a std::string. Debian's abseil has its own
// absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW is 0) and the maps' heterogeneous lookup
// takes that type; the conversion is free, both are (pointer, size).
absl::string_view Key(std::string_view level) { return {level.data(), level.size()}; }

// The subscribers of one filter. They sit in a contiguous vector so that Match iterates them
// without indirection; order is unspecified (removal swaps with the last entry). Most filters
// have one or a few subscribers and a linear scan by session_id is cheapest; fan-out filters
// (thousands of sessions on "alerts/#") get a session_id -> position index so that
// Subscribe/Unsubscribe stay O(1) instead of O(subscribers).
class SubscriberList {
 public:
  bool empty() const { return subscribers_.empty(); }

  // Adds `subscriber`, or replaces the entry with the same session_id. Returns true if added.
  bool Upsert(const Subscriber& subscriber) {
    if (Subscriber* existing = Find(subscriber.session_id)) {
      *existing = subscriber;
      return false;
    }
    subscribers_.push_back(subscriber);
    if (index_ != nullptr) {
      index_->emplace(subscriber.session_id, subscribers_.size() - 1);
    } else if (subscribers_.size() >= kIndexAbove) {
      BuildIndex();
    }
    return true;
  }

  // Removes the entry of `session_id`. Returns false if there was none.
  bool Remove(uint64_t session_id, Subscriber* removed) {
    Subscriber* entry = Find(session_id);
    if (entry == nullptr) return false;
    if (removed != nullptr) *removed = *entry;
    const size_t pos = static_cast<size_t>(entry - subscribers_.data());
    if (pos + 1 != subscribers_.size()) {
      *entry = subscribers_.back();
      if (index_ != nullptr) (*index_)[entry->session_id] = pos;
    }
    subscribers_.pop_back();
    if (index_ != nullptr) {
      index_->erase(session_id);
      // Hysteresis: drop the index well below the threshold so churn around it stays cheap.
      if (subscribers_.size() < kIndexAbove / 2) index_.reset();
    }
    return true;
  }

  template <typename Visit>
  void ForEach(const Visit& visit) const {
    for (const Subscriber& s : subscribers_) visit(s);
  }

 private:
  static constexpr size_t kIndexAbove = 32;

  Subscriber* Find(uint64_t session_id) {
    if (index_ != nullptr) {
      auto it = index_->find(session_id);
      return it == index_->end() ? nullptr : &subscribers_[it->second];
    }
    for (Subscriber& s : subscribers_) {
      if (s.session_id == session_id) return &s;
    }
    return nullptr;
  }

  void BuildIndex() {
    index_ = std::make_unique<absl::flat_hash_map<uint64_t, size_t>>();
    index_->reserve(subscribers_.size());
    for (size_t i = 0; i < subscribers_.size(); ++i) {
      index_->emplace(subscribers_[i].session_id, i);
    }
  }

  absl::InlinedVector<Subscriber, 1> subscribers_;
  // Invariant: null, or maps every session_id in subscribers_ to its position.
  std::unique_ptr<absl::flat_hash_map<uint64_t, size_t>> index_;
};

// Frees a trie without recursion: a filter may have ~32k levels, too deep for the stack.
template <typename Node>
void DestroyIteratively(std::unique_ptr<Node> root) {
  std::vector<std::unique_ptr<Node>> pending;
  if (root != nullptr) pending.push_back(std::move(root));
  while (!pending.empty()) {
    std::unique_ptr<Node> node = std::move(pending.back());
    pending.pop_back();
    for (auto& [level, child] : node->children) pending.push_back(std::move(child));
    if (node->plus != nullptr) pending.push_back(std::move(node->plus));
  }  // each node is destroyed here with no children left, so its destructor is shallow
}

}  // namespace

// One topic level. The path from the root spells a filter's levels, '+' levels going through
// `plus`. A filter "x/#" ends in `multi` of node "x" instead of a '#' child node: '#' is always
// the last level, so that child could only ever hold subscribers.
// Invariant: every node but the root is non-empty (Unsubscribe prunes empty nodes).
// Layout: Match is bound by cache misses. The fields it reads at every node (children, plus,
// multi: 48 bytes) come first and the node is cache-line aligned, so reading the node itself
// costs one line unless it has subscribers to report. A node is 128 bytes: `multi` sits behind
// a pointer because most nodes never hold a "/#" filter (a node per level of every filter), and
// inline it made every node 192 bytes (RSS per offline session, docs/performance.md).
struct alignas(64) TopicTree::Node {
  absl::flat_hash_map<std::string, std::unique_ptr<Node>> children;  // literal levels
  std::unique_ptr<Node> plus;                                        // the '+' level
  // Filters ending at this node followed by "/#". Invariant: null or non-empty.
  std::unique_ptr<SubscriberList> multi;
  SubscriberList exact;  // filters ending at this node

  bool empty() const {
    return children.empty() && plus == nullptr && exact.empty() && multi == nullptr;
  }

  const Node* FindChild(std::string_view level) const {
    if (children.empty()) return nullptr;  // common at leaves: skip hashing
    auto it = children.find(Key(level));   // heterogeneous: no std::string temporary
    return it == children.end() ? nullptr : it->second.get();
  }
  Node* FindChild(std::string_view level) {
    return const_cast<Node*>(std::as_const(*this).FindChild(level));
  }

  Node* FindOrAddChild(std::string_view level) {
    if (level == "+") {
      if (plus == nullptr) plus = std::make_unique<Node>();
      return plus.get();
    }
    if (Node* child = FindChild(level)) return child;
    return children.emplace(std::string(level), std::make_unique<Node>()).first->second.get();
  }

  // Visits the subscriptions below `node`, which matched every level already taken from
  // `levels`. `wildcards` is false only for the first level of a '$' topic [MQTT-4.7.2-1].
  // Follows the literal child in a loop and recurses only where a '+' child branches off too,
  // so recursion depth is the number of such branch points on the topic's path, not its length.
  static void Match(const Node* node, TopicLevelCursor levels, bool wildcards,
                    const std::function<void(const Subscriber&)>& visit) {
    while (true) {
      // "x/#" matches "x" and all below it
      if (wildcards && node->multi != nullptr) node->multi->ForEach(visit);
      if (levels.done()) {
        node->exact.ForEach(visit);
        return;
      }
      const Node* literal = node->FindChild(levels.Next());
      const Node* plus = wildcards ? node->plus.get() : nullptr;
      wildcards = true;
      if (literal != nullptr && plus != nullptr) Match(plus, levels, true, visit);
      node = literal != nullptr ? literal : plus;
      if (node == nullptr) return;
    }
  }
};

TopicTree::TopicTree() : root_(std::make_unique<Node>()) {
  static_assert(sizeof(Node) == 128, "two cache lines: see Node's layout comment");
}

TopicTree::~TopicTree() { DestroyIteratively(std::move(root_)); }

bool TopicTree::Subscribe(std::string_view filter, const Subscriber& subscriber) {
  assert(IsValidTopicFilter(filter));
  Node* node = root_.get();
  SubscriberList* list = &node->exact;
  TopicLevelCursor levels(filter);
  while (!levels.done()) {
    std::string_view level = levels.Next();
    if (level == "#") {
      if (node->multi == nullptr) node->multi = std::make_unique<SubscriberList>();
      list = node->multi.get();
      break;
    }
    node = node->FindOrAddChild(level);
    list = &node->exact;
  }
  const bool added = list->Upsert(subscriber);
  if (added) ++size_;
  return added;
}

bool TopicTree::Unsubscribe(std::string_view filter, uint64_t session_id, Subscriber* removed) {
  // The nodes walked through, with the level leading out of each, to prune bottom-up.
  std::vector<std::pair<Node*, std::string_view>> path;
  Node* node = root_.get();
  SubscriberList* list = &node->exact;
  TopicLevelCursor levels(filter);
  while (!levels.done()) {
    std::string_view level = levels.Next();
    if (level == "#") {
      if (node->multi == nullptr) return false;
      list = node->multi.get();
      break;
    }
    Node* child = level == "+" ? node->plus.get() : node->FindChild(level);
    if (child == nullptr) return false;
    path.emplace_back(node, level);
    node = child;
    list = &node->exact;
  }
  if (!list->Remove(session_id, removed)) return false;
  --size_;
  if (list == node->multi.get() && list->empty()) node->multi.reset();
  // Remove the nodes left empty, deepest first; the root always stays.
  for (auto it = path.rbegin(); it != path.rend() && node->empty(); ++it) {
    auto [parent, level] = *it;
    if (level == "+") {
      parent->plus.reset();
    } else {
      parent->children.erase(Key(level));
    }
    node = parent;
  }
  return true;
}

size_t TopicTree::NodeCountForTesting() const {
  size_t count = 0;
  std::vector<const Node*> pending = {root_.get()};
  while (!pending.empty()) {
    const Node* node = pending.back();
    pending.pop_back();
    for (const auto& [level, child] : node->children) pending.push_back(child.get());
    if (node->plus != nullptr) pending.push_back(node->plus.get());
    count += node != root_.get();
  }
  return count;
}

void TopicTree::Match(std::string_view topic,
                      const std::function<void(const Subscriber&)>& visit) const {
  const bool dollar = !topic.empty() && topic.front() == '$';
  Node::Match(root_.get(), TopicLevelCursor(topic), /*wildcards=*/!dollar, visit);
}

}  // namespace mqtt
