// SPDX-License-Identifier: Apache-2.0
// The broker's hot-path forms of the codec (codec.h) against the general ones: SharedPublish
// gives each receiver exactly the bytes EncodePublishParts gives it alone, with its packet
// identifier; DecodePublishView and the PubAckHeader forms agree with DecodePublish/DecodePubAck
// and EncodePubAck.
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

TEST(PublishViewTest, AgreesWithDecodePublishIn3xAnd5) {
  for (Version version : {Version::kV311, Version::kV5}) {
    Publish publish{"a/b", "payload", 1, true, true, 0x0102, {}};
    if (version == Version::kV5) publish.properties = PublishProperties();
    std::string bytes;
    EncodePublish(publish, version, &bytes);
    const std::string_view body = std::string_view(bytes).substr(2);  // 1-byte remaining length
    PublishView view;
    Properties properties;
    ASSERT_TRUE(DecodePublishView(static_cast<uint8_t>(bytes[0]), body, version, &view,
                                  version == Version::kV5 ? &properties : nullptr)
                    .ok());
    EXPECT_EQ(view.topic, publish.topic);
    EXPECT_EQ(view.payload, publish.payload);
    EXPECT_EQ(view.qos, 1);
    EXPECT_TRUE(view.retain);
    EXPECT_TRUE(view.dup);
    EXPECT_EQ(view.packet_id, 0x0102);
    EXPECT_TRUE(properties == publish.properties);
  }
}

TEST(PubAckHeaderTest, EncodesAsEncodePubAckWithoutProperties) {
  for (Version version : {Version::kV311, Version::kV5}) {
    for (PacketType type :
         {PacketType::kPuback, PacketType::kPubrec, PacketType::kPubrel, PacketType::kPubcomp}) {
      for (uint8_t reason : {uint8_t{0}, uint8_t{0x92}}) {
        std::string general, header;
        EncodePubAck(PubAck{type, 0xBEEF, reason, {}}, version, &general);
        EncodePubAckHeader(PubAckHeader{type, 0xBEEF, reason}, version, &header);
        EXPECT_EQ(header, general);
      }
    }
  }
}

TEST(PubAckHeaderTest, DecodesAsDecodePubAckAndStillChecksProperties) {
  PubAck ack{PacketType::kPuback, 7, 0x10, {}};
  ack.properties.reason_string = "no subscribers";
  std::string bytes;
  EncodePubAck(ack, Version::kV5, &bytes);
  const std::string_view body = std::string_view(bytes).substr(2);
  PubAckHeader header;
  ASSERT_TRUE(DecodePubAckHeader(static_cast<uint8_t>(bytes[0]), body, Version::kV5, &header).ok());
  EXPECT_EQ(header.type, PacketType::kPuback);
  EXPECT_EQ(header.packet_id, 7);
  EXPECT_EQ(header.reason_code, 0x10);
  // A property PUBACK may not carry (Topic Alias, 0x23 = 2 bytes) is still a protocol error.
  std::string bad = std::string("\x40\x07\x00\x07\x00\x03\x23\x00\x01", 9);
  EXPECT_FALSE(
      DecodePubAckHeader(0x40, std::string_view(bad).substr(2), Version::kV5, &header).ok());
  EXPECT_FALSE(DecodePubAck(0x40, std::string_view(bad).substr(2), Version::kV5).ok());
}

}  // namespace
}  // namespace mqtt
