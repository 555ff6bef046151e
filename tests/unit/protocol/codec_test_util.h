// SPDX-License-Identifier: Apache-2.0
// Helpers for the codec tests: hex literals, framing, encode/decode dispatch by packet type, and
// status-code assertions.
#pragma once

#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "node/protocol/codec.h"
#include "node/protocol/packets.h"

namespace mqtt::testing_util {

// "10 0a 00" -> bytes; whitespace is ignored.
inline std::string Hex(std::string_view hex) {
  std::string out;
  int pending = -1;
  for (char c : hex) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    const int nibble = std::isdigit(static_cast<unsigned char>(c))
                           ? c - '0'
                           : std::tolower(static_cast<unsigned char>(c)) - 'a' + 10;
    if (pending < 0) {
      pending = nibble;
    } else {
      out.push_back(static_cast<char>(pending << 4 | nibble));
      pending = -1;
    }
  }
  return out;
}

inline std::string ToHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

// Concatenation of string-likes (absl::StrCat here does not take std::string_view: the system
// abseil is built with its own string_view).
template <typename... Parts>
std::string Cat(const Parts&... parts) {
  std::string out;
  (out.append(std::string_view(parts)), ...);
  return out;
}

// One whole packet split into first byte and body. Fails the test if `packet` is not exactly one
// complete frame.
struct Frame {
  uint8_t first_byte = 0;
  std::string body;
};

inline Frame SplitFrame(const std::string& packet) {
  FrameHeader header;
  const auto* data = reinterpret_cast<const uint8_t*>(packet.data());
  EXPECT_EQ(PeekFrame(data, packet.size(), &header), FrameResult::kComplete) << ToHex(packet);
  EXPECT_EQ(header.header_size + header.remaining_length, packet.size()) << ToHex(packet);
  return Frame{header.first_byte, packet.substr(header.header_size)};
}

// Encode / decode by packet struct type, so round-trip tests can be written once.
inline void Encode(const Connect& p, Version, std::string* out) { EncodeConnect(p, out); }
inline void Encode(const Connack& p, Version v, std::string* out) { EncodeConnack(p, v, out); }
inline void Encode(const Publish& p, Version v, std::string* out) { EncodePublish(p, v, out); }
inline void Encode(const PubAck& p, Version v, std::string* out) { EncodePubAck(p, v, out); }
inline void Encode(const Subscribe& p, Version v, std::string* out) { EncodeSubscribe(p, v, out); }
inline void Encode(const Suback& p, Version v, std::string* out) { EncodeSuback(p, v, out); }
inline void Encode(const Unsubscribe& p, Version v, std::string* out) {
  EncodeUnsubscribe(p, v, out);
}
inline void Encode(const Unsuback& p, Version v, std::string* out) { EncodeUnsuback(p, v, out); }
inline void Encode(const Disconnect& p, Version v, std::string* out) {
  EncodeDisconnect(p, v, out);
}
inline void Encode(const Auth& p, Version, std::string* out) { EncodeAuth(p, out); }

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

// Encodes, checks the result is one well-formed frame, decodes it back.
template <typename T>
absl::StatusOr<T> RoundTrip(const T& packet, Version version) {
  std::string wire;
  Encode(packet, version, &wire);
  const Frame frame = SplitFrame(wire);
  EXPECT_TRUE(CheckFixedHeader(frame.first_byte, version).ok()) << ToHex(wire);
  return Decode<T>(frame, version);
}

inline absl::Status StatusOf(const absl::Status& status) { return status; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& result) {
  return result.status();
}

template <typename S>
::testing::AssertionResult HasCode(const S& result, absl::StatusCode code) {
  const absl::Status status = StatusOf(result);
  if (status.code() == code) return ::testing::AssertionSuccess() << status;
  return ::testing::AssertionFailure()
         << "expected " << absl::StatusCodeToString(code) << ", got " << status;
}

}  // namespace mqtt::testing_util

#define EXPECT_OK(expr) EXPECT_TRUE(::mqtt::testing_util::HasCode((expr), absl::StatusCode::kOk))
#define ASSERT_OK(expr) ASSERT_TRUE(::mqtt::testing_util::HasCode((expr), absl::StatusCode::kOk))
#define EXPECT_MALFORMED(expr) \
  EXPECT_TRUE(::mqtt::testing_util::HasCode((expr), absl::StatusCode::kInvalidArgument))
#define EXPECT_PROTOCOL_ERROR(expr) \
  EXPECT_TRUE(::mqtt::testing_util::HasCode((expr), absl::StatusCode::kFailedPrecondition))
#define EXPECT_UNSUPPORTED(expr) \
  EXPECT_TRUE(::mqtt::testing_util::HasCode((expr), absl::StatusCode::kUnimplemented))
