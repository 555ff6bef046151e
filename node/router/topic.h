// Topic names and topic filters: validation and matching rules, section 4.7.
// Thread-safety: pure functions.
#pragma once

#include <string_view>

namespace mqtt {

// A topic name for PUBLISH: at least one character [MQTT-4.7.3-1], valid MQTT UTF-8,
// no '+' or '#' [MQTT-3.3.2-2].
bool IsValidTopicName(std::string_view topic);

// A topic filter for SUBSCRIBE/UNSUBSCRIBE: at least one character, valid MQTT UTF-8, '#' only
// as the whole last level [MQTT-4.7.1-2], '+' only as a whole level [MQTT-4.7.1-3].
// Shared-subscription prefixes ($share/...) are not interpreted here.
bool IsValidTopicFilter(std::string_view filter);

// True if `filter` matches `topic` (both assumed valid). Filters starting with a wildcard do not
// match topics starting with '$' [MQTT-4.7.2-1]; "a/#" matches "a" [MQTT-4.7.1-2].
bool TopicMatches(std::string_view filter, std::string_view topic);

}  // namespace mqtt
