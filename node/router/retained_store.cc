// SPDX-License-Identifier: Apache-2.0
#include "node/router/retained_store.h"

#include <cassert>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "node/router/topic.h"

namespace mqtt {
namespace {

// Map keys are looked up by level without building a std::string. Debian's abseil has its own
// absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW is 0) and the maps' heterogeneous lookup
// takes that type; the conversion is free, both are (pointer, size).
absl::string_view Key(std::string_view level) { return {level.data(), level.size()}; }

// First-level children whose name starts with '$' are hidden from wildcards [MQTT-4.7.2-1].
bool HiddenFromWildcard(bool at_root, const std::string& level) {
  return at_root && !level.empty() && level.front() == '$';
}

}  // namespace

// One topic level; the path from the root spells a topic name. The root stands for no topic
// (names are never empty) so it never holds a message.
// Invariant: every node but the root holds a message or has children (Set prunes).
struct RetainedStore::Node {
  absl::flat_hash_map<std::string, std::unique_ptr<Node>> children;
  MessagePtr message;  // the retained message of the topic ending here; null if none
  uint64_t stamp = 0;  // Set's

  bool empty() const { return message == nullptr && children.empty(); }

  Node* FindChild(std::string_view level) const {
    if (children.empty()) return nullptr;
    auto it = children.find(Key(level));  // heterogeneous: no std::string temporary
    return it == children.end() ? nullptr : it->second.get();
  }

  Node* FindOrAddChild(std::string_view level) {
    if (Node* child = FindChild(level)) return child;
    return children.emplace(std::string(level), std::make_unique<Node>()).first->second.get();
  }

  // Clears the message of `topic` and prunes the nodes left empty. Returns false if the topic
  // had no retained message.
  static bool Erase(Node* root, std::string_view topic) {
    std::vector<std::pair<Node*, std::string_view>> path;  // parent, level leading out of it
    Node* node = root;
    TopicLevelCursor levels(topic);
    while (!levels.done()) {
      std::string_view level = levels.Next();
      Node* child = node->FindChild(level);
      if (child == nullptr) return false;
      path.emplace_back(node, level);
      node = child;
    }
    if (node->message == nullptr) return false;
    node->message.reset();
    for (auto it = path.rbegin(); it != path.rend() && node->empty(); ++it) {
      it->first->children.erase(Key(it->second));
      node = it->first;
    }
    return true;
  }

  // Frees a trie without recursion: a topic may have ~32k levels, too deep for the stack.
  static void DestroyIteratively(std::unique_ptr<Node> root) {
    std::vector<std::unique_ptr<Node>> pending;
    if (root != nullptr) pending.push_back(std::move(root));
    while (!pending.empty()) {
      std::unique_ptr<Node> node = std::move(pending.back());
      pending.pop_back();
      for (auto& [level, child] : node->children) pending.push_back(std::move(child));
    }  // each node is destroyed here with no children left, so its destructor is shallow
  }
};

RetainedStore::RetainedStore() : root_(std::make_unique<Node>()) {}

RetainedStore::~RetainedStore() { Node::DestroyIteratively(std::move(root_)); }

void RetainedStore::Set(MessagePtr message, uint64_t stamp) {
  assert(message != nullptr && IsValidTopicName(message->topic));
  if (message == nullptr) return;
  if (message->payload.empty()) {  // [MQTT-3.3.1-10]
    if (Node::Erase(root_.get(), message->topic)) --size_;
    return;
  }
  Node* node = root_.get();
  TopicLevelCursor levels(message->topic);
  while (!levels.done()) node = node->FindOrAddChild(levels.Next());
  if (node->message == nullptr) ++size_;
  node->message = std::move(message);  // [MQTT-3.3.1-5]: replaces any previous one
  node->stamp = stamp;
}

bool RetainedStore::Find(std::string_view topic, MessagePtr* message, uint64_t* stamp) const {
  const Node* node = root_.get();
  TopicLevelCursor levels(topic);
  while (node != nullptr && !levels.done()) node = node->FindChild(levels.Next());
  if (node == nullptr || node->message == nullptr) return false;
  *message = node->message;
  *stamp = node->stamp;
  return true;
}

size_t RetainedStore::NodeCountForTesting() const {
  size_t count = 0;
  std::vector<const Node*> pending = {root_.get()};
  while (!pending.empty()) {
    const Node* node = pending.back();
    pending.pop_back();
    for (const auto& [level, child] : node->children) pending.push_back(child.get());
    count += node != root_.get();
  }
  return count;
}

void RetainedStore::Match(std::string_view filter,
                          const std::function<void(const MessagePtr&)>& visit) const {
  MatchCountingNodes(filter, visit);
}

size_t RetainedStore::MatchCountingNodes(
    std::string_view filter, const std::function<void(const MessagePtr&)>& visit) const {
  // Depth-first over an explicit stack (topics can be ~32k levels deep). A frame is a node that
  // matched the filter levels consumed from `levels`, or, with `subtree`, a node below a '#'
  // whose whole subtree matches.
  struct Frame {
    const Node* node;
    TopicLevelCursor levels;
    bool subtree;
  };
  std::vector<Frame> pending;
  pending.push_back({root_.get(), TopicLevelCursor(filter), false});
  size_t examined = 0;
  while (!pending.empty()) {
    Frame frame = pending.back();
    pending.pop_back();
    ++examined;
    const Node* node = frame.node;
    if (frame.subtree || frame.levels.done()) {
      if (node->message != nullptr) visit(node->message);
      if (frame.subtree) {
        for (const auto& [level, child] : node->children) {
          pending.push_back({child.get(), frame.levels, true});
        }
      }
      continue;
    }
    const bool at_root = node == root_.get();
    std::string_view level = frame.levels.Next();
    if (level == "#" || level == "+") {
      // "x/#" matches "x" itself; the root holds no message so "#" adds nothing here.
      if (level == "#" && node->message != nullptr) visit(node->message);
      for (const auto& [name, child] : node->children) {
        if (HiddenFromWildcard(at_root, name)) continue;
        pending.push_back({child.get(), frame.levels, level == "#"});
      }
    } else if (const Node* child = node->FindChild(level)) {
      pending.push_back({child, frame.levels, false});
    }
  }
  return examined;
}

}  // namespace mqtt
