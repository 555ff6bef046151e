// SPDX-License-Identifier: Apache-2.0
#include "node/protocol/reason_codes.h"

namespace mqtt {

const char* ReasonCodeName(uint8_t code) {
  switch (code) {
    case rc::kSuccess:
      return "Success";
    case rc::kGrantedQos1:
      return "Granted QoS 1";
    case rc::kGrantedQos2:
      return "Granted QoS 2";
    case rc::kDisconnectWithWill:
      return "Disconnect with Will Message";
    case rc::kNoMatchingSubscribers:
      return "No matching subscribers";
    case rc::kNoSubscriptionExisted:
      return "No subscription existed";
    case rc::kContinueAuthentication:
      return "Continue authentication";
    case rc::kReauthenticate:
      return "Re-authenticate";
    case rc::kUnspecifiedError:
      return "Unspecified error";
    case rc::kMalformedPacket:
      return "Malformed Packet";
    case rc::kProtocolError:
      return "Protocol Error";
    case rc::kImplementationSpecificError:
      return "Implementation specific error";
    case rc::kUnsupportedProtocolVersion:
      return "Unsupported Protocol Version";
    case rc::kClientIdentifierNotValid:
      return "Client Identifier not valid";
    case rc::kBadUserNameOrPassword:
      return "Bad User Name or Password";
    case rc::kNotAuthorized:
      return "Not authorized";
    case rc::kServerUnavailable:
      return "Server unavailable";
    case rc::kServerBusy:
      return "Server busy";
    case rc::kBanned:
      return "Banned";
    case rc::kServerShuttingDown:
      return "Server shutting down";
    case rc::kBadAuthenticationMethod:
      return "Bad authentication method";
    case rc::kKeepAliveTimeout:
      return "Keep Alive timeout";
    case rc::kSessionTakenOver:
      return "Session taken over";
    case rc::kTopicFilterInvalid:
      return "Topic Filter invalid";
    case rc::kTopicNameInvalid:
      return "Topic Name invalid";
    case rc::kPacketIdentifierInUse:
      return "Packet Identifier in use";
    case rc::kPacketIdentifierNotFound:
      return "Packet Identifier not found";
    case rc::kReceiveMaximumExceeded:
      return "Receive Maximum exceeded";
    case rc::kTopicAliasInvalid:
      return "Topic Alias invalid";
    case rc::kPacketTooLarge:
      return "Packet too large";
    case rc::kMessageRateTooHigh:
      return "Message rate too high";
    case rc::kQuotaExceeded:
      return "Quota exceeded";
    case rc::kAdministrativeAction:
      return "Administrative action";
    case rc::kPayloadFormatInvalid:
      return "Payload format invalid";
    case rc::kRetainNotSupported:
      return "Retain not supported";
    case rc::kQosNotSupported:
      return "QoS not supported";
    case rc::kUseAnotherServer:
      return "Use another server";
    case rc::kServerMoved:
      return "Server moved";
    case rc::kSharedSubscriptionsNotSupported:
      return "Shared Subscriptions not supported";
    case rc::kConnectionRateExceeded:
      return "Connection rate exceeded";
    case rc::kMaximumConnectTime:
      return "Maximum connect time";
    case rc::kSubscriptionIdentifiersNotSupported:
      return "Subscription Identifiers not supported";
    case rc::kWildcardSubscriptionsNotSupported:
      return "Wildcard Subscriptions not supported";
    default:
      return "unknown reason code";
  }
}

const char* ConnackReturnCodeName(uint8_t code) {
  switch (code) {
    case v3::kAccepted:
      return "Connection accepted";
    case v3::kUnacceptableProtocolVersion:
      return "Connection refused, unacceptable protocol version";
    case v3::kIdentifierRejected:
      return "Connection refused, identifier rejected";
    case v3::kServerUnavailable:
      return "Connection refused, server unavailable";
    case v3::kBadUsernameOrPassword:
      return "Connection refused, bad user name or password";
    case v3::kNotAuthorized:
      return "Connection refused, not authorized";
    default:
      return "unknown return code";
  }
}

}  // namespace mqtt
