// The state of one MQTT session: subscriptions, outbound QoS 1/2 messages in flight, the queue
// behind them, and inbound QoS 2 packet ids awaiting PUBREL. A session outlives its network
// connections when the client asked for it (3.x clean session = 0).
//
// Delivery rules:
// - A message goes out at once when the client is connected, nothing is queued ahead of it and,
//   for QoS 1/2, fewer than max_inflight are unacknowledged; otherwise it is queued (QoS 0 is
//   queued only while connected, to keep order behind queued QoS 1/2 messages; it is dropped
//   while offline). A full queue drops the new message and counts it.
// - On reconnect, inflight messages are sent again in their original order with DUP set
//   [MQTT-4.4.0-1], and PUBREL again for those already PUBREC'd, then the queue drains.
//
// Threading: lives on its home worker (chosen by client id); touched only there.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "node/protocol/message.h"

namespace mqtt {

class Client;

struct SessionLimits {
  uint32_t max_inflight = 20;
  uint32_t max_queued_messages = 1000;
  uint32_t max_outbound_buffer = 4 * 1024 * 1024;
};

struct SubscriptionOptions {
  uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  uint8_t retain_handling = 0;
  uint32_t subscription_id = 0;
};

class Session {
 public:
  Session(std::string client_id, uint64_t id, const SessionLimits& limits)
      : client_id_(std::move(client_id)), id_(id), limits_(limits) {}

  const std::string& client_id() const { return client_id_; }
  uint64_t id() const { return id_; }

  // True when the session ends with its connection (3.x clean session = 1).
  bool clean() const { return clean_; }
  void set_clean(bool clean) { clean_ = clean; }

  Client* client() const { return client_; }
  // Attaches a connected client (CONNACK already sent) and resends what was unacknowledged.
  void Attach(Client* client);
  void Detach() { client_ = nullptr; }

  // Delivers `message` at `qos` (already min(published, granted)); `retain` is the RETAIN flag
  // this receiver sees.
  void Deliver(const MessagePtr& message, uint8_t qos, bool retain);

  // Acknowledgements from the client. Unknown packet ids are ignored (returns false).
  bool OnPuback(uint16_t packet_id);
  bool OnPubrec(uint16_t packet_id);  // then PUBREL is sent
  bool OnPubcomp(uint16_t packet_id);

  // Inbound QoS 2: true if this packet id was already received and not yet released, i.e. a
  // re-sent PUBLISH that must not be delivered again.
  bool InboundQos2Pending(uint16_t packet_id) const { return inbound_qos2_.contains(packet_id); }
  void AddInboundQos2(uint16_t packet_id) { inbound_qos2_.insert(packet_id); }
  bool ReleaseInboundQos2(uint16_t packet_id) { return inbound_qos2_.erase(packet_id) > 0; }

  absl::flat_hash_map<std::string, SubscriptionOptions>& subscriptions() { return subscriptions_; }

  size_t inflight_count() const { return inflight_.size(); }
  size_t queued_count() const { return queue_.size(); }
  uint64_t dropped_count() const { return dropped_; }

 private:
  enum class Stage : uint8_t { kAwaitPuback, kAwaitPubrec, kAwaitPubcomp };
  struct Inflight {
    uint16_t packet_id;
    Stage stage;
    bool retain;
    MessagePtr message;  // null once PUBREC'd
  };
  struct Queued {
    MessagePtr message;
    uint8_t qos;
    bool retain;
  };

  bool CanSendNow(uint8_t qos) const;
  void SendNow(const MessagePtr& message, uint8_t qos, bool retain);
  void DrainQueue();
  uint16_t NextPacketId();
  std::deque<Inflight>::iterator FindInflight(uint16_t packet_id);

  const std::string client_id_;
  const uint64_t id_;
  const SessionLimits limits_;
  bool clean_ = true;
  Client* client_ = nullptr;
  absl::flat_hash_map<std::string, SubscriptionOptions> subscriptions_;
  std::deque<Inflight> inflight_;  // in send order
  std::deque<Queued> queue_;
  absl::flat_hash_set<uint16_t> inbound_qos2_;
  uint16_t last_packet_id_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace mqtt
