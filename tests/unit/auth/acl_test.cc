// SPDX-License-Identifier: Apache-2.0
// ACL files: Mosquitto's syntax and matching, our client and address sections, parse errors.
#include "node/auth/acl.h"

#include <gtest/gtest.h>

#include <string>

namespace mqtt::auth {
namespace {

AclFile MustParse(const std::string& text) {
  absl::StatusOr<AclFile> acl = AclFile::Parse(text, "acl");
  EXPECT_TRUE(acl.ok()) << acl.status();
  return acl.ok() ? std::move(*acl) : AclFile::Parse("", "empty").value();
}

struct Who {
  std::optional<std::string> user;
  std::string client_id = "c1";
  std::string peer = "10.0.0.1:1234";
  Identity identity() const {
    return {user ? &*user : nullptr, client_id, IpAddress::FromPeer(peer)};
  }
};

bool Can(const AclFile& acl, const Who& who, const std::string& topic, Access access) {
  return acl.Allowed(who.identity(), topic, access);
}

TEST(FilterCoversTest, MatchesAsMqttFilters) {
  EXPECT_TRUE(FilterCovers("a/b", "a/b"));
  EXPECT_FALSE(FilterCovers("a/b", "a/c"));
  EXPECT_FALSE(FilterCovers("a/b", "a/b/c"));
  EXPECT_FALSE(FilterCovers("a/b/c", "a/b"));
  EXPECT_TRUE(FilterCovers("a/+", "a/b"));
  EXPECT_FALSE(FilterCovers("a/+", "a/b/c"));
  EXPECT_TRUE(FilterCovers("a/+", "a/"));  // an empty level is a level
  EXPECT_TRUE(FilterCovers("a/#", "a"));   // [MQTT-4.7.1-2]: the parent too
  EXPECT_TRUE(FilterCovers("a/#", "a/b/c"));
  EXPECT_TRUE(FilterCovers("#", "a/b"));
  EXPECT_TRUE(FilterCovers("+/+", "/b"));
  // Wildcards at the first level do not match '$' topics [MQTT-4.7.2-1].
  EXPECT_FALSE(FilterCovers("#", "$SYS/x"));
  EXPECT_FALSE(FilterCovers("+/x", "$SYS/x"));
  EXPECT_TRUE(FilterCovers("$SYS/#", "$SYS/x"));
  // Subscription filters: covered only if every topic they match is.
  EXPECT_TRUE(FilterCovers("a/#", "a/+/c"));
  EXPECT_TRUE(FilterCovers("a/+", "a/+"));
  EXPECT_FALSE(FilterCovers("a/+", "a/#"));
  EXPECT_FALSE(FilterCovers("a/b", "a/+"));
  EXPECT_FALSE(FilterCovers("a/+/c", "a/#"));
  EXPECT_TRUE(FilterCovers("#", "#"));
}

TEST(AclTest, TopicRulesBeforeAnyUserAreForAnonymousClients) {
  AclFile acl = MustParse("topic read public/#\nuser alice\ntopic alice/#\n");
  Who anonymous;
  Who alice{"alice"};
  EXPECT_TRUE(Can(acl, anonymous, "public/x", Access::kRead));
  EXPECT_FALSE(Can(acl, anonymous, "public/x", Access::kWrite));
  EXPECT_FALSE(Can(acl, anonymous, "alice/x", Access::kRead));
  EXPECT_FALSE(Can(acl, alice, "public/x", Access::kRead));
  EXPECT_TRUE(Can(acl, alice, "alice/x", Access::kWrite));  // no access word: readwrite
  EXPECT_TRUE(Can(acl, alice, "alice/x", Access::kRead));
  EXPECT_FALSE(Can(acl, Who{"bob"}, "alice/x", Access::kRead));  // nothing granted: refused
}

TEST(AclTest, AccessWords) {
  AclFile acl = MustParse(
      "user u\ntopic read r\ntopic write w\ntopic readwrite rw\ntopic deny d\ntopic read d\n");
  Who u{"u"};
  EXPECT_TRUE(Can(acl, u, "r", Access::kRead));
  EXPECT_FALSE(Can(acl, u, "r", Access::kWrite));
  EXPECT_TRUE(Can(acl, u, "w", Access::kWrite));
  EXPECT_FALSE(Can(acl, u, "w", Access::kRead));
  EXPECT_TRUE(Can(acl, u, "rw", Access::kRead));
  EXPECT_TRUE(Can(acl, u, "rw", Access::kWrite));
  EXPECT_FALSE(Can(acl, u, "d", Access::kRead));  // deny wins over a grant, whatever the order
}

TEST(AclTest, TopicWithSpacesAndAccessWordAsTopic) {
  AclFile acl = MustParse("user u\ntopic read a b/c\ntopic read\n");
  Who u{"u"};
  EXPECT_TRUE(Can(acl, u, "a b/c", Access::kRead));
  EXPECT_TRUE(Can(acl, u, "read", Access::kWrite));  // "topic read": the topic is "read"
}

TEST(AclTest, DenyCarvesOutOfAWildcardGrant) {
  AclFile acl = MustParse("user u\ntopic readwrite #\ntopic deny secret/#\n");
  Who u{"u"};
  EXPECT_TRUE(Can(acl, u, "x/y", Access::kWrite));
  EXPECT_FALSE(Can(acl, u, "secret/y", Access::kWrite));
  EXPECT_FALSE(Can(acl, u, "secret/y", Access::kRead));
  // Subscribing to '#' is allowed (the deny does not cover all of it); delivery filters.
  EXPECT_TRUE(Can(acl, u, "#", Access::kSubscribe));
  EXPECT_FALSE(Can(acl, u, "secret/+", Access::kSubscribe));
  EXPECT_FALSE(Can(acl, u, "secret", Access::kSubscribe));
}

TEST(AclTest, SubscribeNeedsReadCoveringTheWholeFilter) {
  AclFile acl = MustParse("user u\ntopic read a/+\ntopic write w/#\n");
  Who u{"u"};
  EXPECT_TRUE(Can(acl, u, "a/b", Access::kSubscribe));
  EXPECT_TRUE(Can(acl, u, "a/+", Access::kSubscribe));
  EXPECT_FALSE(Can(acl, u, "a/#", Access::kSubscribe));
  EXPECT_FALSE(Can(acl, u, "#", Access::kSubscribe));
  EXPECT_FALSE(Can(acl, u, "w/x", Access::kSubscribe));  // write does not grant subscribe
}

TEST(AclTest, PatternsSubstituteUserAndClientForEveryone) {
  AclFile acl = MustParse(
      "user alice\ntopic read x\npattern readwrite users/%u/#\npattern read clients/%c\n");
  Who alice{"alice", "dev-1"};
  Who anonymous{std::nullopt, "dev-2"};
  EXPECT_TRUE(Can(acl, alice, "users/alice/inbox", Access::kWrite));
  EXPECT_FALSE(Can(acl, alice, "users/bob/inbox", Access::kWrite));
  EXPECT_TRUE(Can(acl, alice, "clients/dev-1", Access::kRead));
  EXPECT_FALSE(Can(acl, alice, "clients/dev-2", Access::kRead));
  EXPECT_TRUE(Can(acl, anonymous, "clients/dev-2", Access::kRead));
  EXPECT_FALSE(Can(acl, anonymous, "users/%u/x", Access::kRead));  // no user: pattern skipped
  // A client id holding a wildcard is not substituted.
  EXPECT_FALSE(Can(acl, Who{std::nullopt, "#"}, "clients/#", Access::kSubscribe));
  EXPECT_FALSE(Can(acl, Who{std::nullopt, "+"}, "clients/+", Access::kRead));
}

TEST(AclTest, ClientSectionsAddRulesByClientId) {
  AclFile acl = MustParse("client sensor-7\ntopic write sensors/7/#\n");
  EXPECT_TRUE(Can(acl, Who{std::nullopt, "sensor-7"}, "sensors/7/t", Access::kWrite));
  EXPECT_TRUE(Can(acl, Who{"anyone", "sensor-7"}, "sensors/7/t", Access::kWrite));
  EXPECT_FALSE(Can(acl, Who{std::nullopt, "sensor-8"}, "sensors/7/t", Access::kWrite));
}

TEST(AclTest, AddressSectionsMatchCidrs) {
  AclFile acl = MustParse(
      "address 10.1.0.0/16\ntopic read lan/#\n"
      "address 127.0.0.1\ntopic read local/#\n"
      "address fd00::/8\ntopic read v6/#\n"
      "address 0.0.0.0/0\ntopic deny lan/private\n");
  EXPECT_TRUE(Can(acl, Who{std::nullopt, "c", "10.1.200.3:5"}, "lan/x", Access::kRead));
  EXPECT_FALSE(Can(acl, Who{std::nullopt, "c", "10.2.0.1:5"}, "lan/x", Access::kRead));
  // An IPv4 client on an IPv6 socket.
  EXPECT_TRUE(Can(acl, Who{std::nullopt, "c", "::ffff:10.1.2.3:5"}, "lan/x", Access::kRead));
  EXPECT_FALSE(Can(acl, Who{std::nullopt, "c", "10.1.200.3:5"}, "lan/private", Access::kRead));
  EXPECT_TRUE(Can(acl, Who{std::nullopt, "c", "127.0.0.1:99"}, "local/x", Access::kRead));
  EXPECT_FALSE(Can(acl, Who{std::nullopt, "c", "127.0.0.2:99"}, "local/x", Access::kRead));
  EXPECT_TRUE(Can(acl, Who{std::nullopt, "c", "fd12::1:99"}, "v6/x", Access::kRead));
  EXPECT_TRUE(Can(acl, Who{std::nullopt, "c", "[fd12::1]:99"}, "v6/x", Access::kRead));
  EXPECT_FALSE(Can(acl, Who{std::nullopt, "c", "fe80::1:99"}, "v6/x", Access::kRead));
  EXPECT_FALSE(Can(acl, Who{std::nullopt, "c", "-"}, "lan/x", Access::kRead));  // unknown peer
}

TEST(AclTest, ParseErrorsNameFileAndLine) {
  auto error = [](const std::string& text) {
    return std::string(AclFile::Parse(text, "acl.conf").status().message());
  };
  EXPECT_EQ(error("# c\ntopic read a/#/b\n"), "acl.conf:2: bad topic filter 'a/#/b'");
  EXPECT_EQ(error("topic read a+\n"), "acl.conf:1: bad topic filter 'a+'");
  EXPECT_EQ(error("\n\nuser\n"), "acl.conf:3: user needs a value");
  EXPECT_EQ(error("group x\n"), "acl.conf:1: unknown keyword 'group'");
  EXPECT_EQ(error("address 10.0.0.0/33\n"), "acl.conf:1: bad address or CIDR '10.0.0.0/33'");
  EXPECT_EQ(error("address nohost\n"), "acl.conf:1: bad address or CIDR 'nohost'");
  EXPECT_EQ(error("topic\n"), "acl.conf:1: bad topic filter ''");
  EXPECT_TRUE(AclFile::Parse("  # indented comment\n\n\ttopic   read   a/b  \r\n", "x").ok());
}

}  // namespace
}  // namespace mqtt::auth
