// SPDX-License-Identifier: Apache-2.0
// Golden bytes captured from implementations we did not write, decoded and checked field by
// field, then re-encoded to the same bytes where our encoder makes the same choices.
//
// How they were captured (Debian 12): a ~40-line Python listener on 127.0.0.1 accepted one TCP
// connection, split the stream into MQTT packets, printed each as hex, and answered what the
// client waited for (CONNACK 20 02 00 00, or 20 03 00 00 00 for 5.0; PUBACK/PUBREC/PUBCOMP;
// SUBACK). Clients:
//   mosquitto_pub / mosquitto_sub 2.0.11 (Debian mosquitto-clients), command lines below;
//   paho-mqtt 1.6.1 under /usr/bin/python3, a script noted at the paho tests.
// Broker-side bytes (CONNACK, SUBACK, UNSUBACK, DISCONNECT) came from the mosquitto 2.0.11
// broker, fed raw packets by a Python socket.
#include <string>

#include "gtest/gtest.h"
#include "node/protocol/codec.h"
#include "node/protocol/packets.h"
#include "tests/unit/protocol/codec_test_util.h"

namespace mqtt {
namespace {

using testing_util::Decode;
using testing_util::Frame;
using testing_util::Hex;
using testing_util::SplitFrame;
using testing_util::ToHex;

template <typename T>
T DecodeGolden(std::string_view hex, Version version) {
  const std::string wire = Hex(hex);
  const Frame frame = SplitFrame(wire);
  EXPECT_OK(CheckFixedHeader(frame.first_byte, version));
  absl::StatusOr<T> decoded = Decode<T>(frame, version);
  EXPECT_OK(decoded);
  return decoded.ok() ? *decoded : T{};
}

template <typename T>
std::string Reencode(const T& packet, Version version) {
  std::string out;
  testing_util::Encode(packet, version, &out);
  return ToHex(out);
}

// mosquitto_pub -V mqttv31 -i pub31 -t a/b -m hello -q 1
constexpr std::string_view kPub31Connect = "101300064d51497364700302003c00057075623331";
constexpr std::string_view kPub31Publish = "320c0003612f62000168656c6c6f";

TEST(Golden, MosquittoPubV31Connect) {
  Connect c = DecodeGolden<Connect>(kPub31Connect, Version::kV31);
  EXPECT_EQ(c.version, Version::kV31);
  EXPECT_TRUE(c.clean_start);
  EXPECT_EQ(c.keep_alive, 60);
  EXPECT_EQ(c.client_id, "pub31");
  EXPECT_FALSE(c.will || c.username || c.password);
  EXPECT_EQ(Reencode(c, Version::kV31), kPub31Connect);
}

TEST(Golden, MosquittoPubV31PublishQos1) {
  Publish p = DecodeGolden<Publish>(kPub31Publish, Version::kV31);
  EXPECT_EQ(p.topic, "a/b");
  EXPECT_EQ(p.payload, "hello");
  EXPECT_EQ(p.qos, 1);
  EXPECT_EQ(p.packet_id, 1);
  EXPECT_FALSE(p.retain || p.dup);
  EXPECT_EQ(Reencode(p, Version::kV31), kPub31Publish);
}

// mosquitto_pub -V mqttv311 -i pub311 -u user -P pass --will-topic will/t --will-payload bye
//   --will-qos 1 --will-retain -t a/b -m hello -q 2 -r -k 30
constexpr std::string_view kPub311Connect =
    "102b00044d51545404ee001e0006707562333131000677696c6c2f74000362796500047573657200047061"
    "7373";
constexpr std::string_view kPub311Publish = "350c0003612f62000168656c6c6f";
constexpr std::string_view kPub311Pubrel = "62020001";

TEST(Golden, MosquittoPubV311ConnectWithWillAndCredentials) {
  Connect c = DecodeGolden<Connect>(kPub311Connect, Version::kV311);
  EXPECT_EQ(c.version, Version::kV311);
  EXPECT_TRUE(c.clean_start);
  EXPECT_EQ(c.keep_alive, 30);
  EXPECT_EQ(c.client_id, "pub311");
  ASSERT_TRUE(c.will);
  EXPECT_EQ(c.will->topic, "will/t");
  EXPECT_EQ(c.will->payload, "bye");
  EXPECT_EQ(c.will->qos, 1);
  EXPECT_TRUE(c.will->retain);
  EXPECT_EQ(c.username, "user");
  EXPECT_EQ(c.password, "pass");
  EXPECT_EQ(Reencode(c, Version::kV311), kPub311Connect);
}

TEST(Golden, MosquittoPubV311PublishQos2RetainAndPubrel) {
  Publish p = DecodeGolden<Publish>(kPub311Publish, Version::kV311);
  EXPECT_EQ(p.qos, 2);
  EXPECT_TRUE(p.retain);
  EXPECT_EQ(p.packet_id, 1);
  EXPECT_EQ(Reencode(p, Version::kV311), kPub311Publish);
  PubAck rel = DecodeGolden<PubAck>(kPub311Pubrel, Version::kV311);
  EXPECT_EQ(rel.type, PacketType::kPubrel);
  EXPECT_EQ(rel.packet_id, 1);
  EXPECT_EQ(Reencode(rel, Version::kV311), kPub311Pubrel);
}

// mosquitto_pub -V mqttv5 -i pub5 -u user -P pass -t a/b -m hello -q 1
//   -D connect session-expiry-interval 60 -D publish user-property k v
//   -D publish content-type text/plain -D publish message-expiry-interval 100
constexpr std::string_view kPub5Connect =
    "102500044d51545405c2003c08110000003c210014000470756235000475736572000470617373";
constexpr std::string_view kPub5Publish =
    "32260003612f620001192600016b00017603000a746578742f706c61696e020000006468656c6c6f";

TEST(Golden, MosquittoPubV5ConnectWithProperties) {
  Connect c = DecodeGolden<Connect>(kPub5Connect, Version::kV5);
  EXPECT_EQ(c.version, Version::kV5);
  EXPECT_EQ(c.client_id, "pub5");
  EXPECT_EQ(c.properties.session_expiry_interval, 60u);
  EXPECT_EQ(c.properties.receive_maximum, 20);
  EXPECT_EQ(c.username, "user");
  EXPECT_EQ(c.password, "pass");
  EXPECT_EQ(Reencode(c, Version::kV5), kPub5Connect);
}

TEST(Golden, MosquittoPubV5PublishWithProperties) {
  Publish p = DecodeGolden<Publish>(kPub5Publish, Version::kV5);
  EXPECT_EQ(p.topic, "a/b");
  EXPECT_EQ(p.packet_id, 1);
  EXPECT_EQ(p.payload, "hello");
  ASSERT_EQ(p.properties.user_properties.size(), 1u);
  EXPECT_EQ(p.properties.user_properties[0], (UserProperty{"k", "v"}));
  EXPECT_EQ(p.properties.content_type, "text/plain");
  EXPECT_EQ(p.properties.message_expiry_interval, 100u);
  // mosquitto writes the user property first; we write in identifier order, so compare the
  // decoded re-encoding instead of the bytes.
  absl::StatusOr<Publish> again = testing_util::RoundTrip(p, Version::kV5);
  ASSERT_OK(again);
  EXPECT_TRUE(*again == p);
}

// mosquitto_sub -V mqttv311 -i sub311 -t a/+ -t 'b/#' -q 2 -E
TEST(Golden, MosquittoSubV311ConnectAndSubscribeTwoFilters) {
  constexpr std::string_view kConnect = "101200044d5154540402003c0006737562333131";
  constexpr std::string_view kSubscribe = "820e00010003612f2b020003622f2302";
  Connect c = DecodeGolden<Connect>(kConnect, Version::kV311);
  EXPECT_EQ(c.client_id, "sub311");
  EXPECT_EQ(Reencode(c, Version::kV311), kConnect);
  Subscribe s = DecodeGolden<Subscribe>(kSubscribe, Version::kV311);
  EXPECT_EQ(s.packet_id, 1);
  ASSERT_EQ(s.topics.size(), 2u);
  EXPECT_EQ(s.topics[0], (SubscribeTopic{.filter = "a/+", .qos = 2}));
  EXPECT_EQ(s.topics[1], (SubscribeTopic{.filter = "b/#", .qos = 2}));
  EXPECT_EQ(Reencode(s, Version::kV311), kSubscribe);
}

// mosquitto_sub -V mqttv31 -i sub31 -t x/y -q 0 -E
TEST(Golden, MosquittoSubV31Subscribe) {
  constexpr std::string_view kSubscribe = "820800010003782f7900";
  Subscribe s = DecodeGolden<Subscribe>(kSubscribe, Version::kV31);
  ASSERT_EQ(s.topics.size(), 1u);
  EXPECT_EQ(s.topics[0], (SubscribeTopic{.filter = "x/y", .qos = 0}));
  EXPECT_EQ(Reencode(s, Version::kV31), kSubscribe);
}

// mosquitto_sub -V mqttv5 -i sub5 -t a/+ -q 1 -D subscribe subscription-identifier 7
//   -D subscribe user-property k v -E
TEST(Golden, MosquittoSubV5SubscribeWithSubscriptionIdentifier) {
  constexpr std::string_view kSubscribe = "82120001090b072600016b0001760003612f2b01";
  Subscribe s = DecodeGolden<Subscribe>(kSubscribe, Version::kV5);
  EXPECT_EQ(s.properties.subscription_identifiers, std::vector<uint32_t>{7});
  ASSERT_EQ(s.properties.user_properties.size(), 1u);
  EXPECT_EQ(s.properties.user_properties[0].key, "k");
  ASSERT_EQ(s.topics.size(), 1u);
  EXPECT_EQ(s.topics[0], (SubscribeTopic{.filter = "a/+", .qos = 1}));
  EXPECT_EQ(Reencode(s, Version::kV5), kSubscribe);
}

// mosquitto_sub -V mqttv5 -i uns5 -U a/+ -t c -E (subscribes, then unsubscribes)
TEST(Golden, MosquittoSubV5SubscribeAndUnsubscribe) {
  constexpr std::string_view kConnect = "101400044d5154540502003c032100140004756e7335";
  constexpr std::string_view kSubscribe = "820700010000016300";
  constexpr std::string_view kUnsubscribe = "a2080002000003612f2b";
  Connect c = DecodeGolden<Connect>(kConnect, Version::kV5);
  EXPECT_EQ(c.client_id, "uns5");
  EXPECT_EQ(Reencode(c, Version::kV5), kConnect);
  Subscribe s = DecodeGolden<Subscribe>(kSubscribe, Version::kV5);
  ASSERT_EQ(s.topics.size(), 1u);
  EXPECT_EQ(s.topics[0].filter, "c");
  EXPECT_EQ(Reencode(s, Version::kV5), kSubscribe);
  Unsubscribe u = DecodeGolden<Unsubscribe>(kUnsubscribe, Version::kV5);
  EXPECT_EQ(u.packet_id, 2);
  EXPECT_EQ(u.filters, std::vector<std::string>{"a/+"});
  EXPECT_EQ(Reencode(u, Version::kV5), kUnsubscribe);
}

// paho-mqtt 1.6.1, MQTTv5: client_id "paho5", will "will/t"/"gone" QoS 2 retained with will
// properties WillDelayInterval=10, PayloadFormatIndicator=1, ContentType="text/plain",
// UserProperty=("wk","wv"); username "u" password "p"; keepalive 45; CONNECT properties
// SessionExpiryInterval=3600, ReceiveMaximum=10, MaximumPacketSize=65536, TopicAliasMaximum=5,
// RequestProblemInformation=0, RequestResponseInformation=1, UserProperty=("a","b"). Then
// subscribe("s/+", SubscribeOptions(qos=2, noLocal, retainAsPublished, retainHandling=2)),
// publish("p/q", b"\x00\xff", qos=2, ResponseTopic="r/t", CorrelationData=b"\x01\x02",
// TopicAlias=3), unsubscribe(["s/+", "x"]), disconnect().
TEST(Golden, PahoV5ConnectWithWillPropertiesAndAllFlags) {
  constexpr std::string_view kConnect =
      "105f00044d51545405f6002d1b1100000e101700190121000a22000526000161000162270001000000057061"
      "686f351d010103000a746578742f706c61696e180000000a260002776b00027776000677696c6c2f740004"
      "676f6e65000175000170";
  Connect c = DecodeGolden<Connect>(kConnect, Version::kV5);
  EXPECT_EQ(c.client_id, "paho5");
  EXPECT_EQ(c.keep_alive, 45);
  EXPECT_TRUE(c.clean_start);
  EXPECT_EQ(c.properties.session_expiry_interval, 3600u);
  EXPECT_EQ(c.properties.request_problem_information, 0);
  EXPECT_EQ(c.properties.request_response_information, 1);
  EXPECT_EQ(c.properties.receive_maximum, 10);
  EXPECT_EQ(c.properties.topic_alias_maximum, 5);
  EXPECT_EQ(c.properties.maximum_packet_size, 65536u);
  EXPECT_EQ(c.properties.user_properties, (std::vector<UserProperty>{{"a", "b"}}));
  ASSERT_TRUE(c.will);
  EXPECT_EQ(c.will->topic, "will/t");
  EXPECT_EQ(c.will->payload, "gone");
  EXPECT_EQ(c.will->qos, 2);
  EXPECT_TRUE(c.will->retain);
  EXPECT_EQ(c.will->properties.will_delay_interval, 10u);
  EXPECT_EQ(c.will->properties.payload_format_indicator, 1);
  EXPECT_EQ(c.will->properties.content_type, "text/plain");
  EXPECT_EQ(c.will->properties.user_properties, (std::vector<UserProperty>{{"wk", "wv"}}));
  EXPECT_EQ(c.username, "u");
  EXPECT_EQ(c.password, "p");
  EXPECT_EQ(Reencode(c, Version::kV5), kConnect);  // paho also writes identifier order
}

TEST(Golden, PahoV5SubscribeWithAllOptions) {
  constexpr std::string_view kSubscribe = "82090001000003732f2b2e";
  Subscribe s = DecodeGolden<Subscribe>(kSubscribe, Version::kV5);
  ASSERT_EQ(s.topics.size(), 1u);
  EXPECT_EQ(s.topics[0], (SubscribeTopic{.filter = "s/+",
                                         .qos = 2,
                                         .no_local = true,
                                         .retain_as_published = true,
                                         .retain_handling = 2}));
  EXPECT_EQ(Reencode(s, Version::kV5), kSubscribe);
}

TEST(Golden, PahoV5PublishQos2WithTopicAliasAndCorrelationData) {
  constexpr std::string_view kPublish = "34180003702f7100020e080003722f74090002010223000300ff";
  Publish p = DecodeGolden<Publish>(kPublish, Version::kV5);
  EXPECT_EQ(p.topic, "p/q");
  EXPECT_EQ(p.qos, 2);
  EXPECT_EQ(p.packet_id, 2);
  EXPECT_EQ(p.payload, std::string("\x00\xff", 2));
  EXPECT_EQ(p.properties.response_topic, "r/t");
  EXPECT_EQ(p.properties.correlation_data, std::string("\x01\x02", 2));
  EXPECT_EQ(p.properties.topic_alias, 3);
  EXPECT_EQ(Reencode(p, Version::kV5), kPublish);
}

TEST(Golden, PahoV5PubrelUnsubscribeDisconnect) {
  PubAck rel = DecodeGolden<PubAck>("62020002", Version::kV5);
  EXPECT_EQ(rel.type, PacketType::kPubrel);
  EXPECT_EQ(rel.reason_code, 0);
  Unsubscribe u = DecodeGolden<Unsubscribe>("a20b0003000003732f2b000178", Version::kV5);
  EXPECT_EQ(u.packet_id, 3);
  EXPECT_EQ(u.filters, (std::vector<std::string>{"s/+", "x"}));
  Disconnect d = DecodeGolden<Disconnect>("e000", Version::kV5);
  EXPECT_EQ(d.reason_code, 0);
}

// mosquitto 2.0.11 broker, answering a 5.0 CONNECT with an empty client id.
TEST(Golden, MosquittoBrokerV5ConnackWithAssignedClientId) {
  constexpr std::string_view kConnack =
      "203500003222000a1200296175746f2d33424641343339372d433733352d443542462d374145352d44353433"
      "3244463635333144210014";
  Connack c = DecodeGolden<Connack>(kConnack, Version::kV5);
  EXPECT_FALSE(c.session_present);
  EXPECT_EQ(c.reason_code, 0);
  EXPECT_EQ(c.properties.topic_alias_maximum, 10);
  EXPECT_EQ(c.properties.assigned_client_identifier, "auto-3BFA4397-C735-D5BF-7AE5-D5432DF6531D");
  EXPECT_EQ(c.properties.receive_maximum, 20);
}

TEST(Golden, MosquittoBrokerV5ConnackSubackUnsuback) {
  Connack c = DecodeGolden<Connack>("200900000622000a210014", Version::kV5);
  EXPECT_EQ(c.properties.topic_alias_maximum, 10);
  EXPECT_EQ(c.properties.receive_maximum, 20);
  // mosquitto writes 0x22 before 0x21; we write identifier order.
  EXPECT_EQ(Reencode(c, Version::kV5), "200900000621001422000a");
  Suback s = DecodeGolden<Suback>("90050001000102", Version::kV5);
  EXPECT_EQ(s.packet_id, 1);
  EXPECT_EQ(s.reason_codes, (std::vector<uint8_t>{0x01, 0x02}));
  EXPECT_EQ(Reencode(s, Version::kV5), "90050001000102");
  Unsuback u = DecodeGolden<Unsuback>("b0050002000011", Version::kV5);
  EXPECT_EQ(u.reason_codes, (std::vector<uint8_t>{0x00, 0x11}));
  EXPECT_EQ(Reencode(u, Version::kV5), "b0050002000011");
}

// mosquitto's answer to a SUBSCRIBE it found malformed: DISCONNECT with reason 0x81, no
// property length (remaining length 1).
TEST(Golden, MosquittoBrokerV5DisconnectMalformed) {
  Disconnect d = DecodeGolden<Disconnect>("e00181", Version::kV5);
  EXPECT_EQ(d.reason_code, 0x81);
  EXPECT_EQ(Reencode(d, Version::kV5), "e00181");
}

TEST(Golden, MosquittoBrokerV311ConnackSubackUnsuback) {
  Connack c = DecodeGolden<Connack>("20020000", Version::kV311);
  EXPECT_EQ(c.reason_code, 0);
  EXPECT_EQ(Reencode(c, Version::kV311), "20020000");
  Suback s = DecodeGolden<Suback>("9003000102", Version::kV311);
  EXPECT_EQ(s.reason_codes, std::vector<uint8_t>{2});
  EXPECT_EQ(Reencode(s, Version::kV311), "9003000102");
  Unsuback u = DecodeGolden<Unsuback>("b0020002", Version::kV311);
  EXPECT_EQ(u.packet_id, 2);
  EXPECT_EQ(Reencode(u, Version::kV311), "b0020002");
}

}  // namespace
}  // namespace mqtt
