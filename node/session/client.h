// One client connection speaking MQTT: decodes packets, drives its session, encodes replies.
//
// Error policy: every handler returns a Status; Fail() is the one place that turns an error
// into what the client sees (a 5.0 DISCONNECT, or CONNACK before CONNECT completed, with the
// reason code), logs one line and closes this connection only. The will is published on every
// close that is not a normal DISCONNECT from the client [MQTT-3.1.2-8], [MQTT-3.1.2-10].
//
// Threading: runs on one worker; after CONNECT, on its session's home worker.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "node/auth/enhanced_auth.h"
#include "node/net/connection.h"
#include "node/protocol/codec.h"
#include "node/protocol/packets.h"
#include "node/session/ack_token.h"
#include "node/session/session.h"

namespace mqtt {

class Broker;
class Shard;

class Client : public net::Connection {
 public:
  Client(Shard* shard, boost::asio::ip::tcp::socket socket);
  ~Client() override;

  // Continues a CONNECT decoded on another worker, after the socket moved here.
  void ResumeConnect(Connect connect, std::string leftover_input);

  // Encodes a PUBLISH for this client. Returns false, sending nothing, when the packet exceeds
  // the client's 5.0 Maximum Packet Size [MQTT-3.1.2-25].
  bool SendPublish(const OutboundMessage& out, bool dup, uint16_t packet_id);
  void SendPubrel(uint16_t packet_id);
  // Server-initiated close with a reason (sent as DISCONNECT to 5.0 clients).
  void Disconnect(uint8_t reason_code);

  // Checked once a second by the shard: keep alive [MQTT-3.1.2-24], the time allowed to send
  // CONNECT, and the time allowed to drain output while closing.
  bool TimedOut(std::chrono::steady_clock::time_point now) const;
  void OnTimeout();

  // Acknowledgement `ack_seq` (see AckToken) may go: its message is durable everywhere.
  void AckReady(uint64_t ack_seq);

  // The session was taken over by another connection: this client no longer drives it. When the
  // new connection resumes the session, a delayed will of this one is not sent [MQTT-3.1.3-9].
  void DetachSession(bool resumed) {
    session_ = nullptr;
    taken_over_by_resume_ = resumed;
  }

 protected:
  size_t OnInput(std::string_view data) override;
  void OnClosed() override;

 private:
  enum class Phase { kAwaitConnect, kAuthenticating, kConnected, kDone };

  absl::Status HandlePacket(const FrameHeader& header, std::string_view body,
                            std::string_view rest);
  absl::Status HandleConnect(std::string_view body, std::string_view rest);
  absl::Status AcceptConnect(Connect connect);
  // Moves the connection to its session's home worker if needed, then accepts it.
  absl::Status FinishConnect(Connect connect, std::string_view rest);
  absl::Status ContinueConnectAuth(auth::AuthStep step, Connect connect, std::string_view rest);
  absl::Status HandleAuth(std::string_view body, std::string_view rest);
  void SendAuth(uint8_t reason, std::string data);
  absl::Status HandlePublish(const FrameHeader& header, std::string_view body);
  absl::Status ResolveTopicAlias(Publish& publish);
  absl::Status HandlePubAck(const FrameHeader& header, std::string_view body);
  absl::Status HandleSubscribe(std::string_view body);
  uint8_t AddSubscription(const SubscribeTopic& topic, uint32_t subscription_id,
                          std::vector<std::pair<std::string, uint8_t>>* retained);
  absl::Status HandleUnsubscribe(std::string_view body);
  absl::Status HandleDisconnect(std::string_view body);
  void SendConnack(bool session_present, Properties properties);
  void SendConnackAndClose(uint8_t code, Version version);
  void Fail(const absl::Status& status);
  void EndSession();
  void PublishWill();
  const Properties* OutboundProperties(const OutboundMessage& out, std::string_view* topic);

  Shard* shard_;
  Broker* broker_;
  Phase phase_ = Phase::kAwaitConnect;
  Version version_ = Version::kV311;
  std::string client_id_;
  uint16_t keep_alive_ = 0;
  std::unique_ptr<Will> will_;  // a pointer: most connections have none, and a Will is large
  Session* session_ = nullptr;
  bool taken_over_by_resume_ = false;
  std::chrono::steady_clock::time_point last_activity_;

  // 5.0 limits the client announced in CONNECT.
  uint32_t client_max_packet_size_ = 0;  // 0: no limit
  uint16_t client_topic_alias_max_ = 0;
  bool connect_expiry_was_zero_ = true;

  // 5.0 enhanced authentication: the method named in CONNECT, the exchange under way (CONNECT
  // or re-authentication) and the CONNECT waiting for it to finish.
  std::string auth_method_;
  std::unique_ptr<auth::AuthExchange> auth_;
  std::unique_ptr<Connect> pending_connect_;

  // PUBACK/PUBREC owed to this client, in the order its PUBLISHes arrived [MQTT-4.6.0-2]; each
  // goes once it and all before it are ready.
  struct PendingAck {
    uint64_t seq;
    PubAck ack;
    bool ready;
  };
  std::vector<PendingAck> pending_acks_;
  uint64_t next_ack_seq_ = 0;
  void QueueAck(PubAck ack, AckTokenPtr* token);
  void SendReadyAcks();
  // 5.0 topic aliases, inbound (alias -> topic) and outbound (topic -> alias); allocated on first
  // use so that connections without aliases stay small.
  struct TopicAliases {
    absl::flat_hash_map<uint16_t, std::string> inbound;
    absl::flat_hash_map<std::string, uint16_t> outbound;
  };
  TopicAliases& aliases();
  std::unique_ptr<TopicAliases> aliases_;
};

}  // namespace mqtt
