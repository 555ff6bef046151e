// SPDX-License-Identifier: Apache-2.0
// MQTT control packets as plain structs, shared by 3.1, 3.1.1 and 5.0.
//
// Contract: these are values with no behaviour. Fields that exist only in 5.0 (properties,
// reason codes on acknowledgements, subscription options beyond QoS) are ignored when encoding
// for 3.x and left at their defaults when decoding 3.x. Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mqtt {

enum class Version : uint8_t { kV31 = 3, kV311 = 4, kV5 = 5 };

enum class PacketType : uint8_t {
  kReserved = 0,
  kConnect = 1,
  kConnack = 2,
  kPublish = 3,
  kPuback = 4,
  kPubrec = 5,
  kPubrel = 6,
  kPubcomp = 7,
  kSubscribe = 8,
  kSuback = 9,
  kUnsubscribe = 10,
  kUnsuback = 11,
  kPingreq = 12,
  kPingresp = 13,
  kDisconnect = 14,
  kAuth = 15,
};

struct UserProperty {
  std::string key;
  std::string value;
  bool operator==(const UserProperty&) const = default;
};

// MQTT 5.0 properties (section 2.2.2.2). Which ones may appear in which packet is checked by the
// decoder; an absent property is std::nullopt / empty. Subscription identifiers may repeat in a
// PUBLISH sent to a client, hence the vector.
struct Properties {
  std::optional<uint8_t> payload_format_indicator;           // 0x01
  std::optional<uint32_t> message_expiry_interval;           // 0x02
  std::optional<std::string> content_type;                   // 0x03
  std::optional<std::string> response_topic;                 // 0x08
  std::optional<std::string> correlation_data;               // 0x09 (binary)
  std::vector<uint32_t> subscription_identifiers;            // 0x0B
  std::optional<uint32_t> session_expiry_interval;           // 0x11
  std::optional<std::string> assigned_client_identifier;     // 0x12
  std::optional<uint16_t> server_keep_alive;                 // 0x13
  std::optional<std::string> authentication_method;          // 0x15
  std::optional<std::string> authentication_data;            // 0x16 (binary)
  std::optional<uint8_t> request_problem_information;        // 0x17
  std::optional<uint32_t> will_delay_interval;               // 0x18
  std::optional<uint8_t> request_response_information;       // 0x19
  std::optional<std::string> response_information;           // 0x1A
  std::optional<std::string> server_reference;               // 0x1C
  std::optional<std::string> reason_string;                  // 0x1F
  std::optional<uint16_t> receive_maximum;                   // 0x21
  std::optional<uint16_t> topic_alias_maximum;               // 0x22
  std::optional<uint16_t> topic_alias;                       // 0x23
  std::optional<uint8_t> maximum_qos;                        // 0x24
  std::optional<uint8_t> retain_available;                   // 0x25
  std::vector<UserProperty> user_properties;                 // 0x26, order preserved
  std::optional<uint32_t> maximum_packet_size;               // 0x27
  std::optional<uint8_t> wildcard_subscription_available;    // 0x28
  std::optional<uint8_t> subscription_identifier_available;  // 0x29
  std::optional<uint8_t> shared_subscription_available;      // 0x2A

  bool operator==(const Properties&) const = default;
};

struct Will {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
  Properties properties;  // 5.0 will properties
  bool operator==(const Will&) const = default;
};

struct Connect {
  Version version = Version::kV311;
  bool clean_start = true;  // "clean session" in 3.x
  uint16_t keep_alive = 0;  // seconds
  std::string client_id;
  std::optional<Will> will;
  std::optional<std::string> username;
  std::optional<std::string> password;  // binary
  Properties properties;
  bool operator==(const Connect&) const = default;
};

struct Connack {
  bool session_present = false;
  uint8_t reason_code = 0;  // 3.x return code (0..5) or 5.0 reason code
  Properties properties;
  bool operator==(const Connack&) const = default;
};

struct Publish {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
  bool dup = false;
  uint16_t packet_id = 0;  // only when qos > 0
  Properties properties;
  bool operator==(const Publish&) const = default;
};

// PUBACK, PUBREC, PUBREL and PUBCOMP share one layout; `type` says which.
struct PubAck {
  PacketType type = PacketType::kPuback;
  uint16_t packet_id = 0;
  uint8_t reason_code = 0;  // 5.0 only
  Properties properties;
  bool operator==(const PubAck&) const = default;
};

struct SubscribeTopic {
  std::string filter;
  uint8_t qos = 0;
  bool no_local = false;             // 5.0
  bool retain_as_published = false;  // 5.0
  uint8_t retain_handling = 0;       // 5.0: 0, 1 or 2
  bool operator==(const SubscribeTopic&) const = default;
};

struct Subscribe {
  uint16_t packet_id = 0;
  std::vector<SubscribeTopic> topics;
  Properties properties;
  bool operator==(const Subscribe&) const = default;
};

struct Suback {
  uint16_t packet_id = 0;
  std::vector<uint8_t> reason_codes;  // granted QoS or 0x80 (3.1.1) / reason codes (5.0)
  Properties properties;
  bool operator==(const Suback&) const = default;
};

struct Unsubscribe {
  uint16_t packet_id = 0;
  std::vector<std::string> filters;
  Properties properties;
  bool operator==(const Unsubscribe&) const = default;
};

struct Unsuback {
  uint16_t packet_id = 0;
  std::vector<uint8_t> reason_codes;  // 5.0 only; empty for 3.x
  Properties properties;
  bool operator==(const Unsuback&) const = default;
};

struct Disconnect {
  uint8_t reason_code = 0;  // 5.0 only
  Properties properties;
  bool operator==(const Disconnect&) const = default;
};

struct Auth {
  uint8_t reason_code = 0;
  Properties properties;
  bool operator==(const Auth&) const = default;
};

}  // namespace mqtt
