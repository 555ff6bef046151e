// SPDX-License-Identifier: Apache-2.0
#include "tests/unit/session/test_util.h"

#include "gtest/gtest.h"
#include "node/persist/convert.h"

namespace mqtt::session_testing {

// --- FakeStorage -------------------------------------------------------------------------------

uint64_t FakeStorage::PutMessage(const Message& message) {
  if (store_ == nullptr) return 0;
  uint64_t id = message.stored_id.value.load();
  if (id == 0) {
    absl::StatusOr<uint64_t> fresh = store_->NewMessageId();
    if (!fresh.ok()) {
      StorageFailed(fresh.status());
      return 0;
    }
    uint64_t expected = 0;
    id = message.stored_id.value.compare_exchange_strong(expected, *fresh) ? *fresh : expected;
  }
  if (batch_messages_.insert(id).second) batch_.PutMessage(id, persist::ToStored(message));
  return id;
}

void FakeStorage::HoldUntilCommitted(AckTokenPtr token) {
  if (token == nullptr || store_ == nullptr) return;
  held_.push_back(std::move(token));
}

bool FakeStorage::CommitNow() {
  ++commits;
  if (store_ == nullptr) return true;
  bool ok = true;
  if (!batch_.empty()) {
    absl::Status status = store_->Write(std::move(batch_));
    batch_.Clear();
    if (!status.ok()) {
      StorageFailed(status);
      ok = false;
    }
  }
  batch_messages_.clear();
  if (!ok) {
    for (AckTokenPtr& token : held_) token->Cancel();
  }
  held_.clear();
  return ok;
}

// --- FakeSessionClient -------------------------------------------------------------------------

SendResult FakeSessionClient::SendPublish(const OutboundMessage& out, bool dup,
                                          uint16_t packet_id) {
  if (out.message->payload.size() > max_payload) return SendResult::kTooLarge;
  sent.push_back({SentPacket::kPublish, packet_id, dup, out.qos, out.message->topic,
                  out.message->payload, out.shared_group});
  return SendResult::kSent;
}

void FakeSessionClient::SendPubrel(uint16_t packet_id) {
  sent.push_back({SentPacket::kPubrel, packet_id, false, 0, "", "", 0});
}

std::vector<SentPacket> FakeSessionClient::Take() {
  std::vector<SentPacket> result;
  result.swap(sent);
  return result;
}

std::vector<std::string> FakeSessionClient::TakePayloads() {
  std::vector<std::string> payloads;
  for (const SentPacket& p : Take()) {
    payloads.push_back(p.kind == SentPacket::kPubrel ? "PUBREL" : p.payload);
  }
  return payloads;
}

MessagePtr MakeMessage(std::string_view topic, std::string_view payload, uint8_t qos,
                       int64_t expires_at_ms) {
  auto message = std::make_shared<Message>();
  message->topic = std::string(topic);
  message->payload = std::string(payload);
  message->qos = qos;
  message->expires_at_ms = expires_at_ms;
  message->publisher_id = "publisher";
  return message;
}

OutboundMessage Out(MessagePtr message, uint8_t qos, uint64_t shared_group) {
  OutboundMessage out;
  out.message = std::move(message);
  out.qos = qos;
  out.shared_group = shared_group;
  return out;
}

OutboundMessage Out(std::string_view payload, uint8_t qos, uint64_t shared_group) {
  return Out(MakeMessage("t", payload, qos), qos, shared_group);
}

// --- FakeTransport -----------------------------------------------------------------------------

void FakeTransport::Start(net::TransportCallbacks* callbacks, std::string initial_input) {
  callbacks_ = callbacks;
  conn_->current = weak_from_this();
  if (!initial_input.empty()) Feed(initial_input);
}

void FakeTransport::RequestFlush() {
  if (flush_requested_ || state_ == State::kClosed || state_ == State::kDetached) return;
  flush_requested_ = true;
  worker_->ScheduleFlush(shared_from_this());
}

void FakeTransport::FlushOutput() {
  flush_requested_ = false;
  if (state_ == State::kClosed || state_ == State::kDetached) return;
  conn_->written += out_;
  out_.clear();
  if (state_ == State::kClosing) Shutdown();
}

void FakeTransport::Close() {
  if (state_ != State::kOpen) return;
  state_ = State::kClosing;
  close_started_ = std::chrono::steady_clock::now();
  RequestFlush();
}

void FakeTransport::Abort() {
  if (state_ == State::kClosed || state_ == State::kDetached) return;
  if (state_ == State::kOpen) close_started_ = std::chrono::steady_clock::now();
  out_.clear();
  conn_->aborted = true;
  Shutdown();
}

void FakeTransport::Shutdown() {
  state_ = State::kClosed;
  conn_->closed = true;
  in_.clear();
  net::TransportCallbacks* callbacks = callbacks_;
  callbacks_ = nullptr;
  if (callbacks != nullptr) {
    ++conn_->on_closed_calls;
    callbacks->OnClosed();
  }
}

std::unique_ptr<net::DetachedTransport> FakeTransport::Detach() {
  if (state_ != State::kOpen || unsent_bytes() != 0) return nullptr;
  state_ = State::kDetached;
  callbacks_ = nullptr;
  in_.clear();
  ++conn_->detaches;
  return std::make_unique<FakeDetached>(conn_);
}

void FakeTransport::Feed(std::string_view bytes) {
  if (state_ != State::kOpen || callbacks_ == nullptr) return;
  in_.append(bytes);
  if (paused_) return;
  // Keep this transport alive while its handler runs (the handler may drop its reference).
  std::shared_ptr<FakeTransport> self = shared_from_this();
  std::string data;
  data.swap(in_);
  size_t consumed = callbacks_->OnInput(data);
  if (state_ == State::kOpen && callbacks_ != nullptr) {
    in_ = data.substr(std::min(consumed, data.size())) + in_;
  }
}

void FakeTransport::PeerClosed() {
  if (state_ == State::kClosed || state_ == State::kDetached) return;
  std::shared_ptr<FakeTransport> self = shared_from_this();
  Shutdown();
}

std::shared_ptr<net::Transport> FakeDetached::Attach(net::IoWorker* worker) {
  auto transport = std::make_shared<FakeTransport>(worker, conn_);
  conn_->current = transport;
  return transport;
}

std::vector<WirePacket> TakePackets(FakeConnection& conn) {
  std::vector<WirePacket> packets;
  while (conn.read_pos < conn.written.size()) {
    FrameHeader header;
    const auto* data = reinterpret_cast<const uint8_t*>(conn.written.data()) + conn.read_pos;
    size_t size = conn.written.size() - conn.read_pos;
    FrameResult result = PeekFrame(data, size, &header);
    if (result != FrameResult::kComplete) {
      ADD_FAILURE() << "incomplete or malformed frame in the output at " << conn.read_pos;
      break;
    }
    packets.push_back(
        {header, conn.written.substr(conn.read_pos + header.header_size, header.remaining_length)});
    conn.read_pos += header.header_size + header.remaining_length;
  }
  return packets;
}

size_t PollUntilIdle(const std::vector<net::IoWorker*>& workers) {
  size_t total = 0;
  for (int round = 0; round < 1000; ++round) {
    size_t ran = 0;
    for (net::IoWorker* worker : workers) ran += worker->io().poll();
    total += ran;
    if (ran == 0) return total;
  }
  ADD_FAILURE() << "workers never became idle";
  return total;
}

// --- TestPeer ----------------------------------------------------------------------------------

void TestPeer::Send(std::string_view bytes) {
  std::shared_ptr<FakeTransport> transport = conn_->current.lock();
  ASSERT_NE(transport, nullptr) << "no transport attached";
  transport->Feed(bytes);
}

void TestPeer::SendConnect(const Connect& connect) {
  std::string bytes;
  EncodeConnect(connect, &bytes);
  version_ = connect.version;
  Send(bytes);
}

void TestPeer::SendPublish(std::string_view topic, std::string_view payload, uint8_t qos,
                           uint16_t packet_id, bool dup, bool retain, Properties properties) {
  Publish publish;
  publish.topic = std::string(topic);
  publish.payload = std::string(payload);
  publish.qos = qos;
  publish.packet_id = packet_id;
  publish.dup = dup;
  publish.retain = retain;
  publish.properties = std::move(properties);
  std::string bytes;
  EncodePublish(publish, version_, &bytes);
  Send(bytes);
}

void TestPeer::SendSubscribe(uint16_t packet_id, std::string_view filter, uint8_t qos) {
  Subscribe subscribe;
  subscribe.packet_id = packet_id;
  SubscribeTopic topic;
  topic.filter = std::string(filter);
  topic.qos = qos;
  subscribe.topics.push_back(topic);
  std::string bytes;
  EncodeSubscribe(subscribe, version_, &bytes);
  Send(bytes);
}

void TestPeer::SendAck(PacketType type, uint16_t packet_id, uint8_t reason) {
  std::string bytes;
  EncodePubAck(PubAck{type, packet_id, reason, {}}, version_, &bytes);
  Send(bytes);
}

void TestPeer::SendDisconnect(uint8_t reason, Properties properties) {
  std::string bytes;
  EncodeDisconnect(Disconnect{reason, std::move(properties)}, version_, &bytes);
  Send(bytes);
}

absl::StatusOr<Publish> TestPeer::DecodePublishPacket(const WirePacket& packet) const {
  return DecodePublish(packet.header.first_byte, packet.body, version_);
}

absl::StatusOr<PubAck> TestPeer::DecodeAckPacket(const WirePacket& packet) const {
  return DecodePubAck(packet.header.first_byte, packet.body, version_);
}

std::string TypeNames(const std::vector<WirePacket>& packets) {
  static constexpr const char* kNames[] = {"RESERVED",  "CONNECT",  "CONNACK",     "PUBLISH",
                                           "PUBACK",    "PUBREC",   "PUBREL",      "PUBCOMP",
                                           "SUBSCRIBE", "SUBACK",   "UNSUBSCRIBE", "UNSUBACK",
                                           "PINGREQ",   "PINGRESP", "DISCONNECT",  "AUTH"};
  std::string names;
  for (const WirePacket& packet : packets) {
    if (!names.empty()) names += ",";
    names += kNames[static_cast<int>(packet.type())];
  }
  return names;
}

}  // namespace mqtt::session_testing
