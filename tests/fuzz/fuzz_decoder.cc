// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the packet decoders. For each protocol version: PeekFrame on the input,
// then CheckFixedHeader and the Decode* for the framed packet's type. Whatever decodes must
// survive a round trip: Encode* of the decoded packet decodes again to an equal packet (a
// mismatch traps, so the fuzzer reports it like a crash).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "node/protocol/codec.h"
#include "node/protocol/packets.h"

namespace mqtt {
namespace {

struct Frame {
  uint8_t first_byte;
  std::string_view body;
};

void Encode(const Connect& p, Version, std::string* out) { EncodeConnect(p, out); }
void Encode(const Connack& p, Version v, std::string* out) { EncodeConnack(p, v, out); }
void Encode(const Publish& p, Version v, std::string* out) { EncodePublish(p, v, out); }
void Encode(const PubAck& p, Version v, std::string* out) { EncodePubAck(p, v, out); }
void Encode(const Subscribe& p, Version v, std::string* out) { EncodeSubscribe(p, v, out); }
void Encode(const Suback& p, Version v, std::string* out) { EncodeSuback(p, v, out); }
void Encode(const Unsubscribe& p, Version v, std::string* out) { EncodeUnsubscribe(p, v, out); }
void Encode(const Unsuback& p, Version v, std::string* out) { EncodeUnsuback(p, v, out); }
void Encode(const Disconnect& p, Version v, std::string* out) { EncodeDisconnect(p, v, out); }
void Encode(const Auth& p, Version, std::string* out) { EncodeAuth(p, out); }

template <typename T>
absl::StatusOr<T> Decode(const Frame& f, Version v) {
  if constexpr (std::is_same_v<T, Connect>) return DecodeConnect(f.body);
  if constexpr (std::is_same_v<T, Connack>) return DecodeConnack(f.body, v);
  if constexpr (std::is_same_v<T, Publish>) return DecodePublish(f.first_byte, f.body, v);
  if constexpr (std::is_same_v<T, PubAck>) return DecodePubAck(f.first_byte, f.body, v);
  if constexpr (std::is_same_v<T, Subscribe>) return DecodeSubscribe(f.body, v);
  if constexpr (std::is_same_v<T, Suback>) return DecodeSuback(f.body, v);
  if constexpr (std::is_same_v<T, Unsubscribe>) return DecodeUnsubscribe(f.body, v);
  if constexpr (std::is_same_v<T, Unsuback>) return DecodeUnsuback(f.body, v);
  if constexpr (std::is_same_v<T, Disconnect>) return DecodeDisconnect(f.body, v);
  if constexpr (std::is_same_v<T, Auth>) return DecodeAuth(f.body, v);
}

// Decodes `frame` as a T; if that succeeds and `round_trip`, re-encodes, re-frames and
// re-decodes, and traps unless the second decode gives back the same packet.
template <typename T>
void DecodeAndRoundTrip(const Frame& frame, Version version, bool round_trip) {
  absl::StatusOr<T> decoded = Decode<T>(frame, version);
  if (!decoded.ok() || !round_trip) return;
  // CONNECT carries its own version; encode and re-decode in that one.
  if constexpr (std::is_same_v<T, Connect>) version = decoded->version;
  std::string wire;
  Encode(*decoded, version, &wire);
  FrameHeader header;
  const auto* bytes = reinterpret_cast<const uint8_t*>(wire.data());
  if (PeekFrame(bytes, wire.size(), &header) != FrameResult::kComplete) __builtin_trap();
  if (header.header_size + header.remaining_length != wire.size()) __builtin_trap();
  if (!CheckFixedHeader(header.first_byte, version).ok()) __builtin_trap();
  const Frame again{header.first_byte, std::string_view(wire).substr(header.header_size)};
  absl::StatusOr<T> redecoded = Decode<T>(again, version);
  if (!redecoded.ok() || !(*redecoded == *decoded)) __builtin_trap();
}

void FuzzOneVersion(const uint8_t* data, size_t size, Version version) {
  FrameHeader header;
  if (PeekFrame(data, size, &header) != FrameResult::kComplete) return;
  const Frame frame{header.first_byte,
                    std::string_view(reinterpret_cast<const char*>(data) + header.header_size,
                                     header.remaining_length)};
  // Decode even when the fixed header is rejected: more paths for the fuzzer to reach. Only
  // the packets that pass are round-tripped (the encoders assume valid packets).
  const bool header_ok = CheckFixedHeader(header.first_byte, version).ok();
  switch (header.type()) {
    case PacketType::kConnect:
      return DecodeAndRoundTrip<Connect>(frame, version, header_ok);
    case PacketType::kConnack:
      return DecodeAndRoundTrip<Connack>(frame, version, header_ok);
    case PacketType::kPublish:
      return DecodeAndRoundTrip<Publish>(frame, version, header_ok);
    case PacketType::kPuback:
    case PacketType::kPubrec:
    case PacketType::kPubrel:
    case PacketType::kPubcomp:
      return DecodeAndRoundTrip<PubAck>(frame, version, header_ok);
    case PacketType::kSubscribe:
      return DecodeAndRoundTrip<Subscribe>(frame, version, header_ok);
    case PacketType::kSuback:
      return DecodeAndRoundTrip<Suback>(frame, version, header_ok);
    case PacketType::kUnsubscribe:
      return DecodeAndRoundTrip<Unsubscribe>(frame, version, header_ok);
    case PacketType::kUnsuback:
      return DecodeAndRoundTrip<Unsuback>(frame, version, header_ok);
    case PacketType::kPingreq:
    case PacketType::kPingresp:
      return (void)DecodePing(frame.body);
    case PacketType::kDisconnect:
      return DecodeAndRoundTrip<Disconnect>(frame, version, header_ok);
    case PacketType::kAuth:
      return DecodeAndRoundTrip<Auth>(frame, version, header_ok);
    case PacketType::kReserved:
      return;
  }
}

}  // namespace
}  // namespace mqtt

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (mqtt::Version version : {mqtt::Version::kV31, mqtt::Version::kV311, mqtt::Version::kV5}) {
    mqtt::FuzzOneVersion(data, size, version);
  }
  return 0;
}
