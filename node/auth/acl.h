// SPDX-License-Identifier: Apache-2.0
// ACL files in Mosquitto's syntax, plus two sections of ours (docs/security.md):
//
//   # comment
//   topic [read|write|readwrite|deny] TOPIC     (no access word: readwrite)
//   user USERNAME                               following topic lines: this user's
//   pattern [read|write|readwrite|deny] TOPIC   every client; %u user name, %c client id
//   client CLIENT_ID                            ours: following topic lines: this client id
//   address CIDR                                ours: following topic lines: clients from there
//
// Topic lines before the first section apply to clients without a user name. Pattern lines
// apply to every client wherever they stand. A client's rules are those of its user section
// (or the anonymous one), of every client and address section that names it, and the patterns.
// Decision: a matching deny rule refuses; else a matching rule with the access grants; else
// refused. A rule matches a topic as an MQTT filter matches it (`+`, `#`; wildcards at the first
// level do not match `$` topics). A SUBSCRIBE is a read of every topic its filter can match:
// granted when one read rule's filter covers the whole subscription filter, refused when one deny
// rule does; a partly denied subscription is granted and the denied messages are not delivered
// (each delivery is a read). A pattern whose %u/%c value is missing or holds `+` or `#` does not
// apply. Parse errors name the file and line.
//
// Threading: an AclFile is immutable once built; Allowed() may be called from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace mqtt::auth {

enum class Access : uint8_t {
  kRead = 1,       // a message on this topic may be delivered to the client
  kWrite = 2,      // the client may publish on this topic (and have it as will)
  kSubscribe = 4,  // the client may subscribe with this filter (needs read)
};

// An IPv4 or IPv6 address; IPv4 is kept as IPv4-mapped IPv6 (::ffff:a.b.c.d).
struct IpAddress {
  std::array<uint8_t, 16> bytes{};
  // "1.2.3.4", "::1"; nullopt if neither.
  static std::optional<IpAddress> Parse(std::string_view text);
  // "1.2.3.4:5678" or "::1:5678" (a Transport's peer()); nullopt if not an address.
  static std::optional<IpAddress> FromPeer(std::string_view peer);
};

// Who asks: the CONNECT's user name (null: none), client id and the peer's address.
struct Identity {
  const std::string* username = nullptr;
  std::string_view client_id;
  std::optional<IpAddress> address;
};

// True when every topic `filter` can match is matched by `rule` (both MQTT filters; a topic name
// is a filter without wildcards, so this is also "rule matches topic").
bool FilterCovers(std::string_view rule, std::string_view filter);

class AclFile {
 public:
  static absl::StatusOr<AclFile> Parse(std::string_view text, std::string_view name);
  static absl::StatusOr<AclFile> Load(const std::string& path);

  bool Allowed(const Identity& who, std::string_view topic, Access access) const;

  struct Rule {
    uint8_t access = 0;  // bits of kRead | kWrite; 0: deny
    std::string filter;
  };
  using Rules = std::vector<Rule>;

 private:
  struct Cidr {
    IpAddress network;
    int prefix_bits = 0;  // of the 128
    bool Contains(const IpAddress& address) const;
  };
  // Applies `rules` to the request; patterns are substituted first. Sets *denied or *granted.
  void Apply(const Rules& rules, bool patterns, const Identity& who, std::string_view topic,
             Access access, bool* denied, bool* granted) const;

  Rules anonymous_;
  Rules patterns_;
  absl::flat_hash_map<std::string, Rules> users_;
  absl::flat_hash_map<std::string, Rules> clients_;
  std::vector<std::pair<Cidr, Rules>> addresses_;
  friend class AclParser;
};

}  // namespace mqtt::auth
