// SPDX-License-Identifier: Apache-2.0
// Bridge topic lines: Mosquitto's syntax, defaults, every row of the prefix table of
// mosquitto.conf(5) ("Configuring Bridges") and the errors.
#include "node/bridge/topic_line.h"

#include "gtest/gtest.h"

namespace mqtt::bridge {
namespace {

TopicLine Parse(absl::string_view text) {
  absl::StatusOr<TopicLine> line = ParseTopicLine(text);
  EXPECT_TRUE(line.ok()) << text << ": " << line.status();
  return line.ok() ? *line : TopicLine{};
}

std::string ErrorOf(absl::string_view text) {
  absl::StatusOr<TopicLine> line = ParseTopicLine(text);
  EXPECT_FALSE(line.ok()) << text;
  return std::string(line.status().message());
}

TEST(TopicLineTest, DirectionDefaultsToOutAndQosToZero) {
  TopicLine line = Parse("sensors/#");
  EXPECT_EQ(line.pattern, "sensors/#");
  EXPECT_EQ(line.direction, Direction::kOut);
  EXPECT_EQ(line.qos, 0);
  EXPECT_TRUE(line.out());
  EXPECT_FALSE(line.in());
  EXPECT_EQ(Parse("a in").direction, Direction::kIn);
  EXPECT_EQ(Parse("a both 2").qos, 2);
  EXPECT_TRUE(Parse("a both").in());
  EXPECT_TRUE(Parse("a both").out());
  EXPECT_EQ(Parse("  a \t in  1 ").qos, 1);
}

// Row 1: pattern L/ R/ -> local L/pattern, remote R/pattern.
TEST(TopicLineTest, TableRowBothPrefixes) {
  TopicLine line = Parse("pattern both 1 L/ R/");
  EXPECT_EQ(line.LocalFilter(), "L/pattern");
  EXPECT_EQ(line.RemoteFilter(), "R/pattern");
  EXPECT_EQ(line.ToRemote("L/pattern"), "R/pattern");
  EXPECT_EQ(line.ToLocal("R/pattern"), "L/pattern");
}

// Row 2: pattern L/ "" -> L/pattern, pattern.
TEST(TopicLineTest, TableRowLocalPrefixOnly) {
  TopicLine line = Parse("pattern both 1 L/ \"\"");
  EXPECT_EQ(line.LocalFilter(), "L/pattern");
  EXPECT_EQ(line.RemoteFilter(), "pattern");
  EXPECT_EQ(line.ToRemote("L/pattern"), "pattern");
  EXPECT_EQ(line.ToLocal("pattern"), "L/pattern");
}

// Row 3: pattern "" R/ -> pattern, R/pattern.
TEST(TopicLineTest, TableRowRemotePrefixOnly) {
  TopicLine line = Parse("pattern both 1 \"\" R/");
  EXPECT_EQ(line.LocalFilter(), "pattern");
  EXPECT_EQ(line.RemoteFilter(), "R/pattern");
  EXPECT_EQ(line.ToRemote("pattern"), "R/pattern");
  EXPECT_EQ(line.ToLocal("R/pattern"), "pattern");
}

// Row 4: pattern "" "" -> no remapping.
TEST(TopicLineTest, TableRowNoRemapping) {
  TopicLine line = Parse("pattern both 1 \"\" \"\"");
  EXPECT_EQ(line.LocalFilter(), "pattern");
  EXPECT_EQ(line.RemoteFilter(), "pattern");
  EXPECT_EQ(line.ToRemote("pattern"), "pattern");
  EXPECT_EQ(line.ToLocal("pattern"), "pattern");
}

// Row 5: "" local remote -> remaps the single topic local to remote.
TEST(TopicLineTest, TableRowEmptyPatternRemapsOneTopic) {
  TopicLine line = Parse("\"\" both 1 local remote");
  EXPECT_EQ(line.pattern, "");
  EXPECT_EQ(line.LocalFilter(), "local");
  EXPECT_EQ(line.RemoteFilter(), "remote");
  EXPECT_EQ(line.ToRemote("local"), "remote");
  EXPECT_EQ(line.ToLocal("remote"), "local");
}

// Rows 6-8: an empty pattern with an empty prefix is invalid.
TEST(TopicLineTest, TableRowsEmptyPatternWithAnEmptyPrefixAreInvalid) {
  const std::string why = "an empty pattern (\"\") needs a local and a remote prefix";
  EXPECT_EQ(ErrorOf("\"\" out 0 local \"\""), why);
  EXPECT_EQ(ErrorOf("\"\" out 0 \"\" remote"), why);
  EXPECT_EQ(ErrorOf("\"\" out 0 \"\" \"\""), why);
  EXPECT_EQ(ErrorOf("\"\""), why);
}

// The documented example that remaps a whole tree.
TEST(TopicLineTest, WholeTreeRemapWithWildcard) {
  TopicLine line = Parse("# both 2 local/topic/ remote/topic/");
  EXPECT_EQ(line.LocalFilter(), "local/topic/#");
  EXPECT_EQ(line.RemoteFilter(), "remote/topic/#");
  EXPECT_EQ(line.ToRemote("local/topic/a/b"), "remote/topic/a/b");
  EXPECT_EQ(line.ToLocal("remote/topic/x"), "local/topic/x");
  EXPECT_EQ(line.ToLocal("elsewhere/x"), std::nullopt);
}

TEST(TopicLineTest, ErrorsSayWhatIsWrong) {
  EXPECT_EQ(ErrorOf(""), "needs a pattern");
  EXPECT_EQ(ErrorOf("a up"), "direction 'up': must be out, in or both");
  EXPECT_EQ(ErrorOf("a in 3"), "QoS '3': must be 0, 1 or 2");
  EXPECT_EQ(ErrorOf("a in x"), "QoS 'x': must be 0, 1 or 2");
  EXPECT_EQ(ErrorOf("a in 1 L/"),
            "a local prefix needs a remote prefix (use \"\" for an empty one)");
  EXPECT_EQ(ErrorOf("a in 1 L/ R/ extra"),
            "too many words (6): pattern [[[out|in|both] qos] local-prefix remote-prefix]");
  EXPECT_EQ(ErrorOf("a/# in 1 L/+/ R/"), "prefix 'L/+/' must not hold a wildcard");
  EXPECT_EQ(ErrorOf("a/#/b"), "pattern 'a/#/b' is not a valid topic filter");
  EXPECT_EQ(ErrorOf("a+"), "pattern 'a+' is not a valid topic filter");
  EXPECT_EQ(ErrorOf("# in 0 L R/"), "a prefix followed by the pattern is not a valid topic filter");
}

}  // namespace
}  // namespace mqtt::bridge
