// SPDX-License-Identifier: Apache-2.0
// MQTT return codes (3.1.1 CONNACK, SUBACK) and 5.0 reason codes (section 2.4).
#pragma once

#include <cstdint>

namespace mqtt {

// 3.1 / 3.1.1 CONNACK return codes.
namespace v3 {
inline constexpr uint8_t kAccepted = 0x00;
inline constexpr uint8_t kUnacceptableProtocolVersion = 0x01;
inline constexpr uint8_t kIdentifierRejected = 0x02;
inline constexpr uint8_t kServerUnavailable = 0x03;
inline constexpr uint8_t kBadUsernameOrPassword = 0x04;
inline constexpr uint8_t kNotAuthorized = 0x05;
inline constexpr uint8_t kSubackFailure = 0x80;
}  // namespace v3

// 5.0 reason codes.
namespace rc {
inline constexpr uint8_t kSuccess = 0x00;  // also Normal disconnection, Granted QoS 0
inline constexpr uint8_t kGrantedQos1 = 0x01;
inline constexpr uint8_t kGrantedQos2 = 0x02;
inline constexpr uint8_t kDisconnectWithWill = 0x04;
inline constexpr uint8_t kNoMatchingSubscribers = 0x10;
inline constexpr uint8_t kNoSubscriptionExisted = 0x11;
inline constexpr uint8_t kContinueAuthentication = 0x18;
inline constexpr uint8_t kReauthenticate = 0x19;
inline constexpr uint8_t kUnspecifiedError = 0x80;
inline constexpr uint8_t kMalformedPacket = 0x81;
inline constexpr uint8_t kProtocolError = 0x82;
inline constexpr uint8_t kImplementationSpecificError = 0x83;
inline constexpr uint8_t kUnsupportedProtocolVersion = 0x84;
inline constexpr uint8_t kClientIdentifierNotValid = 0x85;
inline constexpr uint8_t kBadUserNameOrPassword = 0x86;
inline constexpr uint8_t kNotAuthorized = 0x87;
inline constexpr uint8_t kServerUnavailable = 0x88;
inline constexpr uint8_t kServerBusy = 0x89;
inline constexpr uint8_t kBanned = 0x8A;
inline constexpr uint8_t kServerShuttingDown = 0x8B;
inline constexpr uint8_t kBadAuthenticationMethod = 0x8C;
inline constexpr uint8_t kKeepAliveTimeout = 0x8D;
inline constexpr uint8_t kSessionTakenOver = 0x8E;
inline constexpr uint8_t kTopicFilterInvalid = 0x8F;
inline constexpr uint8_t kTopicNameInvalid = 0x90;
inline constexpr uint8_t kPacketIdentifierInUse = 0x91;
inline constexpr uint8_t kPacketIdentifierNotFound = 0x92;
inline constexpr uint8_t kReceiveMaximumExceeded = 0x93;
inline constexpr uint8_t kTopicAliasInvalid = 0x94;
inline constexpr uint8_t kPacketTooLarge = 0x95;
inline constexpr uint8_t kMessageRateTooHigh = 0x96;
inline constexpr uint8_t kQuotaExceeded = 0x97;
inline constexpr uint8_t kAdministrativeAction = 0x98;
inline constexpr uint8_t kPayloadFormatInvalid = 0x99;
inline constexpr uint8_t kRetainNotSupported = 0x9A;
inline constexpr uint8_t kQosNotSupported = 0x9B;
inline constexpr uint8_t kUseAnotherServer = 0x9C;
inline constexpr uint8_t kServerMoved = 0x9D;
inline constexpr uint8_t kSharedSubscriptionsNotSupported = 0x9E;
inline constexpr uint8_t kConnectionRateExceeded = 0x9F;
inline constexpr uint8_t kMaximumConnectTime = 0xA0;
inline constexpr uint8_t kSubscriptionIdentifiersNotSupported = 0xA1;
inline constexpr uint8_t kWildcardSubscriptionsNotSupported = 0xA2;
}  // namespace rc

// The name the 5.0 specification gives `code` (section 2.4) in a CONNACK, PUBACK, PUBREC,
// PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT or AUTH, for logs and `mqttctl`: "Not
// authorized" for 0x87. 0x00 is "Success"; a code the specification does not define is
// "unknown reason code".
const char* ReasonCodeName(uint8_t code);
// The name of a 3.1 / 3.1.1 CONNACK return code (section 3.2.2.3): "Connection refused, not
// authorized" for 5.
const char* ConnackReturnCodeName(uint8_t code);

}  // namespace mqtt
