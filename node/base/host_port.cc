// SPDX-License-Identifier: Apache-2.0
#include "node/base/host_port.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace mqtt {
namespace {

absl::Status Invalid(absl::string_view text, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("'", text, "' ", what));
}

// Digits only: absl::SimpleAtoi would also take a sign and surrounding spaces. At most 5 digits
// keeps the value within uint32_t before the range check.
absl::StatusOr<uint16_t> ParsePort(absl::string_view text, absl::string_view port,
                                   HostPortRules rules) {
  if (port.empty()) return Invalid(text, "has an empty port");
  uint32_t value = 0;
  for (char c : port) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return Invalid(text, absl::StrCat("has a port that is not a number: '", port, "'"));
    }
    if (value <= 65535) value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  const uint32_t min = rules.allow_port_zero ? 0 : 1;
  if (value < min || value > 65535) {
    return Invalid(text, absl::StrCat("has a port outside ", min, "..65535"));
  }
  return static_cast<uint16_t>(value);
}

}  // namespace

absl::StatusOr<HostPort> ParseHostPort(absl::string_view text, HostPortRules rules) {
  absl::string_view host;
  absl::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos) return Invalid(text, "has a '[' without its ']'");
    host = text.substr(1, close - 1);
    const absl::string_view rest = text.substr(close + 1);
    if (rest.empty()) return Invalid(text, "has no port (HOST:PORT)");
    if (rest.front() != ':') return Invalid(text, "has something other than ':PORT' after ']'");
    port = rest.substr(1);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) return Invalid(text, "has no port (HOST:PORT)");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.find_first_of("[]") != absl::string_view::npos) {
    return Invalid(text, "has unbalanced '[' ']' around the host");
  }
  if (host.empty() && !rules.allow_empty_host) return Invalid(text, "has an empty host");
  absl::StatusOr<uint16_t> number = ParsePort(text, port, rules);
  if (!number.ok()) return number.status();
  return HostPort{std::string(host), *number};
}

std::string JoinHostPort(absl::string_view host, uint16_t port) {
  if (host.find(':') != absl::string_view::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

}  // namespace mqtt
