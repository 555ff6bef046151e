// SPDX-License-Identifier: Apache-2.0
// The WebSocket codec of node/net/websocket.h: the Upgrade answer (RFC 6455 4.2.2 and MQTT
// chapter 6) and the frame decoder, fed whole, in pieces and one byte at a time.
#include "node/net/websocket.h"

#include <gtest/gtest.h>

#include <string>

namespace mqtt::net {
namespace {

std::string Request(std::string protocols, std::string path = "/mqtt") {
  std::string r =
      "GET " + path +
      " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
  if (!protocols.empty()) r += "Sec-WebSocket-Protocol: " + protocols + "\r\n";
  return r + "\r\n";
}

// A masked client frame.
std::string ClientFrame(std::string payload, uint8_t opcode = kWsBinary, bool fin = true) {
  std::string frame;
  frame.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  const char mask[4] = {0x12, 0x34, 0x56, 0x78};
  size_t n = payload.size();
  if (n < 126) {
    frame.push_back(static_cast<char>(0x80 | n));
  } else if (n < 65536) {
    frame.push_back(static_cast<char>(0x80 | 126));
    frame.push_back(static_cast<char>(n >> 8));
    frame.push_back(static_cast<char>(n));
  } else {
    frame.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8) frame.push_back(static_cast<char>(n >> shift));
  }
  frame.append(mask, 4);
  for (size_t i = 0; i < n; ++i) frame.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
  return frame;
}

struct Decoded {
  std::string app, reply, error;
  WsDecoder::Result result = WsDecoder::Result::kOk;
};

// Feeds `wire` in slices of `step` bytes.
Decoded Decode(std::string wire, size_t step) {
  WsDecoder decoder;
  Decoded d;
  for (size_t at = 0; at < wire.size() && d.result == WsDecoder::Result::kOk; at += step) {
    std::string slice = wire.substr(at, step);
    size_t n = 0;
    d.result = decoder.Decode(slice.data(), slice.size(), &n, &d.reply, &d.error);
    d.app.append(slice.data(), n);
  }
  return d;
}

TEST(WsUpgradeTest, AcceptsWithTheRfcAcceptKeyAndMqttSubprotocol) {
  WsUpgrade a = AnswerUpgrade(Request("mqtt"), "/mqtt");
  ASSERT_TRUE(a.accepted) << a.error;
  EXPECT_NE(a.response.find("HTTP/1.1 101 "), std::string::npos);
  EXPECT_NE(a.response.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            std::string::npos);  // RFC 6455 1.3's example
  EXPECT_NE(a.response.find("Sec-WebSocket-Protocol: mqtt\r\n"), std::string::npos);
}

TEST(WsUpgradeTest, EchoesTheFirstMqttSubprotocolOffered) {
  EXPECT_EQ(AnswerUpgrade(Request("chat, mqttv3.1, mqtt"), "/mqtt").subprotocol, "mqttv3.1");
}

TEST(WsUpgradeTest, RefusesWithoutMqttSubprotocolOtherPathOrVersion) {
  EXPECT_NE(AnswerUpgrade(Request(""), "/mqtt").response.find(" 400 "), std::string::npos);
  EXPECT_NE(AnswerUpgrade(Request("chat"), "/mqtt").response.find(" 400 "), std::string::npos);
  EXPECT_NE(AnswerUpgrade(Request("mqtt", "/x"), "/mqtt").response.find(" 404 "),
            std::string::npos);
  std::string v12 = Request("mqtt");
  v12.replace(v12.find("Version: 13"), 11, "Version: 12");
  EXPECT_NE(AnswerUpgrade(v12, "/mqtt").response.find(" 426 "), std::string::npos);
}

TEST(WsUpgradeTest, IgnoresTheQueryString) {
  EXPECT_TRUE(AnswerUpgrade(Request("mqtt", "/mqtt?token=1"), "/mqtt").accepted);
}

// Found by fuzz_websocket (corpus/websocket/crash-head-over-limit-in-one-read): a head over
// kMaxHttpHead was refused when it came in pieces but accepted when it came in one read.
TEST(WsUpgradeTest, HeadOverTheLimitIsTooLargeInOneReadAsInPieces) {
  std::string head = Request("mqtt", "/mqtt");
  head.insert(head.find("\r\n") + 2, "X-Pad: " + std::string(kMaxHttpHead, 'a') + "\r\n");
  const size_t end = HttpHeadEnd(head);
  ASSERT_EQ(end, head.size());
  EXPECT_TRUE(HttpHeadTooLarge(head.size(), end)) << "complete, in one read";
  const std::string first_read = head.substr(0, kMaxHttpHead + 1);
  EXPECT_TRUE(HttpHeadTooLarge(first_read.size(), HttpHeadEnd(first_read))) << "in pieces";
  EXPECT_FALSE(HttpHeadTooLarge(kMaxHttpHead, std::string::npos));
  const std::string normal = Request("mqtt", "/mqtt");
  EXPECT_FALSE(HttpHeadTooLarge(normal.size(), HttpHeadEnd(normal)));
}

TEST(WsDecoderTest, FramesOfEverySizeFedWholeInPiecesAndByteAtATime) {
  std::string wire = ClientFrame("ab") + ClientFrame(std::string(300, 'c')) +
                     ClientFrame(std::string(70000, 'd')) + ClientFrame("", kWsBinary);
  std::string expected = "ab" + std::string(300, 'c') + std::string(70000, 'd');
  for (size_t step : {wire.size(), size_t{7}, size_t{1}}) {
    Decoded d = Decode(wire, step);
    EXPECT_EQ(d.result, WsDecoder::Result::kOk) << d.error;
    EXPECT_EQ(d.app, expected) << "step " << step;
    EXPECT_TRUE(d.reply.empty());
  }
}

TEST(WsDecoderTest, FragmentedMessageIsOneStream) {
  std::string wire = ClientFrame("abc", kWsBinary, false) + ClientFrame("ping", 0x9) +
                     ClientFrame("def", 0x0, true);
  Decoded d = Decode(wire, 1);
  EXPECT_EQ(d.result, WsDecoder::Result::kOk) << d.error;
  EXPECT_EQ(d.app, "abcdef");
  std::string pong;
  AppendWsFrame("ping", 0xA, &pong);
  EXPECT_EQ(d.reply, pong);  // a control frame may come between fragments (RFC 6455 5.4)
}

TEST(WsDecoderTest, CloseIsEchoed) {
  Decoded d = Decode(ClientFrame("ab") + ClientFrame(std::string("\x03\xe8", 2), kWsClose), 3);
  EXPECT_EQ(d.result, WsDecoder::Result::kClose);
  EXPECT_EQ(d.app, "ab");
  std::string close;
  AppendWsClose(1000, &close);
  EXPECT_EQ(d.reply, close);
}

TEST(WsDecoderTest, TextFrameIsAnError) {  // [MQTT-6.0.0-1]
  Decoded d = Decode(ClientFrame("x", 0x1), 100);
  EXPECT_EQ(d.result, WsDecoder::Result::kError);
  EXPECT_NE(d.error.find("MQTT-6.0.0-1"), std::string::npos);
  std::string close;
  AppendWsClose(1002, &close);
  EXPECT_EQ(d.reply, close);
}

TEST(WsDecoderTest, UnmaskedFrameContinuationWithoutStartAndLongPingAreErrors) {
  EXPECT_EQ(Decode(std::string("\x82\x01x", 3), 1).result, WsDecoder::Result::kError);
  EXPECT_EQ(Decode(ClientFrame("x", 0x0), 1).result, WsDecoder::Result::kError);
  EXPECT_EQ(Decode(ClientFrame(std::string(126, 'p'), 0x9), 1).result, WsDecoder::Result::kError);
  EXPECT_EQ(Decode(ClientFrame("x", 0x3), 1).result, WsDecoder::Result::kError);
}

TEST(WsEncoderTest, LengthEncodings) {
  std::string out;
  AppendWsFrame(std::string(125, 'a'), kWsBinary, &out);
  EXPECT_EQ(out.substr(0, 2), std::string("\x82\x7d", 2));
  out.clear();
  AppendWsFrame(std::string(126, 'a'), kWsBinary, &out);
  EXPECT_EQ(out.substr(0, 4), std::string("\x82\x7e\x00\x7e", 4));
  out.clear();
  AppendWsFrame(std::string(65536, 'a'), kWsBinary, &out);
  EXPECT_EQ(out.substr(0, 10), std::string("\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10));
}

}  // namespace
}  // namespace mqtt::net
