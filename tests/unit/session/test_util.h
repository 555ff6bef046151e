// SPDX-License-Identifier: Apache-2.0
// Fakes and helpers for the in-process session-layer tests (no sockets, no threads):
// - FakeStorage / FakeSessionClient: the two narrow interfaces a Session needs (session_host.h);
// - FakeTransport: a net::Transport whose output is a string the test decodes and whose input
//   the test feeds, driven on IoWorkers that are never started (the test polls their
//   io_contexts);
// - TestPeer: an MQTT client speaking through a FakeTransport (encode, feed, decode replies).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "node/net/io_worker.h"
#include "node/net/transport.h"
#include "node/protocol/codec.h"
#include "node/protocol/message.h"
#include "node/protocol/packets.h"
#include "node/router/ack_token.h"
#include "node/session/session.h"
#include "node/session/session_host.h"
#include "storage/store.h"

namespace mqtt::session_testing {

// ---------------------------------------------------------------------------------------------
// Session level.

// SessionStorage over an optional real Store: a real Batch, written by CommitNow.
class FakeStorage final : public SessionStorage {
 public:
  explicit FakeStorage(storage::Store* store = nullptr) : store_(store) {}

  storage::Store* store() const override { return store_; }
  storage::Batch* batch() override { return store_ == nullptr ? nullptr : &batch_; }
  uint64_t PutMessage(const Message& message) override;
  void HoldUntilCommitted(AckTokenPtr token) override;
  bool CommitNow() override;
  void StorageFailed(const absl::Status& status) override { failures.push_back(status); }
  void CountDrop(DropReason reason) override { drops.push_back(reason); }
  void ExpiryChanged(uint64_t, int64_t, int64_t new_ms) override { expiries.push_back(new_ms); }
  SessionTotals* totals() override { return &totals_; }

  size_t held_tokens() const { return held_.size(); }
  std::vector<int64_t> expiries;  // every expiry a session announced, in order
  SessionTotals totals_;          // what the sessions reported
  int commits = 0;
  std::vector<absl::Status> failures;
  std::vector<DropReason> drops;

 private:
  storage::Store* const store_;
  storage::Batch batch_;
  absl::flat_hash_set<uint64_t> batch_messages_;
  std::vector<AckTokenPtr> held_;
};

// One packet a FakeSessionClient was asked to send.
struct SentPacket {
  enum Kind { kPublish, kPubrel } kind;
  uint16_t packet_id = 0;
  bool dup = false;
  uint8_t qos = 0;
  std::string topic;
  std::string payload;
  uint64_t shared_group = 0;
};

class FakeSessionClient final : public SessionClient {
 public:
  SendResult SendPublish(const OutboundMessage& out, bool dup, uint16_t packet_id) override;
  void SendPubrel(uint16_t packet_id) override;
  size_t unsent_bytes() const override { return unsent; }
  void TakenOver(bool resumed) override { taken_over.push_back(resumed); }

  // Returns and forgets what was sent so far.
  std::vector<SentPacket> Take();
  std::vector<std::string> TakePayloads();

