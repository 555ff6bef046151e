// SPDX-License-Identifier: Apache-2.0
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
#include <deque>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "node/auth/access_control.h"
#include "node/auth/enhanced_auth.h"
#include "node/net/transport.h"
#include "node/protocol/codec.h"
#include "node/protocol/packets.h"
#include "node/router/ack_token.h"
#include "node/session/node_context.h"
#include "node/session/publish_cache.h"
#include "node/session/session.h"
#include "node/session/worker_counters.h"

namespace mqtt {

class Client;

// The registry's answer to a CONNECT's claim of its client id (ClientRegistry::Claim, remote.h);
// epoch 0 on a single node.
struct ClaimResult {
  absl::Status status;
  uint64_t epoch = 0;
  // The previous holder could not be asked for the session (down or cut off): a new one starts,
  // and that node's copy is collected when it is back (docs/cluster-sessions.md).
  bool owner_unreachable = false;
};

// What a Client needs from the worker it runs on (implemented by Shard).
class ClientHost {
 public:
  virtual NodeContext& node() = 0;
  virtual uint32_t index() const = 0;  // of this worker
  virtual Executor* executor() = 0;    // this worker's thread, for acknowledgement tokens
  // Finds or creates the session for a CONNECT on this (its home) worker, taking it over from
  // a connected client [MQTT-3.1.4-2]; sets *session_present. Null, changing nothing, if the
  // session is attached to a connection with a newer claim than `claim_epoch` (0: no registry):
  // that connection won the race.
  virtual Session* OpenSession(const std::string& client_id, bool clean_start, uint64_t claim_epoch,
                               bool* session_present) = 0;
  // The client of `session` went away: ends the session if it ends with its connection.
  virtual void SessionDetached(Session* session) = 0;
  // Publishes `will` when the delay passes or the session ends, unless it is resumed first.
  virtual void DelayWill(const std::string& client_id, MessagePtr will, uint32_t delay_seconds) = 0;
  // Keeps `token` until this turn's storage batch is written.
  virtual void HoldUntilCommitted(AckTokenPtr token) = 0;
  // Moves a connection whose CONNECT was decoded here to worker `home`, which continues it,
  // once the cluster's registry has answered its claim of the client id (if there is one).
  virtual void HandOver(uint32_t home, std::shared_ptr<net::DetachedTransport> transport,
                        Connect connect, std::string leftover_input) = 0;
  // Forgets `client`; it stays alive until the end of the loop turn.
  virtual void RemoveClient(Client* client) = 0;
  // This worker's traffic counters (written on this worker only).
  virtual WorkerCounters& counters() = 0;
  // Whether this worker holds a session (connected or not) for `client_id`.
  virtual bool HasSession(const std::string& client_id) = 0;
  // This worker's encode-once cache of the PUBLISH being fanned out.
  virtual PublishCache& publish_cache() = 0;

