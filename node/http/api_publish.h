// SPDX-License-Identifier: Apache-2.0
// POST /api/v1/publish's body (api.h): JSON to a broker Message. Internal to node/http.
//
// Body: {"topic": T, "payload": TEXT | "payload_base64": B64, "qos": 0|1|2, "retain": bool,
//        "properties": {"payload_format_indicator", "message_expiry_interval", "content_type",
//                       "response_topic", "correlation_data" (text) | "correlation_data_base64",
//                       "user_properties": [{"key": K, "value": V}, ...]}}
// topic is required; the rest optional (empty payload, QoS 0, not retained, no properties).
// Threading: pure.
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "node/protocol/message.h"

namespace mqtt::http {

// InvalidArgument naming the field for anything wrong: not JSON, a missing or mistyped field,
// an invalid topic name (or one under $SYS/, which is the node's own), both payload forms.
absl::StatusOr<std::shared_ptr<Message>> ParsePublishRequest(std::string_view body);

}  // namespace mqtt::http
