// SPDX-License-Identifier: Apache-2.0
// HOST:PORT text, split and joined in one place: listener and peer addresses in the config,
// the HTTP listener, bridges, the cluster and its Raft port, and ACL peer addresses. Pure; any
// thread.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mqtt {

struct HostPort {
  std::string host;  // without the [ ] of an IPv6 literal; may be empty (HostPortRules)
  uint16_t port = 0;

  bool operator==(const HostPort&) const = default;
};

// What a caller accepts beyond "a non-empty host and a port in 1..65535".
struct HostPortRules {
  bool allow_empty_host = false;  // ":1883": a listener's "every interface"
  bool allow_port_zero = false;   // "h:0": a listener's "any free port"
};

// Splits "host:1883", "10.0.0.1:1883", "[::1]:1883". The port is 1 to 5 ASCII digits (no sign,
// no space) with a value up to 65535. A host in [ ] is returned without them and must be
// followed by ":PORT". A host without brackets ends at the last ':', so "::1:1883" is host
// "::1", port 1883: the form a socket's peer address is printed in (net::Transport::peer());
// configuration should bracket IPv6. A '[' or ']' anywhere else is an error. The host is not
// checked further (a name or an address literal: the caller resolves it).
// kInvalidArgument, with a message naming `text` and what is wrong, otherwise.
absl::StatusOr<HostPort> ParseHostPort(absl::string_view text, HostPortRules rules = {});

// "host:1883", "[::1]:1883": brackets a host that holds a ':' (an IPv6 literal), so that
// ParseHostPort(JoinHostPort(h, p)) gives back {h, p}.
std::string JoinHostPort(absl::string_view host, uint16_t port);

}  // namespace mqtt
