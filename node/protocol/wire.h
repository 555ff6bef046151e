// SPDX-License-Identifier: Apache-2.0
// Internal to node/protocol: primitive MQTT wire types (section 1.5) for the codec.
//
// Reader is a bounds-checked cursor over a packet body; every Read* returns false (and leaves the
// cursor unspecified) when the data is truncated, so callers turn `false` into a malformed-packet
// status. Reads return views into the body: no allocation happens until a decoder copies a field
// into a packet struct. The Put* helpers append to a std::string; callers reserve first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mqtt::wire {

// Bytes taken by `value` as a variable byte integer; value <= kMaxRemainingLength.
inline constexpr size_t VarIntSize(uint32_t value) {
  return value < 128 ? 1 : value < 16'384 ? 2 : value < 2'097'152 ? 3 : 4;
}

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  size_t remaining() const { return data_.size(); }
  bool empty() const { return data_.empty(); }

  bool ReadByte(uint8_t* value) {
    if (data_.empty()) return false;
    *value = static_cast<uint8_t>(data_[0]);
    data_.remove_prefix(1);
    return true;
  }

  bool ReadU16(uint16_t* value) {
    if (data_.size() < 2) return false;
    *value = static_cast<uint16_t>(Byte(0) << 8 | Byte(1));
    data_.remove_prefix(2);
    return true;
  }

  bool ReadU32(uint32_t* value) {
    if (data_.size() < 4) return false;
    *value = uint32_t{Byte(0)} << 24 | uint32_t{Byte(1)} << 16 | uint32_t{Byte(2)} << 8 | Byte(3);
    data_.remove_prefix(4);
    return true;
  }

  // Variable byte integer of at most 4 bytes [MQTT-1.5.5]. Non-minimal encodings (e.g. 0x80 0x00
  // for 0) are accepted, as most brokers do; only a continuation bit on the 4th byte fails.
  bool ReadVarInt(uint32_t* value) {
    uint32_t result = 0;
    for (int i = 0; i < 4; ++i) {
      uint8_t byte;
      if (!ReadByte(&byte)) return false;
      result |= uint32_t{byte & 0x7Fu} << (7 * i);
      if ((byte & 0x80) == 0) {
        *value = result;
        return true;
      }
    }
    return false;
  }

  // Two-byte length followed by that many bytes (binary data and UTF-8 strings alike; UTF-8
  // validity is the caller's check).
  bool ReadLengthPrefixed(std::string_view* value) {
    uint16_t length;
    if (!ReadU16(&length)) return false;
    return ReadBytes(length, value);
  }

  bool ReadBytes(size_t n, std::string_view* value) {
    if (data_.size() < n) return false;
    *value = data_.substr(0, n);
    data_.remove_prefix(n);
    return true;
  }

  std::string_view ReadRest() {
    std::string_view rest = data_;
    data_ = {};
    return rest;
  }

 private:
  uint8_t Byte(size_t i) const { return static_cast<uint8_t>(data_[i]); }

  std::string_view data_;
};

inline void PutByte(uint8_t value, std::string* out) { out->push_back(static_cast<char>(value)); }

inline void PutU16(uint16_t value, std::string* out) {
  const char bytes[2] = {static_cast<char>(value >> 8), static_cast<char>(value)};
  out->append(bytes, 2);
}

inline void PutU32(uint32_t value, std::string* out) {
  const char bytes[4] = {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
                         static_cast<char>(value >> 8), static_cast<char>(value)};
  out->append(bytes, 4);
}

// Minimal encoding, as [MQTT-1.5.5-1] requires of senders.
inline void PutVarInt(uint32_t value, std::string* out) {
  do {
    uint8_t byte = value & 0x7F;
    value >>= 7;
    if (value != 0) byte |= 0x80;
    PutByte(byte, out);
  } while (value != 0);
}

// Two-byte length prefix + bytes; `value` is at most 65535 bytes (the caller's contract).
inline void PutLengthPrefixed(std::string_view value, std::string* out) {
  PutU16(static_cast<uint16_t>(value.size()), out);
  out->append(value);
}

inline constexpr size_t LengthPrefixedSize(std::string_view value) { return 2 + value.size(); }

// Reserves room for the whole packet, then writes the fixed header. One reserve per packet:
// libstdc++ grows geometrically, so appending many packets to one buffer stays linear.
inline void PutFixedHeader(uint8_t first_byte, uint32_t remaining_length, std::string* out) {
  out->reserve(out->size() + 1 + VarIntSize(remaining_length) + remaining_length);
  PutByte(first_byte, out);
  PutVarInt(remaining_length, out);
}

}  // namespace mqtt::wire
