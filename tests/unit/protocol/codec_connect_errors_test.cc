// SPDX-License-Identifier: Apache-2.0
// CONNECT and CONNACK decode errors, one scenario per test. Bodies are hand-written hex; the
// spec statement each one violates is in the test name.
#include <string>

#include "gtest/gtest.h"
#include "node/protocol/codec.h"
#include "tests/unit/protocol/codec_test_util.h"

namespace mqtt {
namespace {

using testing_util::Cat;
using testing_util::Hex;

// 3.1.1 CONNECT body: "MQTT" level 4, `flags`, keep alive 60, then `payload`.
std::string V311Connect(std::string_view flags, std::string_view payload) {
  return Hex(Cat("00044d51545404", flags, "003c", payload));
}

// 5.0 CONNECT body: "MQTT" level 5, `flags`, keep alive 60, property block, then `payload`.
std::string V5Connect(std::string_view flags, std::string_view properties,
                      std::string_view payload) {
  return Hex(Cat("00044d51545405", flags, "003c", properties, payload));
}

constexpr std::string_view kClientId = "000163";  // "c"

TEST(ConnectErrors, ValidBaselineDecodes) {
  EXPECT_OK(DecodeConnect(V311Connect("02", kClientId)));
  EXPECT_OK(DecodeConnect(V5Connect("02", "00", kClientId)));
}

TEST(ConnectErrors, ReservedFlagSetIsMalformed_MQTT_3_1_2_3) {
  EXPECT_MALFORMED(DecodeConnect(V311Connect("03", kClientId)));
  EXPECT_MALFORMED(DecodeConnect(V5Connect("01", "00", kClientId)));
}

TEST(ConnectErrors, WillQosWithoutWillFlagIsMalformed_MQTT_3_1_2_13) {
  EXPECT_MALFORMED(DecodeConnect(V311Connect("0a", kClientId)));      // will QoS 1, no will flag
  EXPECT_MALFORMED(DecodeConnect(V5Connect("12", "00", kClientId)));  // will QoS 2
}

TEST(ConnectErrors, WillRetainWithoutWillFlagIsMalformed_MQTT_3_1_2_15) {
  EXPECT_MALFORMED(DecodeConnect(V311Connect("22", kClientId)));
  EXPECT_MALFORMED(DecodeConnect(V5Connect("22", "00", kClientId)));
}

TEST(ConnectErrors, WillQos3IsMalformed_MQTT_3_1_2_14) {
  // will flag + QoS 3, will topic "t", empty will payload.
  EXPECT_MALFORMED(DecodeConnect(V311Connect("1e", Cat(kClientId, "0001740000"))));
  EXPECT_MALFORMED(DecodeConnect(V5Connect("1e", "00", Cat(kClientId, "000001740000"))));
}

TEST(ConnectErrors, PasswordWithoutUsernameIsMalformedInV311_MQTT_3_1_2_22) {
  EXPECT_MALFORMED(DecodeConnect(V311Connect("42", Cat(kClientId, "000170"))));
}

TEST(ConnectErrors, PasswordWithoutUsernameIsMalformedInV31) {
  std::string body = Hex(Cat("00064d514973647003", "42", "003c", kClientId, "000170"));
  EXPECT_MALFORMED(DecodeConnect(body));
}

TEST(ConnectErrors, PasswordWithoutUsernameIsAllowedInV5) {
  absl::StatusOr<Connect> c = DecodeConnect(V5Connect("42", "00", Cat(kClientId, "000170")));
  ASSERT_OK(c);
  EXPECT_EQ(c->password, "p");
  EXPECT_FALSE(c->username);
}

TEST(ConnectErrors, UnsupportedProtocolLevelIsUnimplemented_MQTT_3_1_2_2) {
  EXPECT_UNSUPPORTED(DecodeConnect(Hex("00044d51545406 02 003c 000163")));
  EXPECT_UNSUPPORTED(DecodeConnect(Hex("00044d51545400 02 003c 000163")));
}

TEST(ConnectErrors, ProtocolNameLevelMismatchIsUnimplemented_MQTT_3_1_2_2) {
  EXPECT_UNSUPPORTED(DecodeConnect(Hex("00044d51545403 02 003c 000163")));      // MQTT level 3
  EXPECT_UNSUPPORTED(DecodeConnect(Hex("00064d514973647004 02 003c 000163")));  // MQIsdp 4
}

TEST(ConnectErrors, UnknownProtocolNameIsNotFound_MQTT_3_1_2_1) {
  EXPECT_TRUE(testing_util::HasCode(DecodeConnect(Hex("000448545450 04 02 003c 000163")),
                                    absl::StatusCode::kNotFound));  // "HTTP"
  EXPECT_TRUE(testing_util::HasCode(DecodeConnect(Hex("0000 04 02 003c 000163")),
                                    absl::StatusCode::kNotFound));  // ""
  EXPECT_TRUE(testing_util::HasCode(DecodeConnect(Hex("00044d515458 05 02 003c 000163 00")),
                                    absl::StatusCode::kNotFound));  // "MQTX" level 5
}

TEST(ConnectErrors, ProtocolNameRunningPastTheBodyIsMalformed) {
  EXPECT_MALFORMED(DecodeConnect(Hex("00044d51")));
  EXPECT_MALFORMED(DecodeConnect(Hex("00")));
  EXPECT_MALFORMED(DecodeConnect(""));
}

TEST(ConnectErrors, MissingProtocolLevelIsMalformed) {
  EXPECT_MALFORMED(DecodeConnect(Hex("00044d515454")));
}

TEST(ConnectErrors, MissingFlagsOrKeepAliveIsMalformed) {
  EXPECT_MALFORMED(DecodeConnect(Hex("00044d51545404")));
  EXPECT_MALFORMED(DecodeConnect(Hex("00044d5154540402")));
  EXPECT_MALFORMED(DecodeConnect(Hex("00044d515454040200")));
}

TEST(ConnectErrors, MissingClientIdIsMalformed_MQTT_3_1_3_3) {
  EXPECT_MALFORMED(DecodeConnect(V311Connect("02", "")));
}

TEST(ConnectErrors, ClientIdLengthPastTheBodyIsMalformed) {
  EXPECT_MALFORMED(DecodeConnect(V311Connect("02", "000563")));
}

TEST(ConnectErrors, ClientIdInvalidUtf8IsMalformed_MQTT_3_1_3_4) {
  EXPECT_MALFORMED(DecodeConnect(V311Connect("02", "0002c328")));
}

TEST(ConnectErrors, ClientIdWithNullCharacterIsMalformed_MQTT_1_5_4_2) {
  EXPECT_MALFORMED(DecodeConnect(V311Connect("02", "00026100")));
}

TEST(ConnectErrors, LongClientIdIsAcceptedInV31) {
  const std::string id(100, 'a');
  std::string body = Hex("00064d514973647003 02 003c 0064") + id;
  absl::StatusOr<Connect> c = DecodeConnect(body);
  ASSERT_OK(c);
  EXPECT_EQ(c->client_id, id);
}

TEST(ConnectErrors, WillTopicInvalidUtf8IsMalformed_MQTT_3_1_3_10) {
  EXPECT_MALFORMED(DecodeConnect(V311Connect("06", Cat(kClientId, "0001ff", "0000"))));
}

TEST(ConnectErrors, WillPayloadMissingIsMalformed_MQTT_3_1_2_9) {
  EXPECT_MALFORMED(DecodeConnect(V311Connect("06", Cat(kClientId, "000174"))));
}

TEST(ConnectErrors, WillPayloadAndPasswordAreBinaryNotUtf8Checked) {
  absl::StatusOr<Connect> c =
      DecodeConnect(V311Connect("c6", Cat(kClientId, "000174", "0002ff00", "000175", "0002c328")));
  ASSERT_OK(c);
  EXPECT_EQ(c->will->payload, std::string("\xff\x00", 2));
  EXPECT_EQ(c->password, "\xc3\x28");
}

TEST(ConnectErrors, UsernameFlagWithoutUsernameIsMalformed_MQTT_3_1_2_19) {
  EXPECT_MALFORMED(DecodeConnect(V311Connect("82", kClientId)));
}

TEST(ConnectErrors, PasswordFlagWithoutPasswordIsMalformed_MQTT_3_1_2_21) {
  EXPECT_MALFORMED(DecodeConnect(V311Connect("c2", Cat(kClientId, "000175"))));
}

TEST(ConnectErrors, UsernameInvalidUtf8IsMalformed_MQTT_3_1_3_11) {
  EXPECT_MALFORMED(DecodeConnect(V311Connect("82", Cat(kClientId, "0001c0"))));
}

TEST(ConnectErrors, TrailingBytesAreMalformed_MQTT_3_1_4_1) {
  EXPECT_MALFORMED(DecodeConnect(V311Connect("02", Cat(kClientId, "00"))));
  EXPECT_MALFORMED(DecodeConnect(V5Connect("02", "00", Cat(kClientId, "0000"))));
}

TEST(ConnectErrors, V5PropertyLengthPastTheBodyIsMalformed) {
  EXPECT_MALFORMED(DecodeConnect(V5Connect("02", "05 1100", "")));
}

TEST(ConnectErrors, V5WillPropertiesMissingIsMalformed_MQTT_3_1_2_9) {
  EXPECT_MALFORMED(DecodeConnect(V5Connect("06", "00", kClientId)));
}

TEST(ConnectErrors, V5AuthenticationDataWithoutMethodIsProtocolError) {
  EXPECT_PROTOCOL_ERROR(DecodeConnect(V5Connect("02", "04 16 0001 ff", kClientId)));
}

TEST(ConnectErrors, V5WillDelayIntervalInConnectPropertiesIsProtocolError) {
  EXPECT_PROTOCOL_ERROR(DecodeConnect(V5Connect("02", "05 18 0000000a", kClientId)));
}

TEST(ConnectErrors, V5SessionExpiryInWillPropertiesIsProtocolError) {
  EXPECT_PROTOCOL_ERROR(
      DecodeConnect(V5Connect("06", "00", Cat(kClientId, "05 11 0000000a", "000174", "0000"))));
}

// Connack -------------------------------------------------------------------------------------

TEST(ConnackErrors, ReservedAcknowledgeFlagsAreMalformed_MQTT_3_2_2_1) {
  EXPECT_MALFORMED(DecodeConnack(Hex("0200"), Version::kV311));
  EXPECT_MALFORMED(DecodeConnack(Hex("800000"), Version::kV5));
}

TEST(ConnackErrors, V31IgnoresTheReservedFirstByte) {
  absl::StatusOr<Connack> c = DecodeConnack(Hex("ff00"), Version::kV31);
  ASSERT_OK(c);
  EXPECT_FALSE(c->session_present);
}

TEST(ConnackErrors, SessionPresentWithNonZeroCodeIsProtocolError_MQTT_3_2_2_4) {
  EXPECT_PROTOCOL_ERROR(DecodeConnack(Hex("0105"), Version::kV311));
  EXPECT_PROTOCOL_ERROR(DecodeConnack(Hex("018700"), Version::kV5));  // 5.0 [MQTT-3.2.2-6]
}

TEST(ConnackErrors, ReservedReturnCodeIsProtocolError_Table3_1) {
  EXPECT_PROTOCOL_ERROR(DecodeConnack(Hex("0006"), Version::kV311));
  EXPECT_PROTOCOL_ERROR(DecodeConnack(Hex("000100"), Version::kV5));  // 0x01 not a 5.0 code
}

TEST(ConnackErrors, WrongLengthIsMalformed) {
  EXPECT_MALFORMED(DecodeConnack(Hex("00"), Version::kV311));
  EXPECT_MALFORMED(DecodeConnack(Hex("000000"), Version::kV311));
  EXPECT_MALFORMED(DecodeConnack(Hex("0000"), Version::kV5));  // no property length
}

TEST(ConnackErrors, V5MaximumQos2IsProtocolError) {
  EXPECT_PROTOCOL_ERROR(DecodeConnack(Hex("0000 02 2402"), Version::kV5));
}

TEST(ConnackErrors, V5RetainAvailable2IsProtocolError) {
  EXPECT_PROTOCOL_ERROR(DecodeConnack(Hex("0000 02 2502"), Version::kV5));
}

TEST(ConnackErrors, V5ReceiveMaximum0IsProtocolError) {
  EXPECT_PROTOCOL_ERROR(DecodeConnack(Hex("0000 03 210000"), Version::kV5));
}

TEST(ConnackErrors, V5MaximumPacketSize0IsProtocolError) {
  EXPECT_PROTOCOL_ERROR(DecodeConnack(Hex("0000 05 2700000000"), Version::kV5));
}

TEST(ConnackErrors, V5RequestProblemInformationIsNotAllowedInConnack) {
  EXPECT_PROTOCOL_ERROR(DecodeConnack(Hex("0000 02 1701"), Version::kV5));
}

}  // namespace
}  // namespace mqtt
