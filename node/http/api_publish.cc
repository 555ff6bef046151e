// SPDX-License-Identifier: Apache-2.0
#include "node/http/api_publish.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "node/protocol/utf8.h"
#include "node/router/topic.h"

namespace mqtt::http {
namespace {

using json = nlohmann::json;

absl::Status Bad(const std::string& what) { return absl::InvalidArgumentError(what); }

// The text of `key` in `object`, or of `key`_base64 decoded; absent: nullopt.
absl::StatusOr<std::optional<std::string>> TextOrBase64(const json& object,
                                                        const std::string& key) {
  const std::string b64_key = key + "_base64";
  const bool has_text = object.contains(key), has_b64 = object.contains(b64_key);
  if (has_text && has_b64) return Bad(absl::StrCat("give ", key, " or ", b64_key, ", not both"));
  if (has_text) {
    if (!object[key].is_string()) return Bad(absl::StrCat(key, ": must be a string"));
    return std::optional<std::string>(object[key].get<std::string>());
  }
  if (!has_b64) return std::optional<std::string>();
  std::string decoded;
  if (!object[b64_key].is_string() ||
      !absl::Base64Unescape(object[b64_key].get<std::string>(), &decoded)) {
    return Bad(absl::StrCat(b64_key, ": must be a base64 string"));
  }
  return std::optional<std::string>(std::move(decoded));
}

absl::StatusOr<uint32_t> Uint(const json& value, const char* name, uint32_t max) {
  if (!value.is_number_unsigned() || value.get<uint64_t>() > max) {
    return Bad(absl::StrCat(name, ": must be an integer from 0 to ", max));
  }
  return static_cast<uint32_t>(value.get<uint64_t>());
}

absl::Status ParseUserProperties(const json& list, Properties* p) {
  if (!list.is_array()) return Bad("properties.user_properties: must be an array");
  for (const json& item : list) {
    if (!item.is_object() || !item.contains("key") || !item.contains("value") ||
        !item["key"].is_string() || !item["value"].is_string()) {
      return Bad("properties.user_properties: each must be {\"key\": text, \"value\": text}");
    }
    p->user_properties.push_back(
        {item["key"].get<std::string>(), item["value"].get<std::string>()});
  }
  return absl::OkStatus();
}

absl::Status ParseStrings(const json& object, Properties* p) {
  for (auto [name, field] : {std::pair{"content_type", &p->content_type},
                             std::pair{"response_topic", &p->response_topic}}) {
    if (!object.contains(name)) continue;
    if (!object[name].is_string()) return Bad(absl::StrCat("properties.", name, ": must be text"));
    *field = object[name].get<std::string>();
  }
  if (p->response_topic && !IsValidTopicName(*p->response_topic)) {
    return Bad("properties.response_topic: not a valid topic name");  // [MQTT-3.3.2-13]
  }
  absl::StatusOr<std::optional<std::string>> correlation = TextOrBase64(object, "correlation_data");
  if (!correlation.ok()) return correlation.status();
  p->correlation_data = std::move(*correlation);
  return absl::OkStatus();
}

absl::StatusOr<Properties> ParseProperties(const json& object) {
  if (!object.is_object()) return Bad("properties: must be an object");
  Properties p;
  if (object.contains("payload_format_indicator")) {
    auto v = Uint(object["payload_format_indicator"], "properties.payload_format_indicator", 1);
    if (!v.ok()) return v.status();
    p.payload_format_indicator = static_cast<uint8_t>(*v);
  }
  if (object.contains("message_expiry_interval")) {
    auto v =
        Uint(object["message_expiry_interval"], "properties.message_expiry_interval", 0xFFFFFFFF);
    if (!v.ok()) return v.status();
    p.message_expiry_interval = *v;
  }
  if (absl::Status s = ParseStrings(object, &p); !s.ok()) return s;
  if (object.contains("user_properties")) {
    if (absl::Status s = ParseUserProperties(object["user_properties"], &p); !s.ok()) return s;
  }
  return p;
}

absl::Status ParseTopicAndFlags(const json& body, Message* m) {
  if (!body.contains("topic") || !body["topic"].is_string()) return Bad("topic: required text");
  m->topic = body["topic"].get<std::string>();
  if (!IsValidTopicName(m->topic)) return Bad("topic: not a valid topic name");
  if (m->topic.starts_with("$SYS/") || m->topic == "$SYS") {
    return Bad("topic: $SYS topics are the node's own");
  }
  if (body.contains("qos")) {
    auto qos = Uint(body["qos"], "qos", 2);
    if (!qos.ok()) return qos.status();
    m->qos = static_cast<uint8_t>(*qos);
  }
  if (body.contains("retain")) {
    if (!body["retain"].is_boolean()) return Bad("retain: must be true or false");
    m->retain = body["retain"].get<bool>();
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<Message>> ParsePublishRequest(std::string_view text) {
  const json body = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) return Bad("the body must be a JSON object");
  auto message = std::make_shared<Message>();
  if (absl::Status s = ParseTopicAndFlags(body, message.get()); !s.ok()) return s;
  absl::StatusOr<std::optional<std::string>> payload = TextOrBase64(body, "payload");
  if (!payload.ok()) return payload.status();
  message->payload = payload->value_or("");
  if (body.contains("properties")) {
    absl::StatusOr<Properties> properties = ParseProperties(body["properties"]);
    if (!properties.ok()) return properties.status();
    if (properties->payload_format_indicator.value_or(0) == 1 &&
        !IsValidMqttUtf8(message->payload)) {
      return Bad("payload: not UTF-8 while payload_format_indicator is 1");
    }
    if (properties->message_expiry_interval) {
      message->expires_at_ms = MonotonicMs() + int64_t{*properties->message_expiry_interval} * 1000;
    }
    if (*properties != Properties{}) {
      message->properties = std::make_shared<const Properties>(std::move(*properties));
    }
  }
  return message;
}

}  // namespace mqtt::http
