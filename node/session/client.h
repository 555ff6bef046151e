// One client connection speaking MQTT: decodes packets, drives its session, encodes replies.
//
// Error policy: every handler returns a Status; Fail() is the one place that turns an error
// into what the client sees (a 5.0 DISCONNECT with the reason code where the protocol has one),
// logs one line and closes this connection only. The will is published on every close that is
// not a DISCONNECT from the client [MQTT-3.1.2-8], [MQTT-3.1.2-10].
//
// Threading: runs on one worker; after CONNECT, on its session's home worker.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "node/net/connection.h"
#include "node/protocol/codec.h"
#include "node/protocol/packets.h"

namespace mqtt {

class Broker;
class Shard;
class Session;
struct Message;

class Client : public net::Connection {
 public:
  Client(Shard* shard, boost::asio::ip::tcp::socket socket);
  ~Client() override;

  // Continues a CONNECT decoded on another worker, after the socket moved here.
  void ResumeConnect(Connect connect, std::string leftover_input);

  void SendPublish(const Message& message, uint8_t qos, bool retain, bool dup,
                   uint16_t packet_id);
  void SendPubrel(uint16_t packet_id);
  // Server-initiated close with a reason (sent as DISCONNECT to 5.0 clients).
  void Disconnect(uint8_t reason_code);

  // Checked once a second by the shard: keep alive [MQTT-3.1.2-24], the time allowed to send
  // CONNECT, and the time allowed to drain output while closing.
  bool TimedOut(std::chrono::steady_clock::time_point now) const;
  void OnTimeout();

  // The session this client drives; null before CONNECT completes or after a takeover.
  void DetachSession() { session_ = nullptr; }

 protected:
  size_t OnInput(std::string_view data) override;
  void OnClosed() override;

 private:
  enum class Phase { kAwaitConnect, kConnected, kDone };

  absl::Status HandlePacket(const FrameHeader& header, std::string_view body,
                            std::string_view rest);
  absl::Status HandleConnect(std::string_view body, std::string_view rest);
  absl::Status AcceptConnect(Connect connect);
  absl::Status HandlePublish(const FrameHeader& header, std::string_view body);
  absl::Status HandlePubAck(const FrameHeader& header, std::string_view body);
  absl::Status HandleSubscribe(std::string_view body);
  absl::Status HandleUnsubscribe(std::string_view body);
  absl::Status HandleDisconnect(std::string_view body);
  void SendConnackAndClose(uint8_t code, Version version);
  void Fail(const absl::Status& status);
  void PublishWill();
  void EndSession();

  Shard* shard_;
  Broker* broker_;
  Phase phase_ = Phase::kAwaitConnect;
  Version version_ = Version::kV311;
  std::string client_id_;
  uint16_t keep_alive_ = 0;
  std::optional<Will> will_;
  Session* session_ = nullptr;
  std::chrono::steady_clock::time_point last_activity_;
  std::string encode_scratch_;
};

}  // namespace mqtt
