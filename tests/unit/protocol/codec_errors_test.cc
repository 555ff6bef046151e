// SPDX-License-Identifier: Apache-2.0
// Decode errors of PUBLISH, the acknowledgements, SUBSCRIBE/UNSUBSCRIBE and the control packets,
// one scenario per test, each naming the spec statement it checks.
#include <string>

#include "gtest/gtest.h"
#include "node/protocol/codec.h"
#include "tests/unit/protocol/codec_test_util.h"

namespace mqtt {
namespace {

using testing_util::Hex;

constexpr Version kV31 = Version::kV31;
constexpr Version kV311 = Version::kV311;
constexpr Version kV5 = Version::kV5;

// PUBLISH --------------------------------------------------------------------------------------

TEST(PublishErrors, Qos3IsMalformed_MQTT_3_3_1_4) {
  EXPECT_MALFORMED(DecodePublish(0x36, Hex("0001 74 0001"), kV311));
  EXPECT_MALFORMED(DecodePublish(0x36, Hex("0001 74 0001 00"), kV5));
}

TEST(PublishErrors, DupOnQos0IsMalformed_MQTT_3_3_1_2) {
  EXPECT_MALFORMED(DecodePublish(0x38, Hex("0001 74"), kV311));
  EXPECT_MALFORMED(DecodePublish(0x38, Hex("0001 74 00"), kV5));
}

TEST(PublishErrors, PacketIdZeroIsProtocolError_MQTT_2_3_1_1) {
  EXPECT_PROTOCOL_ERROR(DecodePublish(0x32, Hex("0001 74 0000"), kV311));
  EXPECT_PROTOCOL_ERROR(DecodePublish(0x34, Hex("0001 74 0000 00"), kV5));
}

TEST(PublishErrors, Qos0HasNoPacketId) {
  absl::StatusOr<Publish> p = DecodePublish(0x30, Hex("0001 74 0000"), kV311);
  ASSERT_OK(p);
  EXPECT_EQ(p->payload, std::string(2, '\0'));
}

TEST(PublishErrors, TopicInvalidUtf8IsMalformed_MQTT_3_3_2_1) {
  EXPECT_MALFORMED(DecodePublish(0x30, Hex("0003 eda080"), kV311));  // surrogate U+D800
  EXPECT_MALFORMED(DecodePublish(0x30, Hex("0001 00"), kV311));      // U+0000 [MQTT-1.5.4-2]
}

TEST(PublishErrors, TopicLengthPastTheBodyIsMalformed) {
  EXPECT_MALFORMED(DecodePublish(0x30, Hex("0005 7474"), kV311));
  EXPECT_MALFORMED(DecodePublish(0x30, Hex("00"), kV311));
  EXPECT_MALFORMED(DecodePublish(0x30, "", kV311));
}

TEST(PublishErrors, MissingPacketIdIsMalformed) {
  EXPECT_MALFORMED(DecodePublish(0x32, Hex("0001 74 00"), kV311));
}

TEST(PublishErrors, EmptyTopicIsMalformedBeforeV5_MQTT_4_7_3_1) {
  EXPECT_MALFORMED(DecodePublish(0x30, Hex("0000 61"), kV311));
  EXPECT_MALFORMED(DecodePublish(0x30, Hex("0000 61"), kV31));
}

TEST(PublishErrors, V5EmptyTopicWithoutTopicAliasIsProtocolError) {
  EXPECT_PROTOCOL_ERROR(DecodePublish(0x30, Hex("0000 00 61"), kV5));
}

TEST(PublishErrors, V5EmptyTopicWithTopicAliasIsAccepted) {
  absl::StatusOr<Publish> p = DecodePublish(0x30, Hex("0000 03 230001 61"), kV5);
  ASSERT_OK(p);
  EXPECT_EQ(p->properties.topic_alias, 1);
}

// [MQTT-3.3.2-8] forbids alias 0, but the reason code is the session's to choose (0x94 Topic
// Alias invalid, with the range check against its Topic Alias Maximum): the codec passes it on.
TEST(PublishErrors, V5TopicAlias0IsLeftToTheSession_MQTT_3_3_2_8) {
  auto publish = DecodePublish(0x30, Hex("0001 74 03 230000"), kV5);
  ASSERT_TRUE(publish.ok()) << publish.status();
  EXPECT_EQ(publish->properties.topic_alias, 0);
}

TEST(PublishErrors, V5MissingPropertyLengthIsMalformed) {
  EXPECT_MALFORMED(DecodePublish(0x30, Hex("0001 74"), kV5));
}

TEST(PublishErrors, V5PropertyLengthPastTheBodyIsMalformed) {
  EXPECT_MALFORMED(DecodePublish(0x30, Hex("0001 74 09 0101"), kV5));
}

TEST(PublishErrors, V5PayloadFormatIndicator2IsProtocolError) {
  EXPECT_PROTOCOL_ERROR(DecodePublish(0x30, Hex("0001 74 02 0102"), kV5));
}

TEST(PublishErrors, V5PayloadIsNotUtf8CheckedEvenWithFormatIndicator1) {
  EXPECT_OK(DecodePublish(0x30, Hex("0001 74 02 0101 ff"), kV5));
}

TEST(PublishErrors, V5SubscriptionIdentifierMayRepeatInPublish) {
  absl::StatusOr<Publish> p = DecodePublish(0x30, Hex("0001 74 06 0b01 0b02 0b7f"), kV5);
  ASSERT_OK(p);
  EXPECT_EQ(p->properties.subscription_identifiers, (std::vector<uint32_t>{1, 2, 127}));
}

TEST(PublishErrors, V5SubscriptionIdentifier0IsProtocolError) {
  EXPECT_PROTOCOL_ERROR(DecodePublish(0x30, Hex("0001 74 02 0b00"), kV5));
}

TEST(PublishErrors, V5SessionExpiryInPublishIsProtocolError) {
  EXPECT_PROTOCOL_ERROR(DecodePublish(0x30, Hex("0001 74 05 1100000001"), kV5));
}

TEST(PublishErrors, NotAPublishTypeIsRejected) {
  EXPECT_MALFORMED(DecodePublish(0x40, Hex("0001 74"), kV311));
}

// PUBACK / PUBREC / PUBREL / PUBCOMP -----------------------------------------------------------

TEST(PubAckErrors, PacketIdZeroIsProtocolError_MQTT_2_3_1_1) {
  EXPECT_PROTOCOL_ERROR(DecodePubAck(0x40, Hex("0000"), kV311));
}

TEST(PubAckErrors, V311WrongLengthIsMalformed) {
  EXPECT_MALFORMED(DecodePubAck(0x40, Hex("00"), kV311));
  EXPECT_MALFORMED(DecodePubAck(0x50, Hex("000100"), kV311));
}

TEST(PubAckErrors, PubrelWithFlags0IsMalformed_MQTT_3_6_1_1) {
  EXPECT_MALFORMED(DecodePubAck(0x60, Hex("0001"), kV311));
  EXPECT_OK(DecodePubAck(0x62, Hex("0001"), kV311));
}

TEST(PubAckErrors, PubackWithFlagsIsMalformed_MQTT_2_2_2_2) {
  EXPECT_MALFORMED(DecodePubAck(0x42, Hex("0001"), kV311));
}

TEST(PubAckErrors, V5RemainingLength2MeansSuccess) {
  absl::StatusOr<PubAck> ack = DecodePubAck(0x70, Hex("0001"), kV5);
  ASSERT_OK(ack);
  EXPECT_EQ(ack->type, PacketType::kPubcomp);
  EXPECT_EQ(ack->reason_code, 0);
}

TEST(PubAckErrors, V5RemainingLength3MeansNoProperties) {
  absl::StatusOr<PubAck> ack = DecodePubAck(0x40, Hex("000110"), kV5);
  ASSERT_OK(ack);
  EXPECT_EQ(ack->reason_code, 0x10);
  EXPECT_TRUE(ack->properties == Properties{});
}

TEST(PubAckErrors, V5InvalidPubackReasonCodeIsProtocolError_MQTT_3_4_2_1) {
  EXPECT_PROTOCOL_ERROR(DecodePubAck(0x40, Hex("000192"), kV5));
}

TEST(PubAckErrors, V5InvalidPubrelReasonCodeIsProtocolError_MQTT_3_6_2_1) {
  EXPECT_PROTOCOL_ERROR(DecodePubAck(0x62, Hex("000110"), kV5));
}

TEST(PubAckErrors, V5PropertyLengthPastTheBodyIsMalformed) {
  EXPECT_MALFORMED(DecodePubAck(0x40, Hex("0001 00 04 1f00"), kV5));
}

TEST(PubAckErrors, V5TrailingBytesAfterPropertiesAreMalformed) {
  EXPECT_MALFORMED(DecodePubAck(0x40, Hex("0001 00 00 00"), kV5));
}

TEST(PubAckErrors, V5ReasonStringTwiceIsProtocolError) {
  EXPECT_PROTOCOL_ERROR(DecodePubAck(0x40, Hex("0001 00 08 1f000161 1f000162"), kV5));
}

// SUBSCRIBE -----------------------------------------------------------------------------------

TEST(SubscribeErrors, NoTopicFiltersIsProtocolError_MQTT_3_8_3_3) {
  EXPECT_PROTOCOL_ERROR(DecodeSubscribe(Hex("0001"), kV311));
  EXPECT_PROTOCOL_ERROR(DecodeSubscribe(Hex("0001 00"), kV5));  // 5.0 [MQTT-3.8.3-2]
}

TEST(SubscribeErrors, RequestedQos3IsMalformed_MQTT_3_8_3_4) {
  EXPECT_MALFORMED(DecodeSubscribe(Hex("0001 000161 03"), kV311));
  EXPECT_MALFORMED(DecodeSubscribe(Hex("0001 000161 03"), kV31));
}

TEST(SubscribeErrors, ReservedOptionBitsAreMalformed_MQTT_3_8_3_4) {
  EXPECT_MALFORMED(DecodeSubscribe(Hex("0001 000161 04"), kV311));
  EXPECT_MALFORMED(DecodeSubscribe(Hex("0001 000161 81"), kV311));
}

TEST(SubscribeErrors, V5ReservedOptionBits6And7AreMalformed_MQTT_3_8_3_5) {
  EXPECT_MALFORMED(DecodeSubscribe(Hex("0001 00 000161 40"), kV5));
  EXPECT_MALFORMED(DecodeSubscribe(Hex("0001 00 000161 80"), kV5));
}

// 5.0 section 3.8.3.1: "It is a Protocol Error to send a Retain Handling value of 3".
TEST(SubscribeErrors, V5RetainHandling3IsProtocolError) {
  EXPECT_PROTOCOL_ERROR(DecodeSubscribe(Hex("0001 00 000161 30"), kV5));
}

// 5.0 section 3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the value 3".
TEST(SubscribeErrors, V5MaximumQos3IsProtocolError) {
  EXPECT_PROTOCOL_ERROR(DecodeSubscribe(Hex("0001 00 000161 03"), kV5));
}

TEST(SubscribeErrors, EmptyTopicFilterIsMalformed_MQTT_4_7_3_1) {
  EXPECT_MALFORMED(DecodeSubscribe(Hex("0001 0000 00"), kV311));
  EXPECT_MALFORMED(DecodeSubscribe(Hex("0001 00 0000 00"), kV5));
}

TEST(SubscribeErrors, TopicFilterInvalidUtf8IsMalformed_MQTT_3_8_3_1) {
  EXPECT_MALFORMED(DecodeSubscribe(Hex("0001 0001ff 00"), kV311));
}

TEST(SubscribeErrors, MissingOptionsByteIsMalformed) {
  EXPECT_MALFORMED(DecodeSubscribe(Hex("0001 000161 00 000162"), kV311));
}

TEST(SubscribeErrors, TopicFilterLengthPastTheBodyIsMalformed) {
  EXPECT_MALFORMED(DecodeSubscribe(Hex("0001 000961 00"), kV311));
}

TEST(SubscribeErrors, PacketIdZeroIsProtocolError_MQTT_2_3_1_1) {
  EXPECT_PROTOCOL_ERROR(DecodeSubscribe(Hex("0000 000161 00"), kV311));
}

TEST(SubscribeErrors, WildcardSyntaxIsNotCheckedHere) {
  EXPECT_OK(DecodeSubscribe(Hex("0001 0003 232b23 00"), kV311));  // "#+#"
}

TEST(SubscribeErrors, V5SubscriptionIdentifier0IsProtocolError) {
  EXPECT_PROTOCOL_ERROR(DecodeSubscribe(Hex("0001 02 0b00 000161 00"), kV5));
}

TEST(SubscribeErrors, V5SubscriptionIdentifierTwiceIsProtocolError) {
  EXPECT_PROTOCOL_ERROR(DecodeSubscribe(Hex("0001 04 0b01 0b02 000161 00"), kV5));
}

TEST(SubscribeErrors, V5SubscriptionIdentifierOverFourBytesIsMalformed) {
  EXPECT_MALFORMED(DecodeSubscribe(Hex("0001 06 0b8080808001 000161 00"), kV5));
}

// SUBACK --------------------------------------------------------------------------------------

TEST(SubackErrors, ReservedReturnCodeIsProtocolError_MQTT_3_9_3_2) {
  EXPECT_PROTOCOL_ERROR(DecodeSuback(Hex("0001 03"), kV311));
  EXPECT_PROTOCOL_ERROR(DecodeSuback(Hex("0001 00 8f 05"), kV5));
}

TEST(SubackErrors, NoReturnCodesIsProtocolError_MQTT_3_8_4_5) {
  EXPECT_PROTOCOL_ERROR(DecodeSuback(Hex("0001"), kV311));
  EXPECT_PROTOCOL_ERROR(DecodeSuback(Hex("0001 00"), kV5));
}

TEST(SubackErrors, V5TopicAliasInSubackIsProtocolError) {
  EXPECT_PROTOCOL_ERROR(DecodeSuback(Hex("0001 03 230001 00"), kV5));
}

// UNSUBSCRIBE / UNSUBACK ------------------------------------------------------------------------

TEST(UnsubscribeErrors, NoTopicFiltersIsProtocolError_MQTT_3_10_3_2) {
  EXPECT_PROTOCOL_ERROR(DecodeUnsubscribe(Hex("0001"), kV311));
  EXPECT_PROTOCOL_ERROR(DecodeUnsubscribe(Hex("0001 00"), kV5));
}

TEST(UnsubscribeErrors, EmptyTopicFilterIsMalformed_MQTT_4_7_3_1) {
  EXPECT_MALFORMED(DecodeUnsubscribe(Hex("0001 000161 0000"), kV311));
}

TEST(UnsubscribeErrors, TopicFilterInvalidUtf8IsMalformed_MQTT_3_10_3_1) {
  EXPECT_MALFORMED(DecodeUnsubscribe(Hex("0001 0002 c0af"), kV311));  // overlong '/'
}

TEST(UnsubscribeErrors, TruncatedTopicFilterIsMalformed) {
  EXPECT_MALFORMED(DecodeUnsubscribe(Hex("0001 000161 00"), kV311));
}

TEST(UnsubscribeErrors, PacketIdZeroIsProtocolError_MQTT_2_3_1_1) {
  EXPECT_PROTOCOL_ERROR(DecodeUnsubscribe(Hex("0000 000161"), kV311));
}

TEST(UnsubscribeErrors, V5SubscriptionIdentifierNotAllowedInUnsubscribe) {
  EXPECT_PROTOCOL_ERROR(DecodeUnsubscribe(Hex("0001 02 0b01 000161"), kV5));
}

TEST(UnsubackErrors, V311HasNoReasonCodesSoExtraBytesAreMalformed) {
  EXPECT_MALFORMED(DecodeUnsuback(Hex("0001 00"), kV311));
}

TEST(UnsubackErrors, V5InvalidReasonCodeIsProtocolError_MQTT_3_11_3_2) {
  EXPECT_PROTOCOL_ERROR(DecodeUnsuback(Hex("0001 00 02"), kV5));
}

TEST(UnsubackErrors, V5NoReasonCodesIsProtocolError) {
  EXPECT_PROTOCOL_ERROR(DecodeUnsuback(Hex("0001 00"), kV5));
}

// PINGREQ / PINGRESP / DISCONNECT / AUTH --------------------------------------------------------

TEST(PingErrors, BodyIsMalformed) { EXPECT_MALFORMED(DecodePing(Hex("00"))); }

TEST(DisconnectErrors, V311BodyIsMalformed) {
  EXPECT_MALFORMED(DecodeDisconnect(Hex("00"), kV311));
  EXPECT_MALFORMED(DecodeDisconnect(Hex("00"), kV31));
}

TEST(DisconnectErrors, V5RemainingLength0MeansNormalDisconnection) {
  absl::StatusOr<Disconnect> d = DecodeDisconnect("", kV5);
  ASSERT_OK(d);
  EXPECT_EQ(d->reason_code, 0);
}

TEST(DisconnectErrors, V5RemainingLength1MeansNoProperties) {
  absl::StatusOr<Disconnect> d = DecodeDisconnect(Hex("04"), kV5);
  ASSERT_OK(d);
  EXPECT_EQ(d->reason_code, 0x04);
}

TEST(DisconnectErrors, V5InvalidReasonCodeIsProtocolError_MQTT_3_14_2_1) {
  EXPECT_PROTOCOL_ERROR(DecodeDisconnect(Hex("01"), kV5));
  EXPECT_PROTOCOL_ERROR(DecodeDisconnect(Hex("18 00"), kV5));
}

TEST(DisconnectErrors, V5SessionExpiryAndServerReferenceAreAllowed) {
  EXPECT_OK(DecodeDisconnect(Hex("00 09 1100000000 1c000161"), kV5));
}

TEST(DisconnectErrors, V5TopicAliasIsProtocolError) {
  EXPECT_PROTOCOL_ERROR(DecodeDisconnect(Hex("00 03 230001"), kV5));
}

TEST(DisconnectErrors, V5TrailingBytesAreMalformed) {
  EXPECT_MALFORMED(DecodeDisconnect(Hex("00 00 00"), kV5));
}

TEST(AuthErrors, AuthBeforeV5IsMalformed) { EXPECT_MALFORMED(DecodeAuth("", kV311)); }

TEST(AuthErrors, RemainingLength0MeansSuccess) {
  absl::StatusOr<Auth> a = DecodeAuth("", kV5);
  ASSERT_OK(a);
  EXPECT_EQ(a->reason_code, 0);
}

// 3.15.2.1 allows only remaining length 0 as a short form.
TEST(AuthErrors, ReasonCodeWithoutPropertyLengthIsMalformed) {
  EXPECT_MALFORMED(DecodeAuth(Hex("18"), kV5));
}

TEST(AuthErrors, InvalidReasonCodeIsProtocolError_MQTT_3_15_2_1) {
  EXPECT_PROTOCOL_ERROR(DecodeAuth(Hex("01 04 15000161"), kV5));
}

TEST(AuthErrors, MissingAuthenticationMethodIsProtocolError) {
  EXPECT_PROTOCOL_ERROR(DecodeAuth(Hex("18 00"), kV5));
}

TEST(AuthErrors, AuthenticationMethodTwiceIsProtocolError) {
  EXPECT_PROTOCOL_ERROR(DecodeAuth(Hex("18 08 15000161 15000162"), kV5));
}

}  // namespace
}  // namespace mqtt
