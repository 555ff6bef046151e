// SPDX-License-Identifier: Apache-2.0
// One `topic` line of a bridge, with Mosquitto's syntax and semantics (mosquitto.conf(5),
// "Configuring Bridges"):
//
//   topic pattern [[[out | in | both] qos-level] local-prefix remote-prefix]
//
// Direction defaults to out, QoS to 0; `""` is the empty prefix (and the empty pattern). The
// pattern may hold wildcards, the prefixes may not. Outgoing: the bridge subscribes locally to
// local-prefix + pattern and sends a matching message with the local prefix removed and the
// remote prefix added. Incoming: it subscribes remotely to remote-prefix + pattern and publishes
// a matching message locally with the remote prefix removed and the local prefix added. An empty
// pattern maps the one topic local-prefix to the one topic remote-prefix (both then required).
//
// Pure functions, no state: any thread. Node/config calls ParseTopicLine to reject a bad line at
// start-up; node/bridge uses the result at run time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mqtt::bridge {

enum class Direction : uint8_t { kOut, kIn, kBoth };

struct TopicLine {
  std::string pattern;  // may be empty (then both prefixes are set)
  Direction direction = Direction::kOut;
  uint8_t qos = 0;
  std::string local_prefix;
  std::string remote_prefix;

  bool out() const { return direction != Direction::kIn; }
  bool in() const { return direction != Direction::kOut; }
  // The filter subscribed on the local broker (outgoing) and on the remote one (incoming).
  std::string LocalFilter() const { return local_prefix + pattern; }
  std::string RemoteFilter() const { return remote_prefix + pattern; }
  // A local topic matching LocalFilter() as it is sent to the remote, and a remote topic matching
  // RemoteFilter() as it is published locally. nullopt when the topic does not start with the
  // prefix it should (the caller matches the filter first: node/router/topic.h TopicMatches).
  std::optional<std::string> ToRemote(absl::string_view local_topic) const;
  std::optional<std::string> ToLocal(absl::string_view remote_topic) const;

  bool operator==(const TopicLine&) const = default;
};

// Parses the text after the `topic` keyword ("sensors/# both 1 \"\" site/"). Errors say what is
// wrong with the line (the caller adds the file, line and key).
absl::StatusOr<TopicLine> ParseTopicLine(absl::string_view line);

}  // namespace mqtt::bridge