  size_t unsent = 0;
  size_t max_payload = SIZE_MAX;  // larger payloads are refused (Maximum Packet Size)
  std::vector<SentPacket> sent;
  std::vector<bool> taken_over;
};

MessagePtr MakeMessage(std::string_view topic, std::string_view payload, uint8_t qos,
                       int64_t expires_at_ms = 0);
OutboundMessage Out(MessagePtr message, uint8_t qos, uint64_t shared_group = 0);
OutboundMessage Out(std::string_view payload, uint8_t qos, uint64_t shared_group = 0);

// Counts acknowledgements released through AckTokens (executor null: told inline).
class RecordingAckListener final : public AckListener {
 public:
  void OnDurable(uint64_t seq) override { durable.push_back(seq); }
  std::vector<uint64_t> durable;
};

// ---------------------------------------------------------------------------------------------
// Transport level.

// What the test sees of one connection, across a hand-over between workers.
struct FakeConnection {
  std::string written;  // bytes "written to the socket", in order
  size_t read_pos = 0;  // how far TakePackets() has decoded `written`
  bool closed = false;  // OnClosed was called (or the transport shut down)
  bool aborted = false;
  int on_closed_calls = 0;
  int detaches = 0;
  size_t extra_unsent = 0;  // added to unsent_bytes()
  std::weak_ptr<class FakeTransport> current;
};

class FakeTransport final : public net::Transport,
                            public std::enable_shared_from_this<FakeTransport> {
 public:
  FakeTransport(net::IoWorker* worker, std::shared_ptr<FakeConnection> conn)
      : worker_(worker), conn_(std::move(conn)) {}

  void Start(net::TransportCallbacks* callbacks, std::string initial_input) override;
  std::string* output_buffer() override { return state_ == State::kOpen ? &out_ : &discard_; }
  void RequestFlush() override;
  size_t unsent_bytes() const override { return out_.size() + conn_->extra_unsent; }
  void PauseReading() override { paused_ = true; }
  void ResumeReading() override { paused_ = false; }
  void Close() override;
  void Abort() override;
  bool closing() const override { return state_ != State::kOpen; }
  std::chrono::steady_clock::time_point close_started() const override { return close_started_; }
  std::unique_ptr<net::DetachedTransport> Detach() override;
  net::IoWorker* worker() const override { return worker_; }
  std::string peer() const override { return state_ == State::kClosed ? "-" : "fake:1"; }
  void FlushOutput() override;

  // Test side: bytes from the peer (offered to the callbacks with any unconsumed rest).
  void Feed(std::string_view bytes);
  // Test side: the peer went away (no DISCONNECT): OnClosed follows at once.
  void PeerClosed();
  bool started() const { return callbacks_ != nullptr; }

 private:
  enum class State { kOpen, kClosing, kClosed, kDetached };
  void Shutdown();

  net::IoWorker* const worker_;
  const std::shared_ptr<FakeConnection> conn_;
  net::TransportCallbacks* callbacks_ = nullptr;
  State state_ = State::kOpen;
  std::string out_;
  std::string discard_;
  std::string in_;
  bool flush_requested_ = false;
  bool paused_ = false;
  std::chrono::steady_clock::time_point close_started_;
};

class FakeDetached final : public net::DetachedTransport {
 public:
  explicit FakeDetached(std::shared_ptr<FakeConnection> conn) : conn_(std::move(conn)) {}
  std::shared_ptr<net::Transport> Attach(net::IoWorker* worker) override;

 private:
  std::shared_ptr<FakeConnection> conn_;
};

// A decoded packet written to a client.
struct WirePacket {
  FrameHeader header;
  std::string body;
  PacketType type() const { return header.type(); }
};

// Splits `conn`'s new output into packets (fails the test on a malformed frame).
std::vector<WirePacket> TakePackets(FakeConnection& conn);

// Polls the io_contexts of `workers` on this thread until none has work ready. Returns the
// number of handlers run.
size_t PollUntilIdle(const std::vector<net::IoWorker*>& workers);

// An MQTT client on the other end of a FakeTransport.
class TestPeer {
 public:
  TestPeer(std::shared_ptr<FakeConnection> conn, Version version)
      : conn_(std::move(conn)), version_(version) {}

  FakeConnection& conn() { return *conn_; }
  Version version() const { return version_; }
  void Send(std::string_view bytes);  // to the broker

  void SendConnect(const Connect& connect);
  void SendPublish(std::string_view topic, std::string_view payload, uint8_t qos,
                   uint16_t packet_id = 0, bool dup = false, bool retain = false,
                   Properties properties = {});
  void SendSubscribe(uint16_t packet_id, std::string_view filter, uint8_t qos);
  void SendAck(PacketType type, uint16_t packet_id, uint8_t reason = 0);
  void SendDisconnect(uint8_t reason = 0, Properties properties = {});

  // Packets written to this client since the last call.
  std::vector<WirePacket> Take() { return TakePackets(*conn_); }
  absl::StatusOr<Publish> DecodePublishPacket(const WirePacket& packet) const;
  absl::StatusOr<PubAck> DecodeAckPacket(const WirePacket& packet) const;

 private:
  std::shared_ptr<FakeConnection> conn_;
  Version version_;
};

std::string TypeNames(const std::vector<WirePacket>& packets);  // "CONNACK,PUBACK" (messages)

}  // namespace mqtt::session_testing
