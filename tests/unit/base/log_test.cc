// SPDX-License-Identifier: Apache-2.0
#include "node/base/log.h"

#include "gtest/gtest.h"

namespace mqtt {
namespace {

constexpr int64_t kMs = 1764782166123;  // 2025-12-03T17:16:06.123Z

TEST(LogTest, TextLineHasTimestampLevelMessageAndFields) {
  EXPECT_EQ(FormatLogLine(LogFormat::kText, kMs, LogLevel::kInfo, "client connected",
                          {{"client_id", "c1"}, {"keep_alive", 60}}),
            "2025-12-03T17:16:06.123Z info client connected client_id=c1 keep_alive=60");
}

TEST(LogTest, TextFieldWithSpaceOrQuoteOrEmptyIsQuoted) {
  EXPECT_EQ(FormatLogLine(LogFormat::kText, kMs, LogLevel::kWarn, "m",
                          {{"reason", "a b"}, {"id", "x\"y"}, {"e", ""}}),
            "2025-12-03T17:16:06.123Z warn m reason=\"a b\" id=\"x\\\"y\" e=\"\"");
}

TEST(LogTest, JsonLineIsOneObjectWithFieldsInOrder) {
  EXPECT_EQ(FormatLogLine(LogFormat::kJson, kMs, LogLevel::kError, "boom",
                          {{"client_id", "c1"}, {"reason_code", 142}, {"neg", -1}}),
            R"({"ts":"2025-12-03T17:16:06.123Z","level":"error","msg":"boom",)"
            R"("client_id":"c1","reason_code":142,"neg":-1})");
}

TEST(LogTest, JsonEscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(FormatLogLine(LogFormat::kJson, kMs, LogLevel::kDebug, "a\"b\\c\nd\x01", {}),
            R"({"ts":"2025-12-03T17:16:06.123Z","level":"debug","msg":"a\"b\\c\nd\u0001"})");
}

TEST(LogTest, ParseLogFormatAcceptsTextAndJsonOnly) {
  LogFormat format = LogFormat::kText;
  EXPECT_TRUE(ParseLogFormat("json", &format));
  EXPECT_EQ(format, LogFormat::kJson);
  EXPECT_TRUE(ParseLogFormat("text", &format));
  EXPECT_EQ(format, LogFormat::kText);
  EXPECT_FALSE(ParseLogFormat("JSON", &format));
}

TEST(LogTest, FilteredEventDoesNotEvaluateItsFields) {
  SetLogLevel(LogLevel::kError);
  int evaluated = 0;
  auto field = [&evaluated] {
    ++evaluated;
    return std::string("x");
  };
  MQTT_LOG_EVENT(kInfo, "not written", {"f", field()});
  EXPECT_EQ(evaluated, 0);
  SetLogLevel(LogLevel::kInfo);
}

}  // namespace
}  // namespace mqtt
