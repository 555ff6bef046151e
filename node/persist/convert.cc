// SPDX-License-Identifier: Apache-2.0
#include "node/persist/convert.h"

#include <algorithm>
#include <memory>

namespace mqtt::persist {

v1::MessageProperties ToRecord(const Properties& p) {
  v1::MessageProperties r;
  if (p.payload_format_indicator) r.set_payload_format_indicator(*p.payload_format_indicator);
  if (p.message_expiry_interval) {
    r.set_message_expiry_interval_seconds(*p.message_expiry_interval);
  }
  if (p.content_type) r.set_content_type(*p.content_type);
  if (p.response_topic) r.set_response_topic(*p.response_topic);
  if (p.correlation_data) r.set_correlation_data(*p.correlation_data);
  for (const UserProperty& u : p.user_properties) {
    v1::UserProperty* out = r.add_user_properties();
    out->set_key(u.key);
    out->set_value(u.value);
  }
  return r;
}

Properties FromRecord(const v1::MessageProperties& r) {
  Properties p;
  if (r.has_payload_format_indicator()) {
    p.payload_format_indicator = static_cast<uint8_t>(r.payload_format_indicator());
  }
  if (r.has_message_expiry_interval_seconds()) {
    p.message_expiry_interval = r.message_expiry_interval_seconds();
  }
  if (r.has_content_type()) p.content_type = r.content_type();
  if (r.has_response_topic()) p.response_topic = r.response_topic();
  if (r.has_correlation_data()) p.correlation_data = r.correlation_data();
  for (const v1::UserProperty& u : r.user_properties()) {
    p.user_properties.push_back({u.key(), u.value()});
  }
  return p;
}

v1::MessageRecord ToRecord(const Message& m, uint64_t now_unix_ms) {
  v1::MessageRecord r;
  r.set_topic(m.topic);
  r.set_payload(m.payload);
  r.set_qos(m.qos);
  r.set_retain(m.retain);
  r.set_publisher_id(m.publisher_id);
  r.set_origin_node(m.origin.node);
  r.set_origin_seq(m.origin.seq);
  if (m.properties) {
    *r.mutable_properties() = ToRecord(*m.properties);
    if (m.properties->message_expiry_interval) {
      r.set_expires_at_unix_ms(now_unix_ms +
                               uint64_t{*m.properties->message_expiry_interval} * 1000);
    }
  }
  return r;
}

Message FromRecord(const v1::MessageRecord& r) {
  Message m;
  m.topic = r.topic();
  m.payload = r.payload();
  m.qos = static_cast<uint8_t>(r.qos());
  m.retain = r.retain();
  m.publisher_id = r.publisher_id();
  m.origin = OriginId{r.origin_node(), r.origin_seq()};
  if (r.has_properties())
    m.properties = std::make_shared<const Properties>(FromRecord(r.properties()));
  return m;
}

uint32_t RemainingExpirySeconds(const v1::MessageRecord& r, uint64_t now_unix_ms) {
  if (r.expires_at_unix_ms() <= now_unix_ms) return 0;
  return static_cast<uint32_t>((r.expires_at_unix_ms() - now_unix_ms + 999) / 1000);
}

v1::Will ToRecord(const Will& w) {
  v1::Will r;
  r.set_topic(w.topic);
  r.set_payload(w.payload);
  r.set_qos(w.qos);
  r.set_retain(w.retain);
  *r.mutable_properties() = ToRecord(w.properties);
  if (w.properties.will_delay_interval) {
    r.set_delay_interval_seconds(*w.properties.will_delay_interval);
  }
  return r;
}

Will FromRecord(const v1::Will& r) {
  Will w;
  w.topic = r.topic();
  w.payload = r.payload();
  w.qos = static_cast<uint8_t>(r.qos());
  w.retain = r.retain();
  w.properties = FromRecord(r.properties());
  if (r.has_delay_interval_seconds()) w.properties.will_delay_interval = r.delay_interval_seconds();
  return w;
}

v1::ProtocolVersion ToRecord(Version version) {
  switch (version) {
    case Version::kV31:
      return v1::PROTOCOL_VERSION_MQTT_3_1;
    case Version::kV311:
      return v1::PROTOCOL_VERSION_MQTT_3_1_1;
    case Version::kV5:
      return v1::PROTOCOL_VERSION_MQTT_5;
  }
  return v1::PROTOCOL_VERSION_UNSPECIFIED;
}

Version FromRecord(v1::ProtocolVersion version) {
  switch (version) {
    case v1::PROTOCOL_VERSION_MQTT_3_1:
      return Version::kV31;
    case v1::PROTOCOL_VERSION_MQTT_5:
      return Version::kV5;
    default:
      return Version::kV311;
  }
}

v1::MessageRecord ToStored(const Message& message) {
  v1::MessageRecord record = ToRecord(message, 0);
  record.set_expires_at_unix_ms(0);
  if (message.expires_at_ms != 0) {
    int64_t left_ms = std::max<int64_t>(message.expires_at_ms - MonotonicMs(), 0);
    record.set_expires_at_unix_ms(UnixMs() + static_cast<uint64_t>(left_ms));
  }
  return record;
}

MessagePtr FromStored(uint64_t id, const v1::MessageRecord& record) {
  auto message = std::make_shared<Message>(FromRecord(record));
  message->stored_id.value.store(id);
  if (record.expires_at_unix_ms() != 0) {
    int64_t left_ms =
        static_cast<int64_t>(record.expires_at_unix_ms()) - static_cast<int64_t>(UnixMs());
    message->expires_at_ms = MonotonicMs() + std::max<int64_t>(left_ms, 1);
  }
  return message;
}

}  // namespace mqtt::persist
