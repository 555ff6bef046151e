// SPDX-License-Identifier: Apache-2.0
#include "node/auth/acl.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "node/base/files.h"
#include "node/base/host_port.h"

namespace mqtt::auth {
namespace {

// absl::StrCat takes absl::string_view, which Debian's Abseil keeps distinct from std's.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

constexpr uint8_t kRead = static_cast<uint8_t>(Access::kRead);
constexpr uint8_t kWrite = static_cast<uint8_t>(Access::kWrite);

// The next '/'-separated level of `text` from *pos; *pos moves past it (npos after the last).
std::string_view NextLevel(std::string_view text, size_t* pos) {
  size_t end = text.find('/', *pos);
  std::string_view level = text.substr(*pos, end == std::string_view::npos ? end : end - *pos);
  *pos = end == std::string_view::npos ? end : end + 1;
  return level;
}

// '#' only as the whole last level, '+' only as a whole level.
bool IsValidFilter(std::string_view filter) {
  if (filter.empty()) return false;
  size_t pos = 0;
  while (pos != std::string_view::npos) {
    std::string_view level = NextLevel(filter, &pos);
    if (level.find_first_of("+#") == std::string_view::npos) continue;
    if (level.size() != 1 || (level == "#" && pos != std::string_view::npos)) return false;
  }
  return true;
}

std::string_view Trim(std::string_view text) {
  size_t begin = text.find_first_not_of(" \t\r");
  if (begin == std::string_view::npos) return {};
  return text.substr(begin, text.find_last_not_of(" \t\r") - begin + 1);
}

bool HasWildcard(std::string_view value) {
  return value.find_first_of("+#") != std::string_view::npos;
}

// The pattern with %u and %c replaced; nullopt when a needed value is missing or would act as a
// wildcard.
std::optional<std::string> Substitute(std::string_view pattern, const Identity& who) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '%' || i + 1 == pattern.size() ||
        (pattern[i + 1] != 'u' && pattern[i + 1] != 'c')) {
      out.push_back(pattern[i]);
      continue;
    }
    std::string_view value = who.client_id;
    if (pattern[++i] == 'u') {
      if (who.username == nullptr) return std::nullopt;
      value = *who.username;
    }
    if (value.empty() || HasWildcard(value)) return std::nullopt;
    out.append(value);
  }
  return out;
}

}  // namespace

bool FilterCovers(std::string_view rule, std::string_view filter) {
  // Wildcards at the first level do not match topics starting with '$' [MQTT-4.7.2-1].
  if (!filter.empty() && filter[0] == '$' && !rule.empty() && (rule[0] == '+' || rule[0] == '#')) {
    return false;
  }
  size_t rule_pos = 0;
  size_t filter_pos = 0;
  while (rule_pos != std::string_view::npos) {
    std::string_view r = NextLevel(rule, &rule_pos);
    if (r == "#") return true;  // also covers the parent level: "a/#" matches "a"
    if (filter_pos == std::string_view::npos) return false;
    std::string_view f = NextLevel(filter, &filter_pos);
    if (f == "#") return false;
    if (r != "+" && f != r) return false;  // a literal level covers only itself
  }
  return filter_pos == std::string_view::npos;
}

std::optional<IpAddress> IpAddress::Parse(std::string_view text) {
  std::string s(text);
  IpAddress address;
  in_addr v4;
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    address.bytes[10] = address.bytes[11] = 0xff;
    std::memcpy(&address.bytes[12], &v4, 4);
    return address;
  }
  if (inet_pton(AF_INET6, s.c_str(), address.bytes.data()) == 1) return address;
  return std::nullopt;
}

std::optional<IpAddress> IpAddress::FromPeer(std::string_view peer) {
  absl::StatusOr<HostPort> split = ParseHostPort(Sv(peer), {.allow_port_zero = true});
  if (!split.ok()) return std::nullopt;
  return Parse(split->host);
}

bool AclFile::Cidr::Contains(const IpAddress& address) const {
  int bits = prefix_bits;
  for (size_t i = 0; bits > 0; ++i, bits -= 8) {
    uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((address.bytes[i] & mask) != (network.bytes[i] & mask)) return false;
  }
  return true;
}

void AclFile::Apply(const Rules& rules, bool patterns, const Identity& who, std::string_view topic,
                    Access access, bool* denied, bool* granted) const {
  const uint8_t wanted = access == Access::kSubscribe ? kRead : static_cast<uint8_t>(access);
  for (const Rule& rule : rules) {
    std::optional<std::string> substituted;
    if (patterns && !(substituted = Substitute(rule.filter, who))) continue;
    if (!FilterCovers(substituted ? *substituted : rule.filter, topic)) continue;
    if (rule.access == 0) *denied = true;
    if (rule.access & wanted) *granted = true;
  }
}

