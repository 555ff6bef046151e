// SPDX-License-Identifier: Apache-2.0
// Topic name/filter validation and matching, MQTT 3.1.1 / 5.0 section 4.7.
#include "node/router/topic.h"

#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"

namespace mqtt {
namespace {

using ::std::string_view_literals::operator""sv;

std::vector<std::string_view> Levels(std::string_view s) {
  std::vector<std::string_view> out;
  TopicLevelCursor cursor(s);
  while (!cursor.done()) out.push_back(cursor.Next());
  return out;
}

TEST(TopicLevelCursorTest, SplitsOnSlashKeepingEmptyLevels) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(Levels("a"), V({"a"}));
  EXPECT_EQ(Levels("a/b/c"), V({"a", "b", "c"}));
  EXPECT_EQ(Levels("a//b"), V({"a", "", "b"}));
  EXPECT_EQ(Levels("/"), V({"", ""}));
  EXPECT_EQ(Levels("/a"), V({"", "a"}));
  EXPECT_EQ(Levels("a/"), V({"a", ""}));
  EXPECT_EQ(Levels(""), V({""}));
}

// --- Topic names ---------------------------------------------------------------------------

TEST(TopicNameTest, AcceptsOrdinaryNamesAndEmptyLevels) {
  for (std::string_view name :
       {"a", "sport/tennis/player1", "/", "//", "a//b", "/a", "a/", "/finance", "$SYS/broker/load",
        "$", "Accounts payable", "caf\xc3\xa9/\xe2\x82\xac", "\xf0\x9f\x98\x80"}) {
    EXPECT_TRUE(IsValidTopicName(name)) << name;
  }
}

// [MQTT-4.7.3-1] at least one character.
TEST(TopicNameTest, RejectsEmpty_MQTT_4_7_3_1) { EXPECT_FALSE(IsValidTopicName("")); }

// [MQTT-3.3.2-2] no wildcard characters in a topic name, wherever they appear.
TEST(TopicNameTest, RejectsWildcards_MQTT_3_3_2_2) {
  for (std::string_view name : {"+", "#", "a/+", "a/#", "+/a", "a+", "a#b", "sport/tennis#"}) {
    EXPECT_FALSE(IsValidTopicName(name)) << name;
  }
}

// The check for a topic the decoder validated as UTF-8: every rule but the encoding.
TEST(TopicNameTest, Utf8TopicNameChecksEverythingButTheEncoding) {
  EXPECT_TRUE(IsValidUtf8TopicName("sport/tennis/player1"));
  EXPECT_FALSE(IsValidUtf8TopicName(""));  // [MQTT-4.7.3-1]
  EXPECT_FALSE(IsValidUtf8TopicName(std::string(kMaxTopicLength + 1, 'a')));
  for (std::string_view name : {"+", "#", "a/+", "a#b"}) {
    EXPECT_FALSE(IsValidUtf8TopicName(name)) << name;  // [MQTT-3.3.2-2]
  }
}

// [MQTT-4.7.3-2] / [MQTT-1.5.4-2]: no U+0000; [MQTT-1.5.4-1]: well-formed UTF-8.
TEST(TopicNameTest, RejectsNulAndInvalidUtf8_MQTT_1_5_4_1_and_2) {
  EXPECT_FALSE(IsValidTopicName("a\0b"sv));
  EXPECT_FALSE(IsValidTopicName("\0"sv));
  EXPECT_FALSE(IsValidTopicName("\xff"));          // never valid in UTF-8
  EXPECT_FALSE(IsValidTopicName("a/\xc3"));        // truncated sequence
  EXPECT_FALSE(IsValidTopicName("\xc0\x80"));      // overlong U+0000
  EXPECT_FALSE(IsValidTopicName("\xed\xa0\x80"));  // surrogate U+D800
  EXPECT_FALSE(IsValidTopicName("\x80"));          // stray continuation byte
}

// Section 1.5.4: a UTF-8 string is at most 65535 bytes.
TEST(TopicNameTest, LengthLimitIs65535Bytes) {
  EXPECT_TRUE(IsValidTopicName(std::string(65535, 'a')));
  EXPECT_FALSE(IsValidTopicName(std::string(65536, 'a')));
  EXPECT_TRUE(IsValidTopicName(std::string(65535, '/')));
}

// --- Topic filters -------------------------------------------------------------------------

TEST(TopicFilterTest, AcceptsSpecExamples) {
  for (std::string_view filter : {"sport/tennis/player1/#",
                                  "sport/#",
                                  "#",
                                  "sport/tennis/#",
                                  "+",
                                  "+/tennis/#",
                                  "sport/+/player1",
                                  "sport/tennis/+",
                                  "+/+",
                                  "/+",
                                  "/",
                                  "$SYS/#",
                                  "$SYS/monitor/+",
                                  "a//b",
                                  "/a",
                                  "a/",
                                  "//#",
                                  "+/",
                                  "/#",
                                  "+/+/+",
                                  "sport/tennis/player1"}) {
    EXPECT_TRUE(IsValidTopicFilter(filter)) << filter;
  }
}

// [MQTT-4.7.3-1] at least one character.
TEST(TopicFilterTest, RejectsEmpty_MQTT_4_7_3_1) { EXPECT_FALSE(IsValidTopicFilter("")); }

// [MQTT-4.7.1-2] '#' must be alone in its level and the last level.
TEST(TopicFilterTest, MultiLevelWildcardOnlyAloneAndLast_MQTT_4_7_1_2) {
  for (std::string_view filter : {"sport/tennis#", "sport/tennis/#/ranking", "#/", "#/a", "##",
                                  "a#", "#a", "a/#/", "a/#/#", "a/b#/c"}) {
    EXPECT_FALSE(IsValidTopicFilter(filter)) << filter;
  }
}

// [MQTT-4.7.1-3] '+' must occupy an entire level.
TEST(TopicFilterTest, SingleLevelWildcardOnlyAsWholeLevel_MQTT_4_7_1_3) {
  for (std::string_view filter : {"sport+", "a+/b", "+a", "a/+b/c", "a/b+", "++", "+#", "#+"}) {
    EXPECT_FALSE(IsValidTopicFilter(filter)) << filter;
  }
}

TEST(TopicFilterTest, RejectsNulAndInvalidUtf8_MQTT_1_5_4_1_and_2) {
  EXPECT_FALSE(IsValidTopicFilter("a/\0/#"sv));
  EXPECT_FALSE(IsValidTopicFilter("\xff/#"));
  EXPECT_FALSE(IsValidTopicFilter("+/\xc0\x80"));
  EXPECT_FALSE(IsValidTopicFilter("\xed\xbf\xbf"));
}

TEST(TopicFilterTest, LengthLimitIs65535Bytes) {
  EXPECT_TRUE(IsValidTopicFilter(std::string(65533, 'a') + "/#"));
  EXPECT_FALSE(IsValidTopicFilter(std::string(65534, 'a') + "/#"));
}

// --- Matching ------------------------------------------------------------------------------

struct MatchCase {
  std::string_view filter;
  std::string_view topic;
  bool matches;
};

void ExpectTable(const std::vector<MatchCase>& cases) {
  for (const MatchCase& c : cases) {
    EXPECT_EQ(TopicMatches(c.filter, c.topic), c.matches)
        << "filter '" << c.filter << "' topic '" << c.topic << "'";
  }
}

// 4.7.1.2 Multi-level wildcard: '#' matches the parent level and any number of child levels.
TEST(TopicMatchTest, MultiLevelWildcardSpecExamples_MQTT_4_7_1_2) {
  ExpectTable({
      {"sport/tennis/player1/#", "sport/tennis/player1", true},
      {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
      {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
      {"sport/tennis/player1/#", "sport/tennis/player2", false},
      {"sport/tennis/player1/#", "sport/tennis", false},
      {"sport/#", "sport", true},
      {"sport/#", "sport/", true},
      {"sport/#", "sports", false},
      {"sport/#", "/sport", false},
      {"#", "sport", true},
      {"#", "/", true},
      {"#", "a/b/c/d", true},
      {"/#", "/", true},
      {"/#", "/a/b", true},
      {"/#", "a", false},
      {"a//#", "a/", true},  // parent of '#' is the empty level
      {"a//#", "a//b", true},
      {"a//#", "a/b", false},
  });
}

// 4.7.1.3 Single-level wildcard: '+' matches exactly one level, which may be empty.
TEST(TopicMatchTest, SingleLevelWildcardSpecExamples_MQTT_4_7_1_3) {
  ExpectTable({
      {"sport/tennis/+", "sport/tennis/player1", true},
      {"sport/tennis/+", "sport/tennis/player2", true},
      {"sport/tennis/+", "sport/tennis/player1/ranking", false},
      {"sport/+", "sport", false},
      {"sport/+", "sport/", true},
      {"+/+", "/finance", true},
      {"/+", "/finance", true},
      {"+", "/finance", false},
      {"+", "finance", true},
      {"+", "/", false},
      {"+/+", "/", true},
      {"+/tennis/#", "sport/tennis/player1", true},
      {"+/tennis/#", "sport/tennis", true},
      {"+/tennis/#", "sport/golf", false},
      {"sport/+/player1", "sport/tennis/player1", true},
      {"sport/+/player1", "sport//player1", true},
      {"sport/+/player1", "sport/player1", false},
      {"a/+/c", "a//c", true},
      {"+/+/+", "//", true},
      {"+/+/+", "/", false},
  });
}

// 4.7.2 Topics beginning with '$'.
TEST(TopicMatchTest, DollarTopicsHiddenFromLeadingWildcards_MQTT_4_7_2_1) {
  ExpectTable({
      {"#", "$SYS/monitor/Clients", false},
      {"#", "$SYS", false},
      {"+", "$SYS", false},
      {"+/monitor/Clients", "$SYS/monitor/Clients", false},
      {"+/#", "$SYS/x", false},
      {"$SYS/#", "$SYS/monitor/Clients", true},
      {"$SYS/#", "$SYS", true},
      {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
      {"$SYS/+/Clients", "$SYS/monitor/Clients", true},
      {"$", "$", true},
      // Only the first level matters: '$' deeper down is an ordinary character.
      {"a/+", "a/$b", true},
      {"a/#", "a/$b/c", true},
      {"#", "a/$b", true},
      {"+/$b", "a/$b", true},
  });
}

// 4.7.3: topics are case-sensitive, spaces are ordinary, "/finance" differs from "finance".
TEST(TopicMatchTest, ExactMatchIsCaseSensitiveAndLevelExact_MQTT_4_7_3) {
  ExpectTable({
      {"ACCOUNTS", "ACCOUNTS", true},
      {"ACCOUNTS", "Accounts", false},
      {"Accounts payable", "Accounts payable", true},
      {"/finance", "finance", false},
      {"finance", "/finance", false},
      {"a/b", "a/b/", false},
      {"a/b/", "a/b", false},
      {"a//b", "a/b", false},
      {"a/b", "a/b", true},
  });
}

}  // namespace
}  // namespace mqtt
