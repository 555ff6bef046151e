// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the WebSocket server codec (node/net/websocket.h), driven the way
// LayeredTransport drives it: the HTTP Upgrade head collected over reads (HttpHeadEnd,
// AnswerUpgrade), then WsDecoder::Decode on each read, in place. Two modes, by byte 0 bit 0:
//
//   0  raw: the rest is the client's wire bytes. It is processed twice, once in chunks (sizes
//      from a seed in bits 1..7 of byte 0) and once whole; both must give the same MQTT bytes,
//      the same replies (pongs, close frames, the HTTP answer) and the same end. Any Decode
//      must return no more MQTT bytes than it was given.
//   1  round trip: the rest is an MQTT byte stream. It is framed as a client would frame it
//      (masked binary frames, fragmented, with pings in between; frame sizes and masks drawn
//      from the stream itself), decoded in chunks, and must come out unchanged, with one pong
//      per ping and no error.
//
// A broken property traps, so the fuzzer reports it like a crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "node/net/websocket.h"

namespace mqtt::net {
namespace {

constexpr std::string_view kPath = "/mqtt";

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

// Chunk sizes from a tiny LCG: reproducible for one input. Seed 0: everything at once.
class Chunker {
 public:
  explicit Chunker(uint32_t seed) : state_(seed), whole_(seed == 0) {}
  size_t Next(size_t left) {
    if (whole_) return left;
    state_ = state_ * 1103515245u + 12345u;
    return std::min<size_t>(left, 1 + (state_ >> 16) % 40);
  }

 private:
  uint32_t state_;
  bool whole_;
};

// What one pass over the wire bytes produced.
struct Outcome {
  std::string mqtt;   // the MQTT byte stream
  std::string reply;  // bytes sent back: HTTP answer, pongs, close frames
  std::string error;  // the decoder's or the upgrade's error
  int end = 0;        // 0 open, 1 upgrade refused, 2 head too large, 3 close, 4 error
  bool upgraded = false;
};

// One connection's codec state, fed like LayeredTransport::OnRead.
class Connection {
 public:
  explicit Connection(bool expect_upgrade) : in_upgrade_(expect_upgrade) {}

  // False once the connection is closed.
  bool Read(std::string_view bytes) {
    std::string buffer(bytes);  // Decode works in place
    char* data = buffer.data();
    size_t n = buffer.size();
    if (in_upgrade_) {
      const size_t used = Upgrade(data, n);
      if (out_.end != 0 || in_upgrade_) return out_.end == 0;
      data += used;
      n -= used;
    }
    size_t app = SIZE_MAX;
    const WsDecoder::Result result = decoder_.Decode(data, n, &app, &out_.reply, &out_.error);
    Check(app <= n);
    out_.mqtt.append(data, app);
    if (result == WsDecoder::Result::kOk) return true;
    out_.end = result == WsDecoder::Result::kClose ? 3 : 4;
    Check(!out_.reply.empty());  // a close frame is queued either way
    return false;
  }

  const Outcome& outcome() const { return out_; }

 private:
  size_t Upgrade(const char* data, size_t n) {
    const size_t before = head_.size();
    head_.append(data, n);
    const size_t end = HttpHeadEnd(head_);
    if (HttpHeadTooLarge(head_.size(), end)) {  // as LayeredTransport::HandleUpgrade
      out_.end = 2;
      return n;
    }
    if (end == std::string::npos) return n;
    Check(end > before && end <= head_.size());
    WsUpgrade answer = AnswerUpgrade(std::string_view(head_).substr(0, end), kPath);
    CheckAnswer(answer);
    out_.reply += answer.response;
    in_upgrade_ = false;
    if (!answer.accepted) {
      out_.error = answer.error;
      out_.end = 1;
      return n;
    }
    out_.upgraded = true;
    return end - before;
  }