bool AclFile::Allowed(const Identity& who, std::string_view topic, Access access) const {
  bool denied = false;
  bool granted = false;
  if (who.username == nullptr) {
    Apply(anonymous_, false, who, topic, access, &denied, &granted);
  } else if (auto it = users_.find(*who.username); it != users_.end()) {
    Apply(it->second, false, who, topic, access, &denied, &granted);
  }
  if (auto it = clients_.find(absl::string_view(who.client_id.data(), who.client_id.size()));
      it != clients_.end()) {
    Apply(it->second, false, who, topic, access, &denied, &granted);
  }
  if (who.address) {
    for (const auto& [cidr, rules] : addresses_) {
      if (cidr.Contains(*who.address)) Apply(rules, false, who, topic, access, &denied, &granted);
    }
  }
  Apply(patterns_, true, who, topic, access, &denied, &granted);
  return granted && !denied;
}

// Reads one file line by line into an AclFile.
class AclParser {
 public:
  explicit AclParser(AclFile* file) : file_(file), section_(&file->anonymous_) {}

  absl::Status Line(std::string_view line) {
    line = Trim(line);
    if (line.empty() || line[0] == '#') return absl::OkStatus();
    size_t space = line.find_first_of(" \t");
    std::string_view keyword = line.substr(0, space);
    std::string_view rest = space == std::string_view::npos ? "" : Trim(line.substr(space));
    if (keyword == "topic") return AddRule(rest, section_);
    if (keyword == "pattern") return AddRule(rest, &file_->patterns_);
    if (keyword != "user" && keyword != "client" && keyword != "address") {
      return absl::InvalidArgumentError(absl::StrCat("unknown keyword '", Sv(keyword), "'"));
    }
    if (rest.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(Sv(keyword), " needs a value"));
    }
    const absl::string_view name(rest.data(), rest.size());
    if (keyword == "address") return AddAddress(rest);
    section_ = keyword == "user" ? &file_->users_[name] : &file_->clients_[name];
    return absl::OkStatus();
  }

 private:
  static absl::Status AddRule(std::string_view rest, AclFile::Rules* rules) {
    AclFile::Rule rule{kRead | kWrite, std::string(rest)};
    size_t space = rest.find_first_of(" \t");
    if (space != std::string_view::npos) {
      std::string_view word = rest.substr(0, space);
      std::optional<uint8_t> access = word == "read"        ? kRead
                                      : word == "write"     ? kWrite
                                      : word == "readwrite" ? kRead | kWrite
                                      : word == "deny"      ? std::optional<uint8_t>(0)
                                                            : std::nullopt;
      if (access) {
        rule.access = *access;
        rule.filter = std::string(Trim(rest.substr(space)));
      }
    }
    if (!IsValidFilter(rule.filter)) {
      return absl::InvalidArgumentError(absl::StrCat("bad topic filter '", rule.filter, "'"));
    }
    rules->push_back(std::move(rule));
    return absl::OkStatus();
  }

  absl::Status AddAddress(std::string_view text) {
    const size_t slash = text.find('/');
    std::string_view host = text.substr(0, slash);
    std::optional<IpAddress> network = IpAddress::Parse(host);
    const bool v4 = host.find(':') == std::string_view::npos;
    int bits = v4 ? 32 : 128;
    if (slash != std::string_view::npos) {
      std::string_view digits = text.substr(slash + 1);
      if (!absl::SimpleAtoi(absl::string_view(digits.data(), digits.size()), &bits)) bits = -1;
    }
    if (!network || bits < 0 || bits > (v4 ? 32 : 128)) {
      return absl::InvalidArgumentError(absl::StrCat("bad address or CIDR '", Sv(text), "'"));
    }
    file_->addresses_.push_back({{*network, v4 ? bits + 96 : bits}, {}});
    section_ = &file_->addresses_.back().second;
    return absl::OkStatus();
  }

  AclFile* file_;
  AclFile::Rules* section_;  // where topic lines go
};

absl::StatusOr<AclFile> AclFile::Parse(std::string_view text, std::string_view name) {
  AclFile file;
  {
    AclParser parser(&file);
    int line_number = 0;
    for (absl::string_view piece :
         absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
      std::string_view line(piece.data(), piece.size());
      ++line_number;
      if (absl::Status s = parser.Line(line); !s.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(Sv(name), ":", line_number, ": ", s.message()));
      }
    }
  }
  return file;
}

absl::StatusOr<AclFile> AclFile::Load(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

}  // namespace mqtt::auth
