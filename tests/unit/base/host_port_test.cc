// SPDX-License-Identifier: Apache-2.0
#include "node/base/host_port.h"

#include "gtest/gtest.h"

namespace mqtt {
namespace {

constexpr HostPortRules kListener{.allow_empty_host = true, .allow_port_zero = true};

HostPort Parsed(absl::string_view text, HostPortRules rules = {}) {
  absl::StatusOr<HostPort> parsed = ParseHostPort(text, rules);
  EXPECT_TRUE(parsed.ok()) << text << ": " << parsed.status();
  return parsed.value_or(HostPort{"(error)", 0});
}

std::string Error(absl::string_view text, HostPortRules rules = {}) {
  absl::StatusOr<HostPort> parsed = ParseHostPort(text, rules);
  if (parsed.ok()) return "(parsed)";
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << text;
  return std::string(parsed.status().message());
}

TEST(HostPortTest, Ipv4AndHostName) {
  EXPECT_EQ(Parsed("10.0.0.1:1883"), (HostPort{"10.0.0.1", 1883}));
  EXPECT_EQ(Parsed("broker.example:8883"), (HostPort{"broker.example", 8883}));
  EXPECT_EQ(Parsed("localhost:01883"), (HostPort{"localhost", 1883}));  // leading zero
}

TEST(HostPortTest, BracketedIpv6LosesItsBrackets) {
  EXPECT_EQ(Parsed("[::1]:1883"), (HostPort{"::1", 1883}));
  EXPECT_EQ(Parsed("[fd12::1]:99"), (HostPort{"fd12::1", 99}));
  EXPECT_EQ(Parsed("[::]:0", kListener), (HostPort{"::", 0}));
}

// The form a socket's peer is printed in (inet_ntop, then ":PORT"): the last ':' splits.
TEST(HostPortTest, UnbracketedIpv6SplitsAtTheLastColon) {
  EXPECT_EQ(Parsed("::1:5678"), (HostPort{"::1", 5678}));
  EXPECT_EQ(Parsed("::ffff:10.1.2.3:5"), (HostPort{"::ffff:10.1.2.3", 5}));
}

TEST(HostPortTest, MissingPort) {
  EXPECT_EQ(Error("broker"), "'broker' has no port (HOST:PORT)");
  EXPECT_EQ(Error(""), "'' has no port (HOST:PORT)");
  EXPECT_EQ(Error("[::1]"), "'[::1]' has no port (HOST:PORT)");
  EXPECT_EQ(Error("broker:"), "'broker:' has an empty port");
  EXPECT_EQ(Error("[::1]:"), "'[::1]:' has an empty port");
}

TEST(HostPortTest, BadPort) {
  EXPECT_EQ(Error("h:http"), "'h:http' has a port that is not a number: 'http'");
  EXPECT_EQ(Error("h:+80"), "'h:+80' has a port that is not a number: '+80'");
  EXPECT_EQ(Error("h: 80"), "'h: 80' has a port that is not a number: ' 80'");
  EXPECT_EQ(Error("h:-1"), "'h:-1' has a port that is not a number: '-1'");
  EXPECT_EQ(Error("h:99999999999999999999"),
            "'h:99999999999999999999' has a port outside 1..65535");
}

TEST(HostPortTest, PortRange) {
  EXPECT_EQ(Error("h:0"), "'h:0' has a port outside 1..65535");
  EXPECT_EQ(Parsed("h:0", {.allow_port_zero = true}), (HostPort{"h", 0}));
  EXPECT_EQ(Parsed("h:1"), (HostPort{"h", 1}));
  EXPECT_EQ(Parsed("h:65535"), (HostPort{"h", 65535}));
  EXPECT_EQ(Error("h:65536"), "'h:65536' has a port outside 1..65535");
  EXPECT_EQ(Error("h:65536", kListener), "'h:65536' has a port outside 0..65535");
}

TEST(HostPortTest, EmptyHostOnlyWhenAllowed) {
  EXPECT_EQ(Error(":1883"), "':1883' has an empty host");
  EXPECT_EQ(Error("[]:1883"), "'[]:1883' has an empty host");
  EXPECT_EQ(Parsed(":1883", {.allow_empty_host = true}), (HostPort{"", 1883}));
  EXPECT_EQ(Parsed(":0", kListener), (HostPort{"", 0}));
}

TEST(HostPortTest, UnbalancedBrackets) {
  EXPECT_EQ(Error("[::1:1883"), "'[::1:1883' has a '[' without its ']'");
  EXPECT_EQ(Error("::1]:1883"), "'::1]:1883' has unbalanced '[' ']' around the host");
  EXPECT_EQ(Error("[[::1]]:1883"), "'[[::1]]:1883' has something other than ':PORT' after ']'");
  EXPECT_EQ(Error("[::1]x:1883"), "'[::1]x:1883' has something other than ':PORT' after ']'");
  EXPECT_EQ(Error("a[b]:1883"), "'a[b]:1883' has unbalanced '[' ']' around the host");
}

TEST(HostPortTest, JoinBracketsIpv6AndRoundTrips) {
  EXPECT_EQ(JoinHostPort("10.0.0.1", 1883), "10.0.0.1:1883");
  EXPECT_EQ(JoinHostPort("broker.example", 0), "broker.example:0");
  EXPECT_EQ(JoinHostPort("::1", 65535), "[::1]:65535");
  EXPECT_EQ(JoinHostPort("", 1883), ":1883");
  for (const HostPort& hp : {HostPort{"::1", 1883}, HostPort{"h", 1}, HostPort{"", 0},
                             HostPort{"::ffff:10.1.2.3", 65535}}) {
    EXPECT_EQ(Parsed(JoinHostPort(hp.host, hp.port), kListener), hp);
  }
}

}  // namespace
}  // namespace mqtt
