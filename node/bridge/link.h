// SPDX-License-Identifier: Apache-2.0
// Link: one MQTT client connection of a bridge (to the remote broker, or to this node over an
// in-process socket pair), built on node/protocol's codec. It frames input, decodes packets
// and hands them to its LinkHandler; it encodes and writes what the bridge sends. It has no
// session state of its own: packet ids, acknowledgements and reconnects are the bridge's.
//
// Threading: everything on the io_context of the stream (the bridge's worker); the handler is
// called there. Lifetime: owned by shared_ptr; pending I/O holds a reference. After Close() the
// handler is never called again.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "boost/asio/buffer.hpp"
#include "boost/asio/write.hpp"
#include "boost/system/error_code.hpp"
#include "node/protocol/packets.h"

namespace mqtt::bridge {

// A peer's reason code as logs and `mqttctl bridges` show it: "0x87 Not authorized (text)" (5.0,
// with the Reason String when there is one) or "0x05 Connection refused, not authorized" (3.x).
std::string ReasonText(Version version, uint8_t code,
                       const std::optional<std::string>& reason_string);

// A byte stream under a Link: TCP, TLS or a Unix socket (link.cc has the three).
class Stream {
 public:
  using Handler = std::function<void(const boost::system::error_code&, size_t)>;
  virtual ~Stream() = default;
  virtual void ReadSome(char* data, size_t size, Handler done) = 0;
  virtual void Write(const std::string& data, Handler done) = 0;  // `data` lives until done
  virtual void Close() = 0;
};

class LinkHandler {
 public:
  virtual void OnConnack(const Connack& connack) = 0;
  virtual void OnPublish(Publish publish) = 0;
  virtual void OnPubAck(const PubAck& ack) = 0;  // PUBACK, PUBREC, PUBREL, PUBCOMP
  virtual void OnSuback(const Suback& suback) = 0;
  // The connection ended: the peer closed, an I/O or protocol error (`why`), or Close().
  virtual void OnLinkClosed(const std::string& why) = 0;

 protected:
  ~LinkHandler() = default;
};

class Link : public std::enable_shared_from_this<Link> {
 public:
  Link(std::unique_ptr<Stream> stream, Version version, LinkHandler* handler, std::string name);
  ~Link();

  void Start();  // starts reading
  // Sends CONNECT; `try_private` sets the bridge bit of the protocol level (0x80 | 4), which
  // Mosquitto understands as "a bridge: do not echo its own messages back" (3.1.1 only).
  void SendConnect(const Connect& connect, bool try_private);
  void SendPublish(const Publish& publish);
  void SendPubAck(PacketType type, uint16_t packet_id, uint8_t reason_code = 0);
  void SendSubscribe(const Subscribe& subscribe);
  void SendPingreq();
  void SendDisconnect();
  // Closes the stream; OnLinkClosed is not called for it.
  void Close();

  Version version() const { return version_; }
  // Whether any packet arrived since the last call (keep alive).
  bool TakeHeardFrom();

 private:
  void ReadNext();
  void OnRead(const boost::system::error_code& ec, size_t n);
  absl::Status Dispatch(uint8_t first_byte, std::string_view body);
  void Queue(std::string bytes);
  void WriteNext();
  void Fail(const std::string& why);

  std::unique_ptr<Stream> stream_;
  const Version version_;
  LinkHandler* handler_;  // null once closed
  const std::string name_;
  std::string in_;
  char read_buffer_[16384];
  std::string pending_;  // encoded, not yet handed to the stream
  std::string writing_;  // handed to the stream
  bool heard_ = false;
};

// A Stream over a connected Asio stream: a TCP or Unix socket, or an ssl::stream after its
// handshake.
template <typename S>
class AsioStream final : public Stream {
 public:
  explicit AsioStream(S stream) : stream_(std::move(stream)) {}
  void ReadSome(char* data, size_t size, Handler done) override {
    stream_.async_read_some(boost::asio::buffer(data, size), std::move(done));
  }
  void Write(const std::string& data, Handler done) override {
    boost::asio::async_write(stream_, boost::asio::buffer(data), std::move(done));
  }
  void Close() override {
    boost::system::error_code ec;
    stream_.lowest_layer().close(ec);
  }

 private:
  S stream_;
};

}  // namespace mqtt::bridge
