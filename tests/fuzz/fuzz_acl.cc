// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for ACL files (node/auth/acl.h). The input is a file's text. Properties,
// each a trap when broken:
// - AclFile::Parse returns a Status for anything (no crash, no exception);
// - an accepted file answers Allowed() for a few identities (anonymous, a user and a client the
//   file names, an IPv4 and an IPv6 address) on topics and filters taken from the file itself;
// - FilterCovers agrees with a plain level-by-level matcher written here for topic names, and
//   every filter covers itself.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "node/auth/acl.h"

namespace mqtt::auth {
namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

std::vector<std::string_view> Levels(std::string_view s) {
  std::vector<std::string_view> levels;
  for (size_t start = 0;;) {
    size_t slash = s.find('/', start);
    levels.push_back(s.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) return levels;
    start = slash + 1;
  }
}

bool IsFilter(std::string_view s) {
  if (s.empty()) return false;
  std::vector<std::string_view> levels = Levels(s);
  for (size_t i = 0; i < levels.size(); ++i) {
    if (levels[i].find_first_of("+#") == std::string_view::npos) continue;
    if (levels[i].size() != 1 || (levels[i] == "#" && i + 1 != levels.size())) return false;
  }
  return true;
}

// MQTT matching of a topic name by a filter, as the spec words it (4.7).
bool Matches(std::string_view filter, std::string_view topic) {
  if (!topic.empty() && topic[0] == '$' && (filter[0] == '+' || filter[0] == '#')) return false;
  std::vector<std::string_view> f = Levels(filter), t = Levels(topic);
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "#") return true;  // also the parent level [MQTT-4.7.1-2]
    if (i >= t.size() || (f[i] != "+" && f[i] != t[i])) return false;
  }
  return f.size() == t.size();
}

// Whitespace-separated words of `text` (at most `max`).
std::vector<std::string> Words(std::string_view text, size_t max) {
  std::vector<std::string> words;
  size_t pos = 0;
  while (words.size() < max) {
    pos = text.find_first_not_of(" \t\r\n", pos);
    if (pos == std::string_view::npos) break;
    size_t end = std::min(text.find_first_of(" \t\r\n", pos), text.size());
    words.emplace_back(text.substr(pos, end - pos));
    pos = end;
  }
  return words;
}

void RunOne(std::string_view text) {
  absl::StatusOr<AclFile> acl = AclFile::Parse(text, "fuzz.acl");
  const std::vector<std::string> words = Words(text, 24);
  std::vector<std::string> filters, topics;
  for (const std::string& w : words) {
    if (!IsFilter(w)) continue;
    Check(FilterCovers(w, w));
    filters.push_back(w);
    if (w.find_first_of("+#") == std::string::npos) topics.push_back(w);
  }
  for (const std::string& f : filters) {
    for (const std::string& t : topics) Check(FilterCovers(f, t) == Matches(f, t));
  }
  if (!acl.ok()) {
    Check(!acl.status().message().empty());
    return;
  }
  // Identities: the words after `user` and `client` become names, plus fixed addresses.
  const std::string user = words.size() > 1 ? words[1] : "u";
  const std::string client = words.size() > 3 ? words[3] : "c";
  std::vector<Identity> who = {
      {nullptr, client, IpAddress::Parse("192.0.2.1")},
      {&user, client, IpAddress::Parse("2001:db8::1")},
      {&user, "", std::nullopt},
  };
  for (const Identity& id : who) {
    for (const std::string& f : filters) {
      acl->Allowed(id, f, Access::kSubscribe);
    }
    for (const std::string& t : topics) {
      acl->Allowed(id, t, Access::kRead);
      acl->Allowed(id, t, Access::kWrite);
    }
  }
}

}  // namespace
}  // namespace mqtt::auth

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mqtt::auth::RunOne(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
