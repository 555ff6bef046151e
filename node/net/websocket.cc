// SPDX-License-Identifier: Apache-2.0
#include "node/net/websocket.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mqtt::net {
namespace {

constexpr absl::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// Debian's Abseil has its own string_view type.
absl::string_view A(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string AcceptKey(std::string_view key) {
  std::string text = absl::StrCat(A(key), kGuid);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  unsigned char out[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

WsUpgrade Refuse(int code, std::string_view reason, std::string error) {
  WsUpgrade answer;
  answer.error = std::move(error);
  answer.response = absl::StrCat("HTTP/1.1 ", code, " ", A(reason), "\r\n",
                                 code == 426 ? "Sec-WebSocket-Version: 13\r\n" : "",
                                 "Connection: close\r\nContent-Length: 0\r\n\r\n");
  return answer;
}

// True when the comma-separated header `value` holds `token` (case-insensitive).
bool HasToken(std::string_view value, std::string_view token) {
  for (absl::string_view item : absl::StrSplit(A(value), ',')) {
    if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(item), A(token))) return true;
  }
  return false;
}

struct Request {
  std::string method, target, version, upgrade, connection, key, ws_version;
  std::vector<std::string> protocols;
};

Request ParseHead(std::string_view head) {
  Request r;
  std::vector<absl::string_view> lines = absl::StrSplit(A(head), "\r\n");
  std::vector<absl::string_view> first = absl::StrSplit(lines[0], ' ');
  if (first.size() == 3) {
    r.method = std::string(first[0]);
    r.target = std::string(first[1]);
    r.version = std::string(first[2]);
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) continue;
    std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
    std::string value(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    if (name == "upgrade") r.upgrade = value;
    if (name == "connection") r.connection = value;
    if (name == "sec-websocket-key") r.key = value;
    if (name == "sec-websocket-version") r.ws_version = value;
    if (name == "sec-websocket-protocol") {
      for (absl::string_view p : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
        r.protocols.emplace_back(absl::StripAsciiWhitespace(p));
      }
    }
  }
  return r;
}

}  // namespace

size_t HttpHeadEnd(std::string_view data) {
  size_t end = data.find("\r\n\r\n");
  return end == std::string_view::npos ? end : end + 4;
}

bool HttpHeadTooLarge(size_t collected, size_t end) {
  return end == std::string_view::npos ? collected > kMaxHttpHead : end > kMaxHttpHead;
}

WsUpgrade AnswerUpgrade(std::string_view request, std::string_view path) {
  Request r = ParseHead(request);
  if (r.method != "GET" || r.version != "HTTP/1.1") {
    return Refuse(400, "Bad Request", "not an HTTP/1.1 GET");
  }
  std::string_view target = r.target;
  target = target.substr(0, target.find('?'));
  if (target != path) return Refuse(404, "Not Found", absl::StrCat("path '", A(target), "'"));
  if (!HasToken(r.upgrade, "websocket") || !HasToken(r.connection, "upgrade") || r.key.empty()) {
    return Refuse(400, "Bad Request", "not a WebSocket upgrade");
  }
  if (r.ws_version != "13") {
    return Refuse(426, "Upgrade Required", absl::StrCat("WebSocket version '", r.ws_version, "'"));
  }
  auto chosen = std::find_if(r.protocols.begin(), r.protocols.end(),
                             [](const std::string& p) { return p == "mqtt" || p == "mqttv3.1"; });
  if (chosen == r.protocols.end()) {
    return Refuse(400, "Bad Request", "no mqtt subprotocol offered [MQTT-6.0.0-4]");
  }
  WsUpgrade answer;
  answer.accepted = true;
  answer.subprotocol = *chosen;
  answer.response = absl::StrCat(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
      "Sec-WebSocket-Accept: ", AcceptKey(r.key), "\r\nSec-WebSocket-Protocol: ", *chosen,
      "\r\n\r\n");
  return answer;
}

void AppendWsFrame(std::string_view payload, uint8_t opcode, std::string* out) {
  out->push_back(static_cast<char>(0x80 | opcode));
  const uint64_t n = payload.size();
  if (n < 126) {
    out->push_back(static_cast<char>(n));
  } else if (n < 65536) {
    out->push_back(126);
    out->push_back(static_cast<char>(n >> 8));
    out->push_back(static_cast<char>(n));
  } else {
    out->push_back(127);
    for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(n >> shift));
  }
  out->append(payload);
}

