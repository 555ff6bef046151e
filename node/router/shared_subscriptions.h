// Shared subscriptions: `$share/{group}/{filter}` (5.0, section 4.8.2; also accepted from 3.1.1
// clients) and `$queue/{filter}`, one implicit group. Each message matching a group's filter
// goes to one member of the group, chosen by a strategy.
//
// A group appears in the TopicTree as one Subscriber whose session_id is the group id (with
// kSharedGroupBit set), so matching costs the same as for a plain subscription; the broker then
// asks Select() for the member.
// Thread-safety: Join/Leave need the owner's exclusive lock; Select only reads the membership and
// updates atomics, so it is safe under a shared (reader) lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

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
    uint64_t session_id = 0;
    uint32_t worker = 0;
    uint8_t qos = 0;
    uint32_t subscription_id = 0;
    std::shared_ptr<const std::string> durable_client_id;  // as in Subscriber
    // Set by the member's session while a client is connected to it.
    std::shared_ptr<const std::atomic<bool>> online;
  };

  SharedGroups();
  ~SharedGroups();

  // Adds or updates a member. Returns the group id; *created says whether the group is new
  // (then the caller adds it to the trie under `filter`).
  uint64_t Join(std::string_view group, std::string_view filter, const Member& member,
                bool* created);
  // Removes a member. Returns the group id if the group is now empty (the caller removes it from
  // the trie), 0 otherwise (or when there was no such member).
  uint64_t Leave(std::string_view group, std::string_view filter, uint64_t session_id);

  // Picks the member for one message: an online member if there is one (an offline member with
  // a persistent session is skipped while others are online), else any member. A member with
  // session `exclude` is avoided when another exists (used to re-send a message that member did
  // not acknowledge). Returns nullopt for an unknown or empty group.
  std::optional<Member> Select(uint64_t group_id, ShareStrategy strategy,
                               std::string_view publisher_id, std::string_view topic,
                               uint64_t exclude = 0) const;

  size_t group_count() const { return groups_.size(); }

 private:
  struct Group;
  absl::flat_hash_map<std::string, uint64_t> ids_;  // "group/filter" -> id
  absl::flat_hash_map<uint64_t, std::unique_ptr<Group>> groups_;
  uint64_t next_id_ = 1;
};

}  // namespace mqtt
