// SPDX-License-Identifier: Apache-2.0
// Topic names and topic filters: validation and matching rules, section 4.7.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string_view>

namespace mqtt {

// Hard limit of an MQTT UTF-8 string, hence of a topic name or filter (section 1.5.4).
inline constexpr size_t kMaxTopicLength = 65535;

// Splits a topic name or filter into its levels without allocating: "a//b" yields "a", "", "b";
// "/" yields "", "". A string always has at least one level (the empty string has one, empty).
// The cursor is a cheap value: copying it forks the iteration (the trie matchers rely on that).
class TopicLevelCursor {
 public:
  explicit TopicLevelCursor(std::string_view s) : s_(s) {}

  bool done() const { return pos_ > s_.size(); }

  // Returns the next level. Requires !done().
  std::string_view Next() {
    const size_t slash = s_.find('/', pos_);
    const size_t end = slash == std::string_view::npos ? s_.size() : slash;
    std::string_view level = s_.substr(pos_, end - pos_);
    pos_ = end + 1;  // past the '/', or past the end when this was the last level
    return level;
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;  // start of the next level; s_.size() + 1 once every level was returned
};

// A topic name for PUBLISH: at least one character [MQTT-4.7.3-1], valid MQTT UTF-8,
// no '+' or '#' [MQTT-3.3.2-2].
bool IsValidTopicName(std::string_view topic);
// IsValidTopicName for a topic already checked as MQTT UTF-8 (DecodePublishView checks the topic
// of every PUBLISH): the other rules, without a second UTF-8 pass over it.
bool IsValidUtf8TopicName(std::string_view topic);

// A topic filter for SUBSCRIBE/UNSUBSCRIBE: at least one character, valid MQTT UTF-8, '#' only
// as the whole last level [MQTT-4.7.1-2], '+' only as a whole level [MQTT-4.7.1-3].
// Shared-subscription prefixes ($share/...) are not interpreted here.
bool IsValidTopicFilter(std::string_view filter);

// True if `filter` matches `topic` (both assumed valid). Filters starting with a wildcard do not
// match topics starting with '$' [MQTT-4.7.2-1]; "a/#" matches "a" [MQTT-4.7.1-2].
bool TopicMatches(std::string_view filter, std::string_view topic);

}  // namespace mqtt