 protected:
  ~ClientHost() = default;
};

class Client final : public net::TransportCallbacks,
                     public SessionClient,
                     public AckListener,
                     public std::enable_shared_from_this<Client> {
 public:
  // `transport` is on the host's worker; Start() makes this client its handler.
  Client(ClientHost* host, std::shared_ptr<net::Transport> transport);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts reading the connection.
  void Start() { transport_->Start(this); }

  // Continues a CONNECT decoded on another worker (or claimed in the registry), after the socket
  // moved here. A failed claim refuses the connection (3.1.1 return code 3, 5.0 0x88).
  void ResumeConnect(Connect connect, std::string leftover_input, ClaimResult claim = {});

  // SessionClient (session_host.h).
  SendResult SendPublish(const OutboundMessage& out, bool dup, uint16_t packet_id) override;
  void SendPubrel(uint16_t packet_id) override;
  size_t unsent_bytes() const override { return transport_->unsent_bytes(); }
  void TakenOver(bool resumed) override;

  // Server-initiated close with a reason (sent as DISCONNECT to 5.0 clients).
  // 5.0: with `server_reference` (0x1C) when not empty, e.g. for 0x9C Use another server.
  void Disconnect(uint8_t reason_code, std::string_view server_reference = {});

  // Checked once a second by the shard: keep alive [MQTT-3.1.2-24], the time allowed to send
  // CONNECT, and the time allowed to drain output while closing.
  bool TimedOut(std::chrono::steady_clock::time_point now) const;
  void OnTimeout();

  // Called once a second by the shard: a connection that wrote nothing since gives back its
  // output buffer (net::Transport::ReleaseIdleBuffers).
  void ReleaseIdleBuffers() { transport_->ReleaseIdleBuffers(); }

  // AckListener: acknowledgement `ack_seq` may go, its message is durable everywhere.
  void OnDurable(uint64_t ack_seq) override;

 private:
  // net::TransportCallbacks
  size_t OnInput(std::string_view data) override;
  void OnClosed() override;
  // The packets of `data` (OnInput's work); returns how many bytes were used.
  size_t HandleInput(std::string_view data);

  // limits.message_rate and limits.byte_rate (client.cc): token buckets that pause reading
  // from the socket; what was read and not handled waits in the Throttle.
  struct Throttle;
  bool AdmitPacket(const FrameHeader& header);
  void HandlePending();
  void ResumeAfterThrottle();

  std::string* output_buffer() { return transport_->output_buffer(); }
  void RequestFlush() { transport_->RequestFlush(); }
  bool closing() const { return transport_->closing(); }
  void Close() { transport_->Close(); }
  std::string peer() const { return transport_->peer(); }
  NodeContext& node() const { return host_->node(); }

  enum class Phase : uint8_t { kAwaitConnect, kAuthenticating, kConnected, kDone };

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
  // 5.0 Topic Alias of an inbound PUBLISH: sets the alias, or points `*topic` at the topic it
  // stands for (valid until the next PUBLISH).
  absl::Status ResolveTopicAlias(const Properties& properties, std::string_view* topic);
  absl::Status HandlePubAck(const FrameHeader& header, std::string_view body);
  absl::Status HandleSubscribe(std::string_view body);
  struct RetainedToSend {  // for one filter of a SUBSCRIBE
    Router::RetainedSnapshot snapshot;
    uint8_t granted = 0;
  };
  // A retained message of a SUBSCRIBE not sent yet (PumpRetained).
  struct PendingRetained {
    MessagePtr message;  // what the SUBSCRIBE saw; once `current`, what to send (or null)
    uint64_t seen = 0;   // the SUBSCRIBE's retained sequence (Router::RefreshRetained)
    uint32_t subscription_id = 0;
    uint8_t granted = 0;
    bool current = false;
  };
  void PumpRetained();
  void RefreshRetainedChunk(std::deque<PendingRetained>& backlog);
  void OnOutputWritten() override { PumpRetained(); }
  uint8_t AddSubscription(const SubscribeTopic& topic, uint32_t subscription_id,
                          std::vector<RetainedToSend>* retained);
  absl::Status HandleUnsubscribe(std::string_view body);
  absl::Status HandleDisconnect(std::string_view body);
  void SendConnack(bool session_present, Properties properties);
  void SendConnackAndClose(uint8_t code, Version version);
  void Fail(const absl::Status& status);
  // The one "client disconnected" event of a connection that was connected (logged once).
  void LogDisconnected(std::string_view reason, int reason_code);
  void EndSession();
  void PublishWill();
  // 5.0: whether a PUBLISH of `out` to this client carries properties of its own (Subscription
  // Identifiers, the remaining Message Expiry, a Topic Alias) besides the message's.
  bool HasOwnProperties(const OutboundMessage& out) const;
  const Properties* OutboundProperties(const OutboundMessage& out, std::string_view* topic);
  // Encodes `out` into the output buffer, or, for a receiver that sees the same bytes as others,
  // copies the worker's shared encoding (PublishCache). Returns the bytes written, or 0 and
  // writes nothing above the client's Maximum Packet Size.
  size_t WritePublish(const OutboundMessage& out, bool dup, uint16_t packet_id);
  // Password file and ACL (node/auth/access_control.h), when the node has them: the CONNECT's
  // verdict, and whether this client may read, write or subscribe to `topic` under the current
  // policy (true without one). A reload applies from the next call.
  auth::ConnectVerdict Authenticate(const Connect& connect) const;
  bool Authorized(std::string_view topic, auth::Access access);
  // The disk watermark (storage.min_free_disk) is exceeded and the node has a store.
  bool DiskWatermarkExceeded();
  // Whether accepting `publish` would write to the store: retained, QoS 2 of a persistent
  // publisher, or routed to a persistent session (here or on another node).
  bool NeedsStorage(const PublishView& publish);
  bool RefusedByDiskWatermark(const Connect& connect, uint32_t expiry);

  // PUBACK/PUBREC owed to this client, in the order its PUBLISHes arrived [MQTT-4.6.0-2]; each
  // goes once it and all before it are ready. Sequence numbers wrap; only equality is used.
  struct PendingAck {
    uint32_t seq;
    bool ready;
    PubAckHeader ack;
  };
  void QueueAck(PubAckHeader ack, AckTokenPtr* token);
  void SendReadyAcks();

  // State most connections never use, allocated on first use so that an idle connection stays
  // small: 5.0 enhanced authentication (the method named in CONNECT, the exchange under way, the
  // CONNECT waiting for it), 5.0 topic aliases, inbound (alias -> topic) and outbound, and the
  // access-control state: who this is, the policy in use and a small cache of its answers
  // (topic -> known and allowed access bits), cleared when the policy changes or is full.
  struct Extras {
    std::string auth_method;
    std::unique_ptr<auth::AuthExchange> auth_exchange;
    std::unique_ptr<Connect> pending_connect;
    absl::flat_hash_map<uint16_t, std::string> inbound_aliases;
    absl::flat_hash_map<std::string, uint16_t> outbound_aliases;
    std::optional<std::string> username;
    std::optional<auth::IpAddress> address;
    std::shared_ptr<const auth::Policy> policy;
    uint64_t policy_generation = 0;
    absl::flat_hash_map<std::string, uint8_t> acl_cache;
    bool internal = false;               // Transport::internal: no password file, no ACL
    uint64_t claim_epoch = 0;            // the registry's epoch of this connection's claim; 0: none
    std::unique_ptr<Throttle> throttle;  // null without a rate limit
    std::deque<PendingRetained> retained_backlog;
  };
  Extras& extras();
  const std::string& auth_method() const;
  uint64_t claim_epoch() const { return extras_ ? extras_->claim_epoch : 0; }
  Throttle* throttle() const { return extras_ ? extras_->throttle.get() : nullptr; }

  // Fields ordered to leave no padding: the size decides the allocator class of every
  // connection.
  ClientHost* const host_;
  const std::shared_ptr<net::Transport> transport_;
  Phase phase_ = Phase::kAwaitConnect;
  Version version_ = Version::kV311;
  bool taken_over_by_resume_ = false;
  bool connect_expiry_was_zero_ = true;  // 5.0: CONNECT had Session Expiry Interval 0
  bool disconnect_logged_ = false;       // LogDisconnected ran
  uint8_t listener_ = 0;                 // net::ListenerKind, set when CONNECT is accepted
  uint16_t keep_alive_ = 0;
  uint32_t client_max_packet_size_ = 0;  // 5.0, from CONNECT; 0: no limit
  uint32_t next_ack_seq_ = 0;
  uint16_t client_topic_alias_max_ = 0;  // 5.0, from CONNECT
  std::string client_id_;
  std::unique_ptr<Will> will_;  // a pointer: most connections have none, and a Will is large
  Session* session_ = nullptr;
  std::chrono::steady_clock::time_point last_activity_;
  std::unique_ptr<Extras> extras_;
  std::vector<PendingAck> pending_acks_;
};

}  // namespace mqtt
