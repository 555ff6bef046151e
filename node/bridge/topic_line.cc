// SPDX-License-Identifier: Apache-2.0
#include "node/bridge/topic_line.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mqtt::bridge {
namespace {

// `""` is Mosquitto's place marker for the empty string.
std::string Unquote(absl::string_view token) {
  return token == "\"\"" ? std::string() : std::string(token);
}

// A topic filter as [MQTT-4.7.1]: `+` and `#` fill a whole level, `#` only the last one.
bool ValidFilter(absl::string_view filter) {
  std::vector<absl::string_view> levels = absl::StrSplit(filter, '/');
  for (size_t i = 0; i < levels.size(); ++i) {
    absl::string_view level = levels[i];
    if (level.find_first_of("+#") == absl::string_view::npos) continue;
    if (level.size() != 1) return false;
    if (level == "#" && i + 1 != levels.size()) return false;
  }
  return filter.find('\0') == absl::string_view::npos;
}

absl::Status Invalid(absl::string_view what) { return absl::InvalidArgumentError(what); }

absl::Status ParseDirection(absl::string_view token, Direction* out) {
  if (token == "out") {
    *out = Direction::kOut;
  } else if (token == "in") {
    *out = Direction::kIn;
  } else if (token == "both") {
    *out = Direction::kBoth;
  } else {
    return Invalid(absl::StrCat("direction '", token, "': must be out, in or both"));
  }
  return absl::OkStatus();
}

absl::Status ParseQos(absl::string_view token, uint8_t* out) {
  if (token != "0" && token != "1" && token != "2") {
    return Invalid(absl::StrCat("QoS '", token, "': must be 0, 1 or 2"));
  }
  *out = static_cast<uint8_t>(token[0] - '0');
  return absl::OkStatus();
}

// The rows of Mosquitto's table: an empty pattern needs both prefixes; prefixes are topic
// names (no wildcards); the pattern is a filter.
absl::Status CheckLine(const TopicLine& line) {
  if (line.pattern.empty() && (line.local_prefix.empty() || line.remote_prefix.empty())) {
    return Invalid("an empty pattern (\"\") needs a local and a remote prefix");
  }
  for (const std::string* prefix : {&line.local_prefix, &line.remote_prefix}) {
    if (prefix->find_first_of("+#") != std::string::npos) {
      return Invalid(absl::StrCat("prefix '", *prefix, "' must not hold a wildcard"));
    }
  }
  if (!ValidFilter(line.pattern)) {
    return Invalid(absl::StrCat("pattern '", line.pattern, "' is not a valid topic filter"));
  }
  if (!ValidFilter(line.LocalFilter()) || !ValidFilter(line.RemoteFilter())) {
    return Invalid("a prefix followed by the pattern is not a valid topic filter");
  }
  return absl::OkStatus();
}

// Replaces prefix `from` by `to` at the front of `topic`.
std::optional<std::string> Swap(absl::string_view topic, absl::string_view from,
                                absl::string_view to) {
  if (!absl::StartsWith(topic, from)) return std::nullopt;
  return absl::StrCat(to, topic.substr(from.size()));
}

}  // namespace

std::optional<std::string> TopicLine::ToRemote(absl::string_view local_topic) const {
  return Swap(local_topic, local_prefix, remote_prefix);
}

std::optional<std::string> TopicLine::ToLocal(absl::string_view remote_topic) const {
  return Swap(remote_topic, remote_prefix, local_prefix);
}

absl::StatusOr<TopicLine> ParseTopicLine(absl::string_view text) {
  std::vector<absl::string_view> tokens =
      absl::StrSplit(text, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (tokens.empty()) return Invalid("needs a pattern");
  if (tokens.size() > 5) {
    return Invalid(absl::StrCat("too many words (", tokens.size(),
                                "): pattern [[[out|in|both] qos] local-prefix remote-prefix]"));
  }
  if (tokens.size() == 4) {
    return Invalid("a local prefix needs a remote prefix (use \"\" for an empty one)");
  }
  TopicLine line;
  line.pattern = Unquote(tokens[0]);
  if (tokens.size() > 1) {
    if (absl::Status s = ParseDirection(tokens[1], &line.direction); !s.ok()) return s;
  }
  if (tokens.size() > 2) {
    if (absl::Status s = ParseQos(tokens[2], &line.qos); !s.ok()) return s;
  }
  if (tokens.size() == 5) {
    line.local_prefix = Unquote(tokens[3]);
    line.remote_prefix = Unquote(tokens[4]);
  }
  if (absl::Status s = CheckLine(line); !s.ok()) return s;
  return line;
}

}  // namespace mqtt::bridge
