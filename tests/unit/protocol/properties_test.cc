// SPDX-License-Identifier: Apache-2.0
// MQTT 5.0 properties (section 2.2.2): the table-driven decoder's rules, exercised through the
// public decoders, plus encode order.
#include <string>

#include "gtest/gtest.h"
#include "node/protocol/codec.h"
#include "tests/unit/protocol/codec_test_util.h"

namespace mqtt {
namespace {

using testing_util::Cat;
using testing_util::Hex;
using testing_util::ToHex;

// 5.0 CONNECT with client id "c" and the given property block (hex, length included).
absl::StatusOr<Connect> ConnectWith(std::string_view properties) {
  return DecodeConnect(Hex(Cat("00044d51545405 02 003c", properties, "000163")));
}

// 5.0 QoS 0 PUBLISH to "t" with the given property block.
absl::StatusOr<Publish> PublishWith(std::string_view properties) {
  return DecodePublish(0x30, Hex(Cat("000174", properties, "6869")), Version::kV5);
}

TEST(Properties, EveryConnectPropertyDecodes) {
  absl::StatusOr<Connect> c = ConnectWith(
      "24 1100000e10 150001 6d 160002 0001 1701 1901 210014 22000a 2700100000 260001610001 62");
  ASSERT_OK(c);
  EXPECT_EQ(c->properties.session_expiry_interval, 3600u);
  EXPECT_EQ(c->properties.authentication_method, "m");
  EXPECT_EQ(c->properties.authentication_data, std::string("\x00\x01", 2));
  EXPECT_EQ(c->properties.request_problem_information, 1);
  EXPECT_EQ(c->properties.request_response_information, 1);
  EXPECT_EQ(c->properties.receive_maximum, 20);
  EXPECT_EQ(c->properties.topic_alias_maximum, 10);
  EXPECT_EQ(c->properties.maximum_packet_size, 0x100000u);
  EXPECT_EQ(c->properties.user_properties, (std::vector<UserProperty>{{"a", "b"}}));
}

TEST(Properties, DuplicatePropertyIsProtocolError) {
  EXPECT_PROTOCOL_ERROR(ConnectWith("0a 1100000001 1100000002"));
  EXPECT_PROTOCOL_ERROR(PublishWith("04 0101 0100"));
  EXPECT_PROTOCOL_ERROR(PublishWith("08 030001 61 030001 62"));
}

TEST(Properties, UserPropertyMayRepeatAndKeepsOrder) {
  absl::StatusOr<Publish> p = PublishWith("15 26000162000131 26000161000132 26000162000133");
  ASSERT_OK(p);
  EXPECT_EQ(p->properties.user_properties,
            (std::vector<UserProperty>{{"b", "1"}, {"a", "2"}, {"b", "3"}}));
}

TEST(Properties, UnknownIdentifierIsMalformed) {
  EXPECT_MALFORMED(PublishWith("02 0400"));    // 0x04 unassigned
  EXPECT_MALFORMED(PublishWith("02 0000"));    // 0x00 unassigned
  EXPECT_MALFORMED(PublishWith("02 7f00"));    // 0x7f unassigned
  EXPECT_MALFORMED(PublishWith("03 818100"));  // multi-byte identifier: none defined
}

TEST(Properties, PropertyInTheWrongPacketIsProtocolError) {
  EXPECT_PROTOCOL_ERROR(ConnectWith("03 230001"));      // topic alias in CONNECT
  EXPECT_PROTOCOL_ERROR(PublishWith("05 1100000001"));  // session expiry in PUBLISH
  EXPECT_PROTOCOL_ERROR(PublishWith("02 2401"));        // maximum QoS in PUBLISH
  EXPECT_PROTOCOL_ERROR(ConnectWith("04 120001 61"));   // assigned client id in CONNECT
}

TEST(Properties, RequestProblemInformationOtherThan0Or1IsProtocolError) {
  EXPECT_PROTOCOL_ERROR(ConnectWith("02 1702"));
}

TEST(Properties, RequestResponseInformationOtherThan0Or1IsProtocolError) {
  EXPECT_PROTOCOL_ERROR(ConnectWith("02 19ff"));
}

TEST(Properties, ReceiveMaximum0IsProtocolError) {
  EXPECT_PROTOCOL_ERROR(ConnectWith("03 210000"));
}

TEST(Properties, MaximumPacketSize0IsProtocolError) {
  EXPECT_PROTOCOL_ERROR(ConnectWith("05 2700000000"));
}

TEST(Properties, TopicAliasMaximum0IsAllowed) { EXPECT_OK(ConnectWith("03 220000")); }

TEST(Properties, StringPropertyInvalidUtf8IsMalformed_MQTT_1_5_4_1) {
  EXPECT_MALFORMED(PublishWith("04 030001 ff"));        // content type
  EXPECT_MALFORMED(PublishWith("04 080001 00"));        // response topic with U+0000
  EXPECT_MALFORMED(PublishWith("07 260001 ff000161"));  // user property name
  EXPECT_MALFORMED(PublishWith("07 260001 610001ff"));  // user property value
}

TEST(Properties, BinaryPropertiesAreNotUtf8Checked) {
  absl::StatusOr<Publish> p = PublishWith("05 090002 ff00");
  ASSERT_OK(p);
  EXPECT_EQ(p->properties.correlation_data, std::string("\xff\x00", 2));
}

TEST(Properties, TruncatedValueIsMalformed) {
  EXPECT_MALFORMED(PublishWith("03 020000"));     // four-byte int with two bytes
  EXPECT_MALFORMED(PublishWith("03 030005"));     // string longer than the block
  EXPECT_MALFORMED(PublishWith("01 23"));         // two-byte int with no bytes
  EXPECT_MALFORMED(PublishWith("02 0b80"));       // varint cut short
  EXPECT_MALFORMED(PublishWith("04 260001 61"));  // pair without its value
}

TEST(Properties, PropertyLengthOverFourBytesIsMalformed) {
  EXPECT_MALFORMED(PublishWith("8080808001"));
}

TEST(Properties, EncodeWritesPresentPropertiesInIdentifierOrder) {
  Publish p{.topic = "t", .payload = ""};
  p.properties.user_properties = {{"k", "v"}};
  p.properties.topic_alias = 1;
  p.properties.payload_format_indicator = 1;
  p.properties.subscription_identifiers = {2, 200};
  std::string out;
  EncodePublish(p, Version::kV5, &out);
  // 30 len | 0001 74 | props: 0101 | 0b02 | 0bc801 | 230001 | 26 0001 6b 0001 76
  EXPECT_EQ(ToHex(out),
            "3015000174110101"
            "0b02"
            "0bc801"
            "230001"
            "2600016b000176");
}

TEST(Properties, ThreeXEncodersIgnoreProperties) {
  Publish p{.topic = "t", .payload = "x"};
  p.properties.content_type = "ignored";
  std::string out;
  EncodePublish(p, Version::kV311, &out);
  EXPECT_EQ(ToHex(out), "300400017478");
}

}  // namespace
}  // namespace mqtt
