// SPDX-License-Identifier: Apache-2.0
// Round trips: Encode* then Decode* gives back the original packet, for every packet type in
// every version where it exists. Also pins the exact bytes of the 5.0 short forms.
#include <string>

#include "gtest/gtest.h"
#include "node/protocol/codec.h"
#include "node/protocol/packets.h"
#include "tests/unit/protocol/codec_test_util.h"

namespace mqtt {
namespace {

using testing_util::Hex;
using testing_util::RoundTrip;
using testing_util::ToHex;

template <typename T>
void ExpectRoundTrip(const T& packet, Version version) {
  absl::StatusOr<T> decoded = RoundTrip(packet, version);
  ASSERT_OK(decoded);
  EXPECT_TRUE(*decoded == packet);
}

// Every property the spec allows in CONNECT (table 2-4), user properties in a given order.
Properties ConnectProperties() {
  Properties p;
  p.session_expiry_interval = 3600;
  p.authentication_method = "SCRAM-SHA-1";
  p.authentication_data = std::string("\x00\xff\x01", 3);
  p.request_problem_information = 0;
  p.request_response_information = 1;
  p.receive_maximum = 20;
  p.topic_alias_maximum = 10;
  p.maximum_packet_size = 1 << 20;
  p.user_properties = {{"b", "2"}, {"a", "1"}, {"b", "3"}};
  return p;
}

Properties WillProperties() {
  Properties p;
  p.payload_format_indicator = 1;
  p.message_expiry_interval = 60;
  p.content_type = "text/plain";
  p.response_topic = "reply/here";
  p.correlation_data = std::string("\x00\x01", 2);
  p.will_delay_interval = 30;
  p.user_properties = {{"k", "v"}};
  return p;
}

Properties ConnackProperties() {
  Properties p;
  p.session_expiry_interval = 0xFFFFFFFF;
  p.assigned_client_identifier = "auto-1234";
  p.server_keep_alive = 120;
  p.authentication_method = "m";
  p.authentication_data = "d";
  p.response_information = "resp/";
  p.server_reference = "other:1883";
  p.reason_string = "ok";
  p.receive_maximum = 65535;
  p.topic_alias_maximum = 0;
  p.maximum_qos = 1;
  p.retain_available = 0;
  p.user_properties = {{"x", "y"}};
  p.maximum_packet_size = 268435460;
  p.wildcard_subscription_available = 1;
  p.subscription_identifier_available = 0;
  p.shared_subscription_available = 1;
  return p;
}

Properties PublishProperties() {
  Properties p;
  p.payload_format_indicator = 0;
  p.message_expiry_interval = 10;
  p.content_type = "application/json";
  p.response_topic = "r";
  p.correlation_data = "corr";
  p.subscription_identifiers = {1, 268435455, 127, 128};
  p.topic_alias = 7;
  p.user_properties = {{"z", ""}, {"", "empty key"}};
  return p;
}

Properties ReasonProperties() {
  Properties p;
  p.reason_string = "because";
  p.user_properties = {{"u", "p"}};
  return p;
}

Connect BasicConnect(Version version) {
  Connect c;
  c.version = version;
  c.clean_start = false;
  c.keep_alive = 60;
  c.client_id = "client-1";
  return c;
}

Connect FullConnect(Version version) {
  Connect c = BasicConnect(version);
  c.clean_start = true;
  Will will;
  will.topic = "will/topic";
  will.payload = std::string("bye\x00\xff", 5);
  will.qos = 2;
  will.retain = true;
  if (version == Version::kV5) will.properties = WillProperties();
  c.will = will;
  c.username = "user";
  c.password = std::string("p\x00ss", 4);
  if (version == Version::kV5) c.properties = ConnectProperties();
  return c;
}

class RoundTripTest : public ::testing::TestWithParam<Version> {
 protected:
  Version version() const { return GetParam(); }
  bool v5() const { return GetParam() == Version::kV5; }
};

INSTANTIATE_TEST_SUITE_P(AllVersions, RoundTripTest,
                         ::testing::Values(Version::kV31, Version::kV311, Version::kV5),
                         [](const auto& info) {
                           return "V" + std::to_string(static_cast<int>(info.param));
                         });

TEST_P(RoundTripTest, ConnectMinimal) { ExpectRoundTrip(BasicConnect(version()), version()); }

TEST_P(RoundTripTest, ConnectEmptyClientIdCleanStart) {
  Connect c = BasicConnect(version());
  c.client_id = "";
  c.clean_start = true;
  ExpectRoundTrip(c, version());
}

TEST_P(RoundTripTest, ConnectWithWillUsernamePasswordAndAllProperties) {
  ExpectRoundTrip(FullConnect(version()), version());
}

TEST_P(RoundTripTest, ConnectWithWillQos1NotRetainedNoCredentials) {
  Connect c = BasicConnect(version());
  c.will = Will{.topic = "t", .payload = "", .qos = 1, .retain = false, .properties = {}};
  ExpectRoundTrip(c, version());
}

TEST_P(RoundTripTest, ConnectUsernameOnly) {
  Connect c = BasicConnect(version());
  c.username = "";
  ExpectRoundTrip(c, version());
}

// [MQTT-3.1.2-22] binds 3.x only; 5.0 allows a password without a user name.
TEST(RoundTrip, ConnectPasswordWithoutUsernameV5) {
  Connect c = BasicConnect(Version::kV5);
  c.password = "token";
  ExpectRoundTrip(c, Version::kV5);
}

TEST_P(RoundTripTest, ConnackAccepted) { ExpectRoundTrip(Connack{}, version()); }

TEST_P(RoundTripTest, ConnackSessionPresentAndProperties) {
  Connack c;
  c.session_present = version() != Version::kV31;  // 3.1 has no Session Present
  if (v5()) c.properties = ConnackProperties();
  ExpectRoundTrip(c, version());
}

TEST_P(RoundTripTest, ConnackRejected) {
  Connack c;
  c.reason_code = v5() ? 0x87 : 0x05;
  if (v5()) c.properties.reason_string = "not authorized";
  ExpectRoundTrip(c, version());
}

TEST_P(RoundTripTest, PublishQos0) {
  Publish p{.topic = "a/b", .payload = "hello"};
  ExpectRoundTrip(p, version());
}

TEST_P(RoundTripTest, PublishQos0RetainEmptyPayload) {
  Publish p{.topic = "a/b", .payload = "", .qos = 0, .retain = true};
  ExpectRoundTrip(p, version());
}

TEST_P(RoundTripTest, PublishQos1Dup) {
  Publish p{.topic = "x", .payload = std::string(300, 'p'), .qos = 1, .dup = true, .packet_id = 1};
  ExpectRoundTrip(p, version());
}

TEST_P(RoundTripTest, PublishQos2RetainDupWithProperties) {
  Publish p{.topic = "sensors/temp",
            .payload = std::string("\x00\x01\x02", 3),
            .qos = 2,
            .retain = true,
            .dup = true,
            .packet_id = 65535};
  if (v5()) p.properties = PublishProperties();
  ExpectRoundTrip(p, version());
}

TEST(RoundTrip, PublishV5EmptyTopicWithTopicAlias) {
  Publish p{.topic = "", .payload = "x", .qos = 1, .packet_id = 9};
  p.properties.topic_alias = 3;
  ExpectRoundTrip(p, Version::kV5);
}

TEST_P(RoundTripTest, PublishPartsMatchesEncodePublish) {
  Publish p{.topic = "t/u", .payload = "body", .qos = 1, .retain = true, .packet_id = 77};
  if (v5()) p.properties = PublishProperties();
  std::string from_struct;
  std::string from_parts;
  EncodePublish(p, version(), &from_struct);
  EncodePublishParts(p.topic, p.payload, p.qos, p.retain, p.dup, p.packet_id, &p.properties,
                     version(), &from_parts);
  EXPECT_EQ(ToHex(from_parts), ToHex(from_struct));
}

TEST(RoundTrip, PublishPartsNullPropertiesWritesZeroPropertyLengthV5) {
  std::string out;
  EncodePublishParts("a", "b", 0, false, false, 0, nullptr, Version::kV5, &out);
  EXPECT_EQ(ToHex(out),
            "3005000161"
            "00"
            "62");
}

TEST(RoundTrip, PublishPartsAppendsToExistingBuffer) {
  std::string out = "prefix";
  EncodePublishParts("a", "b", 1, false, false, 5, nullptr, Version::kV311, &out);
  EXPECT_EQ(ToHex(out), ToHex("prefix") +
                            "32060001610005"
                            "62");
}

TEST_P(RoundTripTest, AllPubAckTypes) {
  for (PacketType type :
       {PacketType::kPuback, PacketType::kPubrec, PacketType::kPubrel, PacketType::kPubcomp}) {
    SCOPED_TRACE(static_cast<int>(type));
    ExpectRoundTrip(PubAck{.type = type, .packet_id = 42}, version());
  }
}

TEST(RoundTrip, PubAckV5ReasonCodesAndProperties) {
  ExpectRoundTrip(PubAck{.type = PacketType::kPuback, .packet_id = 1, .reason_code = 0x10},
                  Version::kV5);
  ExpectRoundTrip(PubAck{.type = PacketType::kPubrec,
                         .packet_id = 2,
                         .reason_code = 0x97,
                         .properties = ReasonProperties()},
                  Version::kV5);
  ExpectRoundTrip(PubAck{.type = PacketType::kPubrel,
                         .packet_id = 3,
                         .reason_code = 0,
                         .properties = ReasonProperties()},
                  Version::kV5);
  ExpectRoundTrip(PubAck{.type = PacketType::kPubcomp, .packet_id = 4, .reason_code = 0x92},
                  Version::kV5);
}

// 3.4.2.1: remaining length 2 when reason 0 without properties, 3 without properties.
TEST(RoundTrip, PubAckV5EncoderUsesShortForms) {
  std::string out;
  EncodePubAck(PubAck{.type = PacketType::kPuback, .packet_id = 1}, Version::kV5, &out);
  EXPECT_EQ(ToHex(out), "40020001");
  out.clear();
  EncodePubAck(PubAck{.type = PacketType::kPubrel, .packet_id = 1, .reason_code = 0x92},
               Version::kV5, &out);
  EXPECT_EQ(ToHex(out), "6203000192");
  out.clear();
  EncodePubAck(PubAck{.type = PacketType::kPubrec, .packet_id = 1, .reason_code = 0x10},
               Version::kV311, &out);
  EXPECT_EQ(ToHex(out), "50020001");  // no reason code before 5.0
}

TEST_P(RoundTripTest, SubscribeSeveralTopics) {
  Subscribe s;
  s.packet_id = 10;
  s.topics = {{.filter = "a/+", .qos = 0}, {.filter = "b/#", .qos = 1}, {.filter = "c", .qos = 2}};
  ExpectRoundTrip(s, version());
}

TEST(RoundTrip, SubscribeV5OptionsAndProperties) {
  Subscribe s;
  s.packet_id = 11;
  s.topics = {{.filter = "a", .qos = 2, .no_local = true, .retain_handling = 2},
              {.filter = "b", .qos = 1, .retain_as_published = true, .retain_handling = 1},
              {.filter = "$share/g/c", .qos = 0}};
  s.properties.subscription_identifiers = {268435455};
  s.properties.user_properties = {{"k", "v"}};
  ExpectRoundTrip(s, Version::kV5);
}

TEST_P(RoundTripTest, Suback) {
  Suback s{.packet_id = 12, .reason_codes = {0, 1, 2, 0x80}};
  if (v5()) {
    s.reason_codes.push_back(0x8F);
    s.properties = ReasonProperties();
  }
  ExpectRoundTrip(s, version());
}

TEST_P(RoundTripTest, Unsubscribe) {
  Unsubscribe u{.packet_id = 13, .filters = {"a/+", "b/#", "c"}};
  if (v5()) u.properties.user_properties = {{"k", "v"}};
  ExpectRoundTrip(u, version());
}

TEST_P(RoundTripTest, Unsuback) {
  Unsuback u{.packet_id = 14};
  if (v5()) {
    u.reason_codes = {0x00, 0x11, 0x80};
    u.properties = ReasonProperties();
  }
  ExpectRoundTrip(u, version());
}

TEST(RoundTrip, UnsubackV311HasNoReasonCodes) {
  std::string out;
  EncodeUnsuback(Unsuback{.packet_id = 14, .reason_codes = {0x11}}, Version::kV311, &out);
  EXPECT_EQ(ToHex(out), "b002000e");
}

TEST_P(RoundTripTest, PingreqAndPingresp) {
  std::string out;
  EncodePingreq(&out);
  EncodePingresp(&out);
  EXPECT_EQ(ToHex(out), "c000d000");
  EXPECT_OK(CheckFixedHeader(0xC0, version()));
  EXPECT_OK(CheckFixedHeader(0xD0, version()));
  EXPECT_OK(DecodePing(""));
}

TEST_P(RoundTripTest, DisconnectNormal) { ExpectRoundTrip(Disconnect{}, version()); }

TEST(RoundTrip, DisconnectV5ReasonAndProperties) {
  ExpectRoundTrip(Disconnect{.reason_code = 0x04}, Version::kV5);
  Disconnect d{.reason_code = 0x8E};
  d.properties = ReasonProperties();
  d.properties.session_expiry_interval = 0;
  d.properties.server_reference = "elsewhere";
  ExpectRoundTrip(d, Version::kV5);
}

// 3.14.2.1: reason 0 without properties may be sent as remaining length 0.
TEST(RoundTrip, DisconnectV5EncoderUsesShortForms) {
  std::string out;
  EncodeDisconnect(Disconnect{}, Version::kV5, &out);
  EXPECT_EQ(ToHex(out), "e000");
  out.clear();
  EncodeDisconnect(Disconnect{.reason_code = 0x81}, Version::kV5, &out);
  EXPECT_EQ(ToHex(out), "e00181");
  out.clear();
  EncodeDisconnect(Disconnect{.reason_code = 0x81}, Version::kV311, &out);
  EXPECT_EQ(ToHex(out), "e000");
}

TEST(RoundTrip, AuthV5) {
  ExpectRoundTrip(Auth{}, Version::kV5);
  Auth a{.reason_code = 0x18};
  a.properties.authentication_method = "SCRAM-SHA-1";
  a.properties.authentication_data = std::string("\x01\x00\x02", 3);
  a.properties.reason_string = "continue";
  a.properties.user_properties = {{"k", "v"}};
  ExpectRoundTrip(a, Version::kV5);
  std::string out;
  EncodeAuth(Auth{}, &out);
  EXPECT_EQ(ToHex(out), "f000");  // 3.15.2.1 short form
}

// Remaining lengths on both sides of every variable byte integer size boundary.
TEST(RoundTrip, PublishRemainingLengthBoundaries) {
  for (size_t body : {127u, 128u, 16383u, 16384u, 2097151u, 2097152u}) {
    SCOPED_TRACE(body);
    // topic "t" (3 bytes) + packet id (2) + payload.
    Publish p{.topic = "t", .payload = std::string(body - 5, 'x'), .qos = 1, .packet_id = 1};
    std::string wire;
    EncodePublish(p, Version::kV311, &wire);
    const size_t header = wire.size() - body;
    EXPECT_EQ(header, 1 + (body < 128 ? 1 : body < 16384 ? 2 : body < 2097152 ? 3 : 4));
    ExpectRoundTrip(p, Version::kV311);
  }
}

}  // namespace
}  // namespace mqtt
