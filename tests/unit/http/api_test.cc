// SPDX-License-Identifier: Apache-2.0
// The HTTP API's pure parts: the publish body, API keys and their check. The routes run against
// a real mqttd in tests/integration/15_http_api.py.
#include "node/http/api.h"

#include <cstdio>
#include <fstream>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "node/http/api_publish.h"

namespace mqtt::http {
namespace {

TEST(PublishRequestTest, TopicPayloadQosRetain) {
  auto m = ParsePublishRequest(R"({"topic": "a/b", "payload": "hi", "qos": 2, "retain": true})");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->topic, "a/b");
  EXPECT_EQ((*m)->payload, "hi");
  EXPECT_EQ((*m)->qos, 2);
  EXPECT_TRUE((*m)->retain);
  EXPECT_EQ((*m)->properties, nullptr);
}

TEST(PublishRequestTest, Base64PayloadAndProperties) {
  auto m = ParsePublishRequest(
      R"({"topic": "t", "payload_base64": "AAH/", "properties": {"content_type": "x/y",
          "correlation_data_base64": "AQI=", "message_expiry_interval": 30,
          "user_properties": [{"key": "k", "value": "v"}]}})");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->payload, std::string("\x00\x01\xff", 3));
  ASSERT_NE((*m)->properties, nullptr);
  EXPECT_EQ((*m)->properties->content_type, "x/y");
  EXPECT_EQ((*m)->properties->correlation_data, std::string("\x01\x02", 2));
  EXPECT_EQ((*m)->properties->message_expiry_interval, 30u);
  EXPECT_EQ((*m)->properties->user_properties.size(), 1u);
  EXPECT_NE((*m)->expires_at_ms, 0);
}

TEST(PublishRequestTest, BadBodiesNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {"[1]", "the body must be a JSON object"},
      {"{", "the body must be a JSON object"},
      {R"({"payload": "x"})", "topic: required text"},
      {R"({"topic": "a/#"})", "topic: not a valid topic name"},
      {R"({"topic": "$SYS/x"})", "topic: $SYS topics are the node's own"},
      {R"({"topic": "a", "qos": 3})", "qos: must be an integer from 0 to 2"},
      {R"({"topic": "a", "qos": -1})", "qos: must be an integer from 0 to 2"},
      {R"({"topic": "a", "retain": 1})", "retain: must be true or false"},
      {R"({"topic": "a", "payload": "x", "payload_base64": "eA=="})",
       "give payload or payload_base64, not both"},
      {R"({"topic": "a", "payload_base64": "!!"})", "payload_base64: must be a base64 string"},
      {R"({"topic": "a", "payload_base64": "/w==", "properties": {"payload_format_indicator": 1}})",
       "payload: not UTF-8 while payload_format_indicator is 1"},
      {R"({"topic": "a", "properties": {"response_topic": "r/+"}})",
       "properties.response_topic: not a valid topic name"},
      {R"({"topic": "a", "properties": {"user_properties": [{"key": 1}]}})",
       "properties.user_properties: each must be {\"key\": text, \"value\": text}"},
  };
  for (const auto& [body, error] : cases) {
    auto m = ParsePublishRequest(body);
    ASSERT_FALSE(m.ok()) << body;
    EXPECT_EQ(m.status().message(), error) << body;
  }
}

TEST(ApiKeysTest, BearerKeyMustMatchOneKeyExactly) {
  const std::vector<std::string> keys = {"alpha", "beta-2"};
  EXPECT_TRUE(Authorized(keys, "Bearer alpha"));
  EXPECT_TRUE(Authorized(keys, "Bearer beta-2"));
  EXPECT_FALSE(Authorized(keys, "Bearer alph"));
  EXPECT_FALSE(Authorized(keys, "Bearer alphaa"));
  EXPECT_FALSE(Authorized(keys, "alpha"));
  EXPECT_FALSE(Authorized(keys, "Basic YWxwaGE="));
  EXPECT_FALSE(Authorized(keys, ""));
  EXPECT_FALSE(Authorized({}, "Bearer "));
}

// RFC 7617: "Basic base64(USER:PASSWORD)", split at the first ':'; checked against a password
// file in Mosquitto's format. With users only, a Bearer key is not enough, and vice versa.
TEST(ApiKeysTest, BasicAuthUserAndPasswordFromAPasswordFile) {
  absl::StatusOr<std::string> hash = auth::HashPassword("pw:with:colons");
  ASSERT_TRUE(hash.ok()) << hash.status();
  absl::StatusOr<auth::PasswordFile> users =
      auth::PasswordFile::Parse("ops:" + *hash + "\n", "users");
  ASSERT_TRUE(users.ok()) << users.status();
  ApiAuth basic_only{{}, std::make_shared<const auth::PasswordFile>(std::move(*users))};
  auto basic = [](const std::string& credentials) {
    return "Basic " + absl::Base64Escape(credentials);
  };
  EXPECT_TRUE(AuthorizedRequest(basic_only, basic("ops:pw:with:colons")));
  EXPECT_FALSE(AuthorizedRequest(basic_only, basic("ops:pw")));
  EXPECT_FALSE(AuthorizedRequest(basic_only, basic("other:pw:with:colons")));
  EXPECT_FALSE(AuthorizedRequest(basic_only, basic("ops")));
  EXPECT_FALSE(AuthorizedRequest(basic_only, "Basic %%%"));
  EXPECT_FALSE(AuthorizedRequest(basic_only, "Bearer alpha"));
  ApiAuth both = basic_only;
  both.keys = {"alpha"};
  EXPECT_TRUE(AuthorizedRequest(both, "Bearer alpha"));
  EXPECT_TRUE(AuthorizedRequest(both, basic("ops:pw:with:colons")));
  ApiAuth keys_only{{"alpha"}, nullptr};
  EXPECT_FALSE(AuthorizedRequest(keys_only, basic("ops:pw:with:colons")));
  EXPECT_TRUE(AuthorizedRequest(keys_only, "Bearer alpha"));
}

TEST(ApiKeysTest, FileSkipsCommentsAndBlankLines) {
  const std::string path = ::testing::TempDir() + "/api-keys";
  std::ofstream(path) << "# ops\n\n  k1 \nk2\n";
  auto keys = ReadApiKeys(path);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(*keys, (std::vector<std::string>{"k1", "k2"}));
  std::ofstream(path) << "# none\n";
  EXPECT_EQ(ReadApiKeys(path).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadApiKeys(path + ".missing").status().code(), absl::StatusCode::kNotFound);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace mqtt::http
