// SPDX-License-Identifier: Apache-2.0
// SharedPublish (codec.h): the bytes one fan-out encoding hands to many receivers must be exactly
// those EncodePublishParts gives each receiver alone, with the receiver's packet identifier.
#include <string>
#include <tuple>

#include "gtest/gtest.h"
#include "node/protocol/codec.h"
#include "node/protocol/packets.h"

namespace mqtt {
namespace {

// Every property a PUBLISH may carry to a subscriber, user properties in a given order.
Properties PublishProperties() {
  Properties p;
  p.payload_format_indicator = 1;
  p.message_expiry_interval = 30;
  p.content_type = "text/plain";
  p.response_topic = "reply/here";
  p.correlation_data = std::string("\x00\x01", 2);
  p.user_properties = {{"b", "2"}, {"a", "1"}};
  return p;
}

std::string Expected(std::string_view topic, std::string_view payload, uint8_t qos, bool retain,
                     uint16_t packet_id, const Properties* properties, Version version) {
  std::string out;
  EncodePublishParts(topic, payload, qos, retain, /*dup=*/false, packet_id, properties, version,
                     &out);
  return out;
}

using Case = std::tuple<Version, int, bool, bool>;  // version, QoS, retain, with properties

class SharedPublishTest : public testing::TestWithParam<Case> {};

TEST_P(SharedPublishTest, BytesEqualEncodePublishPartsWithEachPacketId) {
  const auto [version, qos, retain, with_properties] = GetParam();
  const Properties properties = PublishProperties();
  const Properties* props = with_properties ? &properties : nullptr;
  const std::string topic = "sensors/room-1/temperature";
  const std::string payload = "21.5";
  SharedPublish shared;
  shared.Encode(topic, payload, static_cast<uint8_t>(qos), retain, props, version);
  // The packet ids that differ in each byte, one of them 0x80.. to catch sign errors.
  std::string out = "prefix";  // AppendTo appends: what is already there stays
  std::string expected = "prefix";
  for (uint16_t packet_id : {uint16_t{1}, uint16_t{0x1234}, uint16_t{0xFF80}, uint16_t{65535}}) {
    shared.AppendTo(packet_id, &out);
    expected += Expected(topic, payload, static_cast<uint8_t>(qos), retain, qos > 0 ? packet_id : 0,
                         props, version);
  }
  EXPECT_EQ(out, expected);
  EXPECT_EQ(shared.size(),
            Expected(topic, payload, static_cast<uint8_t>(qos), retain, 1, props, version).size());
}

INSTANTIATE_TEST_SUITE_P(
    AllVersionsQosRetainProperties, SharedPublishTest,
    testing::Combine(testing::Values(Version::kV31, Version::kV311, Version::kV5),
                     testing::Values(0, 1, 2), testing::Bool(), testing::Bool()));

// A remaining length of two and three bytes moves the packet identifier.
TEST(SharedPublishTest, LongPacketsPatchThePacketIdBehindALongerFixedHeader) {
  for (size_t payload_size : {size_t{100}, size_t{20'000}}) {
    const std::string payload(payload_size, 'x');
    SharedPublish shared;
    shared.Encode("t", payload, 1, false, nullptr, Version::kV311);
    std::string out;
    shared.AppendTo(0xABCD, &out);
    EXPECT_EQ(out, Expected("t", payload, 1, false, 0xABCD, nullptr, Version::kV311));
  }
}

TEST(SharedPublishTest, EncodeAgainReplacesThePreviousMessage) {
  SharedPublish shared;
  shared.Encode("first/topic", "one", 2, true, nullptr, Version::kV5);
  shared.Encode("t", "two", 0, false, nullptr, Version::kV311);
  std::string out;
  shared.AppendTo(7, &out);
  EXPECT_EQ(out, Expected("t", "two", 0, false, 0, nullptr, Version::kV311));
  shared.Release();
  EXPECT_EQ(shared.size(), 0u);
}

}  // namespace
}  // namespace mqtt
