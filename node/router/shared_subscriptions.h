// SPDX-License-Identifier: Apache-2.0
// Shared subscriptions: `$share/{group}/{filter}` (5.0, section 4.8.2; also accepted from 3.1.1
// clients) and `$queue/{filter}`, one implicit group. Each message matching a group's filter
// goes to one member of the group, chosen by a strategy.
//
// A group appears in the TopicTree as one Subscriber whose session_id is the group id (with
// kSharedGroupBit set), so matching costs the same as for a plain subscription; the router then
// asks Select() for the member. In a cluster a member is either a session of this node or a
// remote node holding members of the same group (one member per node, however many it holds):
// the node that chooses a node member forwards the message there, and that node picks one of
// its own sessions.
// Thread-safety: Join/Leave need the owner's exclusive lock; Select only reads the membership and
// updates atomics, so it is safe under a shared (reader) lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace mqtt {

inline constexpr uint64_t kSharedGroupBit = uint64_t{1} << 63;

struct SharedFilter {
  std::string_view group;   // "$queue" for $queue/ filters
  std::string_view filter;  // the topic filter proper
};

// nullopt: not a shared filter. Error: a share whose group is empty or holds '+' or '#', or with
// no filter after the group [MQTT-4.8.2-1], [MQTT-4.8.2-2].
absl::StatusOr<std::optional<SharedFilter>> ParseSharedFilter(std::string_view filter);

enum class ShareStrategy { kRoundRobin, kRandom, kSticky, kHashClientId, kHashTopic };
bool ParseShareStrategy(std::string_view name, ShareStrategy* strategy);

class SharedGroups {
 public:
  struct Member {
    uint64_t session_id = 0;  // a node member: the router's id for that node (never a session's)
    uint32_t worker = 0;
    uint8_t qos = 0;
    uint32_t subscription_id = 0;
    std::shared_ptr<const std::string> durable_client_id;  // as in Subscriber
    // Set by the member's session while a client is connected to it.
    std::shared_ptr<const std::atomic<bool>> online;
    // Non-zero: a remote node holding members of this group, online while `online` says its
    // node is alive (always without a flag). `durable`: one of them is a persistent session
    // there.
    uint32_t node = 0;
    bool durable = false;
  };

  // Which members one pass of Select() may take.
  enum class Kind : uint8_t { kAny, kLocal, kNode };
  struct Pass {
    Kind kind = Kind::kAny;
    bool online_only = true;   // the member must be online
    bool may_exclude = false;  // the excluded member is eligible too
  };
  // How to pick: the passes are tried in order until one finds a member. In each, kSticky takes
  // the sticky member if eligible; otherwise the strategy's draw (round robin counter, random,
  // hash) modulo the number of eligible members says which of them, in join order.
  struct Choice {
    ShareStrategy strategy = ShareStrategy::kRoundRobin;
    std::string_view publisher_id;
    std::string_view topic;
    uint64_t exclude = 0;  // a member to avoid (re-sending what it did not acknowledge)
    absl::Span<const Pass> passes;
  };

  SharedGroups();
  ~SharedGroups();

  // Adds a member, or updates the one with the same session_id. Returns the group id;
  // *created says whether the group is new (then the caller adds it to the trie under
  // `filter`), *added whether the member is (false: an update).
  uint64_t Join(std::string_view group, std::string_view filter, const Member& member,
                bool* created, bool* added);
  // Removes a member. False if there was none; otherwise *removed is the member and *emptied
  // the group id if the group is now empty (the caller removes it from the trie), else 0.
  bool Leave(std::string_view group, std::string_view filter, uint64_t session_id, Member* removed,
             uint64_t* emptied);

  // The id of group `group` with `filter`; 0 if unknown.
  uint64_t Find(std::string_view group, std::string_view filter) const;
  // The name and filter of a group id; empty views if unknown. Valid while the group exists.
  std::pair<std::string_view, std::string_view> NameOf(uint64_t group_id) const;

  // Picks the member for one message (see Choice); nullopt for an unknown group or when no pass
  // finds a member.
  std::optional<Member> Select(uint64_t group_id, const Choice& choice) const;

  size_t group_count() const { return groups_.size(); }

 private:
  struct Group;
  absl::flat_hash_map<std::string, uint64_t> ids_;  // "group/filter" -> id
  absl::flat_hash_map<uint64_t, std::unique_ptr<Group>> groups_;
  uint64_t next_id_ = 1;
};

}  // namespace mqtt