void AppendWsClose(uint16_t code, std::string* out) {
  const char payload[2] = {static_cast<char>(code >> 8), static_cast<char>(code)};
  AppendWsFrame(std::string_view(payload, 2), kWsClose, out);
}

WsDecoder::Result WsDecoder::Decode(char* data, size_t n, size_t* app_len, std::string* reply,
                                    std::string* error) {
  size_t in = 0, out = 0;
  Result result = Result::kOk;
  while (in < n && result == Result::kOk) {
    if (!in_frame_) {
      header_[header_len_++] = static_cast<uint8_t>(data[in++]);
      if (!ParseHeader(error)) {
        result = Result::kError;
      } else if (in_frame_ && remaining_ == 0) {
        result = FinishFrame(reply, error);
      }
      continue;
    }
    const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n - in));
    const bool is_data = opcode_ < 0x8;
    for (size_t i = 0; i < take; ++i) {
      const char byte = static_cast<char>(data[in + i] ^ mask_[mask_pos_++ & 3]);
      if (is_data) {
        data[out++] = byte;  // out <= in + i: the payload never overtakes its input
      } else {
        control_.push_back(byte);
      }
    }
    in += take;
    remaining_ -= take;
    if (remaining_ == 0) result = FinishFrame(reply, error);
  }
  if (result == Result::kError) AppendWsClose(1002, reply);
  *app_len = out;
  return result;
}

// Called after each header byte: false on a protocol error; starts the frame once the header
// (2 to 14 bytes with the mask) is complete.
bool WsDecoder::ParseHeader(std::string* error) {
  if (header_len_ < 2) return true;
  if (!(header_[1] & 0x80)) {
    header_len_ = 0;
    return *error = "unmasked client frame (RFC 6455 5.1)", false;
  }
  const uint8_t len7 = header_[1] & 0x7f;
  const size_t size = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
  if (header_len_ < size) return true;
  header_len_ = 0;
  const bool fin = header_[0] & 0x80;
  opcode_ = header_[0] & 0x0f;
  uint64_t length = len7;
  if (len7 >= 126) {
    length = 0;
    for (size_t i = 2; i < size - 4; ++i) length = (length << 8) | header_[i];
  }
  std::copy(header_ + size - 4, header_ + size, mask_);
  mask_pos_ = 0;
  if ((header_[0] & 0x70) != 0) return *error = "reserved bits set", false;
  if (opcode_ == 0x1) return *error = "text frame [MQTT-6.0.0-1]", false;
  if (opcode_ >= 0x8) {
    if (!fin || length > 125 || (opcode_ != 0x8 && opcode_ != 0x9 && opcode_ != 0xA)) {
      return *error = "bad control frame", false;
    }
  } else if (opcode_ == 0x2 || opcode_ == 0x0) {
    if ((opcode_ == 0x0) != in_message_) return *error = "bad continuation frame", false;
    in_message_ = !fin;
  } else {
    return *error = absl::StrCat("unknown opcode ", opcode_), false;
  }
  if (length >> 63) return *error = "bad frame length", false;
  remaining_ = length;
  in_frame_ = true;
  return true;
}

WsDecoder::Result WsDecoder::FinishFrame(std::string* reply, std::string* error) {
  in_frame_ = false;
  Result result = Result::kOk;
  if (opcode_ == 0x9) {
    AppendWsFrame(control_, 0xA, reply);  // pong with the ping's payload
  } else if (opcode_ == 0x8) {
    if (control_.size() == 1) {
      *error = "close frame with a 1-byte payload";
      result = Result::kError;
    } else {
      AppendWsFrame(control_.substr(0, std::min<size_t>(control_.size(), 2)), kWsClose, reply);
      result = Result::kClose;
    }
  }
  std::string().swap(control_);
  return result;
}

}  // namespace mqtt::net