  static void CheckAnswer(const WsUpgrade& answer) {
    const std::string_view response = answer.response;
    Check(response.size() >= 4 && response.substr(response.size() - 4) == "\r\n\r\n");
    if (!answer.accepted) {
      Check(response.substr(0, 9) == "HTTP/1.1 " && response.substr(9, 3) != "101");
      Check(!answer.error.empty());
      return;
    }
    Check(response.substr(0, 12) == "HTTP/1.1 101");
    Check(answer.subprotocol == "mqtt" || answer.subprotocol == "mqttv3.1");  // [MQTT-6.0.0-5]
    Check(response.find("Sec-WebSocket-Accept: ") != std::string_view::npos);
  }

  WsDecoder decoder_;
  std::string head_;
  bool in_upgrade_;
  Outcome out_;
};

Outcome Run(std::string_view wire, bool expect_upgrade, uint32_t seed) {
  Connection connection(expect_upgrade);
  Chunker chunker(seed);
  for (size_t pos = 0; pos < wire.size();) {
    const size_t n = chunker.Next(wire.size() - pos);
    if (!connection.Read(wire.substr(pos, n))) break;
    pos += n;
  }
  return connection.outcome();
}

void RawMode(std::string_view wire, uint32_t seed) {
  // An input that starts like a request goes through the Upgrade first, as on a ws listener.
  const bool upgrade = wire.substr(0, 4) == "GET ";
  const Outcome chunked = Run(wire, upgrade, seed);
  const Outcome whole = Run(wire, upgrade, 0);
  Check(chunked.mqtt == whole.mqtt);
  Check(chunked.reply == whole.reply);
  Check(chunked.error == whole.error);
  Check(chunked.end == whole.end);
  Check(chunked.upgraded == whole.upgraded);
}

// A masked client frame.
void AppendClientFrame(std::string_view payload, uint8_t opcode, bool fin, const uint8_t mask[4],
                       std::string* out) {
  out->push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  const uint64_t n = payload.size();
  if (n < 126) {
    out->push_back(static_cast<char>(0x80 | n));
  } else if (n < 65536) {
    out->push_back(static_cast<char>(0x80 | 126));
    out->push_back(static_cast<char>(n >> 8));
    out->push_back(static_cast<char>(n));
  } else {
    out->push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(n >> shift));
  }
  out->append(reinterpret_cast<const char*>(mask), 4);
  for (size_t i = 0; i < n; ++i) out->push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
}

void RoundTripMode(std::string_view mqtt, uint32_t seed) {
  std::string wire;
  size_t pings = 0;
  bool in_message = false;
  Chunker sizes(seed | 1);
  for (size_t pos = 0; pos < mqtt.size();) {
    // Frame sizes up to 40, every fourth frame up to 300 (two-byte lengths).
    size_t n = sizes.Next(mqtt.size() - pos);
    if (pos % 4 == 3) n = std::min(mqtt.size() - pos, n * 7);
    const uint8_t mask[4] = {static_cast<uint8_t>(mqtt[pos]), static_cast<uint8_t>(n),
                             static_cast<uint8_t>(pos), 0x5a};
    const bool fin = (mqtt[pos] & 1) != 0 || pos + n == mqtt.size();
    AppendClientFrame(mqtt.substr(pos, n), in_message ? 0x0 : kWsBinary, fin, mask, &wire);
    in_message = !fin;
    if ((mqtt[pos] & 6) == 6) {  // a ping between frames, even inside a fragmented message
      AppendClientFrame(mqtt.substr(pos, std::min<size_t>(n, 125)), 0x9, true, mask, &wire);
      ++pings;
    }
    pos += n;
  }
  const Outcome out = Run(wire, false, seed);
  Check(out.end == 0);
  Check(out.mqtt == mqtt);
  // Each pong is a server frame 0x8A with the ping's payload.
  size_t pongs = 0;
  for (size_t pos = 0; pos + 2 <= out.reply.size(); ++pongs) {
    Check(static_cast<uint8_t>(out.reply[pos]) == 0x8A);
    pos += 2 + static_cast<uint8_t>(out.reply[pos + 1]);
  }
  Check(pongs == pings);
}

}  // namespace
}  // namespace mqtt::net

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const uint32_t seed = data[0] >> 1;
  if (data[0] & 1) {
    mqtt::net::RoundTripMode(rest, seed);
  } else {
    mqtt::net::RawMode(rest, seed);
  }
  return 0;
}
