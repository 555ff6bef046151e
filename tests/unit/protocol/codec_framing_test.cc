// SPDX-License-Identifier: Apache-2.0
// Framing (PeekFrame), fixed header checks and the error -> reason code mapping.
#include <string>

#include "gtest/gtest.h"
#include "node/protocol/codec.h"
#include "node/protocol/packets.h"
#include "node/protocol/reason_codes.h"
#include "tests/unit/protocol/codec_test_util.h"

namespace mqtt {
namespace {

using testing_util::Hex;
using testing_util::ToHex;

FrameResult Peek(std::string_view bytes, FrameHeader* header) {
  return PeekFrame(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), header);
}

// Feeds `packet` to PeekFrame one byte more at a time, as a socket might deliver it: kNeedMore
// for every proper prefix, kComplete exactly when the last byte arrives. Then decodes it.
void FeedBytewise(const std::string& packet, Version version, const Publish& expected) {
  FrameHeader header;
  for (size_t size = 0; size < packet.size(); ++size) {
    ASSERT_EQ(Peek(std::string_view(packet).substr(0, size), &header), FrameResult::kNeedMore)
        << "prefix of " << size << " bytes";
  }
  ASSERT_EQ(Peek(packet, &header), FrameResult::kComplete);
  EXPECT_EQ(header.type(), PacketType::kPublish);
  EXPECT_EQ(header.header_size + header.remaining_length, packet.size());
  absl::StatusOr<Publish> decoded = DecodePublish(
      header.first_byte, std::string_view(packet).substr(header.header_size), version);
  ASSERT_OK(decoded);
  EXPECT_TRUE(*decoded == expected);
}

class BytewiseTest : public ::testing::TestWithParam<uint32_t> {};

INSTANTIATE_TEST_SUITE_P(RemainingLengthBoundaries, BytewiseTest,
                         ::testing::Values(0u, 1u, 127u, 128u, 16383u, 16384u, 2097151u, 2097152u),
                         [](const auto& info) { return "Length" + std::to_string(info.param); });

// Section 2.2.3 / 1.5.5: 1-byte lengths up to 127, 2 up to 16383, 3 up to 2097151, then 4.
TEST_P(BytewiseTest, PublishDecodesOnlyWhenTheLastByteArrives) {
  const uint32_t remaining = GetParam();
  if (remaining < 3) {
    // Too short for a PUBLISH; frame a PINGREQ-like body-less packet instead.
    std::string packet = remaining == 0 ? Hex("c000") : Hex("e001") + std::string(1, '\x00');
    FrameHeader header;
    for (size_t size = 0; size < packet.size(); ++size) {
      EXPECT_EQ(Peek(std::string_view(packet).substr(0, size), &header), FrameResult::kNeedMore);
    }
    EXPECT_EQ(Peek(packet, &header), FrameResult::kComplete);
    EXPECT_EQ(header.remaining_length, remaining);
    return;
  }
  Publish p{.topic = "t", .payload = std::string(remaining - 3, 'x')};  // QoS 0: topic + payload
  std::string packet;
  EncodePublish(p, Version::kV311, &packet);
  const size_t header_size = 1 + (remaining < 128       ? 1
                                  : remaining < 16384   ? 2
                                  : remaining < 2097152 ? 3
                                                        : 4);
  ASSERT_EQ(packet.size(), header_size + remaining);
  FeedBytewise(packet, Version::kV311, p);
}

TEST(PeekFrame, HeaderIsFilledOnceItsBytesArriveEvenIfTheBodyIsMissing) {
  FrameHeader header;
  EXPECT_EQ(Peek(Hex("30"), &header), FrameResult::kNeedMore);
  EXPECT_EQ(header.header_size, 0);
  EXPECT_EQ(Peek(Hex("30 80"), &header), FrameResult::kNeedMore);
  EXPECT_EQ(header.header_size, 0);
  EXPECT_EQ(Peek(Hex("30 80 01"), &header), FrameResult::kNeedMore);
  EXPECT_EQ(header.header_size, 3);
  EXPECT_EQ(header.remaining_length, 128u);
  EXPECT_EQ(header.first_byte, 0x30);
}

TEST(PeekFrame, MaximumRemainingLengthFourBytes) {
  FrameHeader header;
  EXPECT_EQ(Peek(Hex("30 ff ff ff 7f"), &header), FrameResult::kNeedMore);
  EXPECT_EQ(header.remaining_length, kMaxRemainingLength);
  EXPECT_EQ(header.header_size, 5);
}

// A continuation bit on the 4th length byte would need a 5th byte: malformed (section 1.5.5,
// at most four bytes), detected as soon as that 4th byte is there.
TEST(PeekFrame, FiveByteRemainingLengthIsMalformed) {
  const std::string packet = Hex("30 80 80 80 80 01");
  FrameHeader header;
  for (size_t size = 0; size < 5; ++size) {
    EXPECT_EQ(Peek(std::string_view(packet).substr(0, size), &header), FrameResult::kNeedMore);
  }
  EXPECT_EQ(Peek(std::string_view(packet).substr(0, 5), &header), FrameResult::kMalformed);
  EXPECT_EQ(Peek(packet, &header), FrameResult::kMalformed);
}

// Documented leniency: non-minimal lengths ([MQTT-1.5.5-1] binds the sender) are accepted.
TEST(PeekFrame, NonMinimalRemainingLengthIsAccepted) {
  FrameHeader header;
  EXPECT_EQ(Peek(Hex("c0 80 00"), &header), FrameResult::kComplete);
  EXPECT_EQ(header.header_size, 3);
  EXPECT_EQ(header.remaining_length, 0u);
}

TEST(PeekFrame, OnlyTheFirstPacketIsFramed) {
  FrameHeader header;
  EXPECT_EQ(Peek(Hex("c000 d000"), &header), FrameResult::kComplete);
  EXPECT_EQ(header.header_size + header.remaining_length, 2u);
}

TEST(CheckFixedHeader, ReservedPacketType0IsMalformed) {
  EXPECT_MALFORMED(CheckFixedHeader(0x00, Version::kV311));
  EXPECT_MALFORMED(CheckFixedHeader(0x00, Version::kV5));
}

TEST(CheckFixedHeader, PacketType15IsReservedBefore5) {
  EXPECT_MALFORMED(CheckFixedHeader(0xF0, Version::kV31));
  EXPECT_MALFORMED(CheckFixedHeader(0xF0, Version::kV311));
  EXPECT_OK(CheckFixedHeader(0xF0, Version::kV5));
}

TEST(CheckFixedHeader, ZeroFlagTypesWithFlagsAreMalformed_MQTT_2_2_2_2) {
  for (uint8_t type : {1, 2, 4, 5, 7, 9, 11, 12, 13, 14}) {
    for (Version v : {Version::kV311, Version::kV5}) {
      EXPECT_OK(CheckFixedHeader(static_cast<uint8_t>(type << 4), v));
      EXPECT_MALFORMED(CheckFixedHeader(static_cast<uint8_t>(type << 4 | 0x01), v)) << int{type};
      EXPECT_MALFORMED(CheckFixedHeader(static_cast<uint8_t>(type << 4 | 0x08), v)) << int{type};
    }
  }
  EXPECT_MALFORMED(CheckFixedHeader(0xF1, Version::kV5));  // AUTH [MQTT-3.15.1-1]
}

TEST(CheckFixedHeader, PubrelFlagsMustBe0010_MQTT_3_6_1_1) {
  EXPECT_OK(CheckFixedHeader(0x62, Version::kV311));
  EXPECT_MALFORMED(CheckFixedHeader(0x60, Version::kV311));
  EXPECT_MALFORMED(CheckFixedHeader(0x63, Version::kV5));
  EXPECT_MALFORMED(CheckFixedHeader(0x6A, Version::kV311));
}

TEST(CheckFixedHeader, SubscribeFlagsMustBe0010_MQTT_3_8_1_1) {
  EXPECT_OK(CheckFixedHeader(0x82, Version::kV311));
  EXPECT_MALFORMED(CheckFixedHeader(0x80, Version::kV311));
  EXPECT_MALFORMED(CheckFixedHeader(0x80, Version::kV5));
  EXPECT_MALFORMED(CheckFixedHeader(0x83, Version::kV31));
}

TEST(CheckFixedHeader, UnsubscribeFlagsMustBe0010_MQTT_3_10_1_1) {
  EXPECT_OK(CheckFixedHeader(0xA2, Version::kV5));
  EXPECT_MALFORMED(CheckFixedHeader(0xA0, Version::kV311));
  EXPECT_MALFORMED(CheckFixedHeader(0xA4, Version::kV5));
}

// 3.1 clients set DUP on retried PUBREL/SUBSCRIBE/UNSUBSCRIBE; 3.1.1 made that bit reserved.
TEST(CheckFixedHeader, V31AllowsDupOnQos1ControlPackets) {
  EXPECT_OK(CheckFixedHeader(0x6A, Version::kV31));
  EXPECT_OK(CheckFixedHeader(0x8A, Version::kV31));
  EXPECT_OK(CheckFixedHeader(0xAA, Version::kV31));
  EXPECT_MALFORMED(CheckFixedHeader(0x8A, Version::kV311));
}

TEST(CheckFixedHeader, PublishFlagsAreLeftToDecodePublish) {
  EXPECT_OK(CheckFixedHeader(0x3F, Version::kV311));
}

TEST(ReasonCodeFor, MapsStatusCodesToV5ReasonCodes) {
  EXPECT_EQ(ReasonCodeFor(MalformedError("x")), rc::kMalformedPacket);
  EXPECT_EQ(ReasonCodeFor(ProtocolError("x")), rc::kProtocolError);
  EXPECT_EQ(ReasonCodeFor(absl::UnimplementedError("x")), rc::kUnsupportedProtocolVersion);
  EXPECT_EQ(ReasonCodeFor(absl::OutOfRangeError("x")), rc::kPacketTooLarge);
  EXPECT_EQ(ReasonCodeFor(absl::InternalError("x")), rc::kUnspecifiedError);
  EXPECT_EQ(ReasonCodeFor(absl::UnknownError("x")), rc::kUnspecifiedError);
}

TEST(ReasonCodeFor, ErrorsCarryTheirKindInTheMessage) {
  EXPECT_EQ(MalformedError("bad").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ProtocolError("bad").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(MalformedError("bad thing").message().find("bad thing"), std::string_view::npos);
}

}  // namespace
}  // namespace mqtt
