// SPDX-License-Identifier: Apache-2.0
// Broker values <-> storage records: everything a stored message or will carries comes back
// equal, including after a trip through the wire format of the record.
#include "node/persist/convert.h"

#include <memory>

#include "gtest/gtest.h"

namespace mqtt::persist {
namespace {

Properties MessageProperties() {
  Properties p;
  p.payload_format_indicator = 1;
  p.message_expiry_interval = 30;
  p.content_type = "application/json";
  p.response_topic = "reply/to";
  p.correlation_data = std::string("\x00\x01", 2);
  p.user_properties = {{"k", "v1"}, {"a", "b"}, {"k", "v2"}};
  return p;
}

template <typename Record>
Record ThroughBytes(const Record& record) {
  Record out;
  EXPECT_TRUE(out.ParseFromString(record.SerializeAsString()));
  return out;
}

TEST(PersistConvertTest, MessageWithPropertiesRoundTrips) {
  Message m;
  m.topic = "a/b";
  m.payload = std::string("\x00\xff", 2);
  m.qos = 2;
  m.retain = true;
  m.publisher_id = "pub-1";
  m.properties = std::make_shared<const Properties>(MessageProperties());
  const v1::MessageRecord record = ThroughBytes(ToRecord(m, 1'000'000));
  EXPECT_EQ(record.expires_at_unix_ms(), 1'030'000u);
  const Message back = FromRecord(record);
  EXPECT_EQ(back.topic, m.topic);
  EXPECT_EQ(back.payload, m.payload);
  EXPECT_EQ(back.qos, 2);
  EXPECT_TRUE(back.retain);
  EXPECT_EQ(back.publisher_id, "pub-1");
  ASSERT_NE(back.properties, nullptr);
  EXPECT_EQ(*back.properties, MessageProperties());
}

TEST(PersistConvertTest, MessageWithoutPropertiesHasNullPropertiesAndNoExpiry) {
  Message m;
  m.topic = "t";
  const v1::MessageRecord record = ThroughBytes(ToRecord(m, 5));
  EXPECT_EQ(record.expires_at_unix_ms(), 0u);
  EXPECT_EQ(FromRecord(record).properties, nullptr);
}

TEST(PersistConvertTest, OnlyMessagePropertiesAreKept) {
  Properties p;
  p.topic_alias = 3;                    // per connection, not per message
  p.subscription_identifiers = {1, 2};  // per subscriber, set when sending
  p.content_type = "x";
  Properties expected;
  expected.content_type = "x";
  EXPECT_EQ(FromRecord(ThroughBytes(ToRecord(p))), expected);
}

TEST(PersistConvertTest, RemainingExpiryRoundsUpAndStopsAtZero) {
  v1::MessageRecord r;
  r.set_expires_at_unix_ms(10'500);
  EXPECT_EQ(RemainingExpirySeconds(r, 10'000), 1u);
  EXPECT_EQ(RemainingExpirySeconds(r, 5'000), 6u);
  EXPECT_EQ(RemainingExpirySeconds(r, 10'500), 0u);
  EXPECT_EQ(RemainingExpirySeconds(r, 20'000), 0u);
}

TEST(PersistConvertTest, WillRoundTripsWithDelay) {
  Will w;
  w.topic = "clients/1";
  w.payload = "gone";
  w.qos = 1;
  w.retain = true;
  w.properties = MessageProperties();
  w.properties.will_delay_interval = 0;  // present but zero is kept distinct from absent
  EXPECT_EQ(FromRecord(ThroughBytes(ToRecord(w))), w);
  w.properties.will_delay_interval.reset();
  EXPECT_EQ(FromRecord(ThroughBytes(ToRecord(w))), w);
}

TEST(PersistConvertTest, ProtocolVersionRoundTrips) {
  for (Version v : {Version::kV31, Version::kV311, Version::kV5}) {
    EXPECT_EQ(FromRecord(ToRecord(v)), v);
  }
  EXPECT_EQ(FromRecord(v1::PROTOCOL_VERSION_UNSPECIFIED), Version::kV311);
}

}  // namespace
}  // namespace mqtt::persist
