// SPDX-License-Identifier: Apache-2.0
// The server side of WebSocket (RFC 6455) as MQTT needs it (MQTT 5.0 chapter 6, 3.1.1 chapter
// 6): the HTTP Upgrade answer and a frame codec. Pure functions and a small value type, no I/O:
// LayeredTransport (layered_transport.h) runs them over TCP or TLS.
//
// Why not Boost.Beast's websocket::stream: it is bound to one io_context's executor and cannot
// move to another worker after CONNECT (transport.h, Detach); this codec's whole state is a
// few bytes that move with the connection.
//
// The MQTT stream is the concatenation of the binary frames' payloads: several packets per
// frame and a packet split over frames (and fragmented messages) all work [MQTT-6.0.0-2],
// [MQTT-6.0.0-3]. A text frame is an error that closes the connection [MQTT-6.0.0-1].
// Threading: none of its own; a WsDecoder belongs to one connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mqtt::net {

// The answer to one complete HTTP request head (up to and including the blank line).
struct WsUpgrade {
  bool accepted = false;
  std::string response;     // bytes to send: "101 Switching Protocols" or an HTTP error
  std::string error;        // why it was refused (for the log)
  std::string subprotocol;  // "mqtt" or "mqttv3.1": the first of these the client offered
};

// Accepts a GET of `path` (query ignored) with Upgrade: websocket, Connection: Upgrade,
// Sec-WebSocket-Version: 13, a Sec-WebSocket-Key and a Sec-WebSocket-Protocol list naming
// mqtt or mqttv3.1. Without such a subprotocol the request is refused (400): the client MUST
// offer "mqtt" [MQTT-6.0.0-4] and the server answers with the name it selected [MQTT-6.0.0-5].
WsUpgrade AnswerUpgrade(std::string_view request, std::string_view path);

// Position of the end of an HTTP request head in `data` (just past "\r\n\r\n"), or npos.
size_t HttpHeadEnd(std::string_view data);
// An Upgrade request whose head is longer than this is refused.
inline constexpr size_t kMaxHttpHead = 8 * 1024;
// True when a head collected so far (`collected` bytes, HttpHeadEnd `end`) is too large: a
// complete head longer than kMaxHttpHead, or more than that without its end yet. The same
// answer whether the head came in one read or in many.
bool HttpHeadTooLarge(size_t collected, size_t end);

// Appends one unmasked server frame (FIN set) to `out`.
void AppendWsFrame(std::string_view payload, uint8_t opcode, std::string* out);
inline constexpr uint8_t kWsBinary = 0x2;
inline constexpr uint8_t kWsClose = 0x8;
// A close frame with status `code` (1000 normal, 1002 protocol error, 1003 unsupported data).
void AppendWsClose(uint16_t code, std::string* out);

// Client frames to MQTT bytes, fed the wire bytes in any slices.
class WsDecoder {
 public:
  enum class Result : uint8_t {
    kOk,     // go on
    kClose,  // the peer sent a close frame: the echo is in `reply`; close the connection
    kError,  // a protocol error, described in `error`; a close frame is in `reply`
  };

  // Decodes `n` wire bytes at `data` in place: the unmasked payload of data frames is written
  // to the front of `data` (it never overtakes the input), its length to *app_len. Pongs and
  // close frames to send are appended to `reply`.
  Result Decode(char* data, size_t n, size_t* app_len, std::string* reply, std::string* error);

 private:
  bool ParseHeader(std::string* error);
  Result FinishFrame(std::string* reply, std::string* error);

  uint64_t remaining_ = 0;  // payload bytes of the current frame still to come
  std::string control_;     // payload of the current control frame (at most 125 bytes)
  uint8_t header_[14] = {};
  uint8_t header_len_ = 0;
  uint8_t mask_[4] = {};
  uint8_t mask_pos_ = 0;
  uint8_t opcode_ = 0;
  bool in_frame_ = false;
  bool in_message_ = false;  // a data message without FIN: continuation frames follow
};

}  // namespace mqtt::net
