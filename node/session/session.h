// SPDX-License-Identifier: Apache-2.0
// The state of one MQTT session: subscriptions, outbound QoS 1/2 messages in flight, the queue
// behind them, and inbound QoS 2 packet ids awaiting PUBREL. A session outlives its network
// connections when the client asked for it (3.x clean session = 0; 5.0 session expiry > 0).
//
// Delivery rules:
// - A message goes out at once when the client is connected, nothing is queued ahead of it and,
//   for QoS 1/2, the inflight window has room (min of --max-inflight and the client's 5.0
//   Receive Maximum); otherwise it is queued. QoS 0 is queued only while connected (to keep order
//   behind queued QoS 1/2 messages) and, unless queue_qos0_offline, dropped while offline. A
//   queue full by count or bytes drops the new message (drop_newest) or as many of the oldest
//   queued ones as needed (drop_oldest; a stored one is deleted in the batch that stores the
//   new one, so a crash keeps one or the other state). Expired messages (5.0 Message Expiry) are
//   dropped, never delivered. Every drop is counted by reason (SessionStorage::CountDrop), and
//   the first of each minute is logged per session.
// - On reconnect, inflight messages are sent again in their original order with DUP set
//   [MQTT-4.4.0-1], and PUBREL again for those already PUBREC'd, then the queue drains.
// - Messages that came through a shared subscription are offered to another member of the group
//   when the client disconnects: QoS 1 in flight without PUBACK and queued QoS 1/2. A QoS 2
//   message already sent stays: its delivery must complete with this client [MQTT-4.8.2-4].
//
// Threading: lives on its home worker (chosen by client id); touched only there.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "node/protocol/message.h"
#include "node/protocol/packets.h"
#include "node/router/ack_token.h"
#include "node/session/session_host.h"
#include "storage/store.h"

namespace mqtt {

struct SessionLimits {
  uint32_t max_inflight = 20;
  uint32_t max_queued_messages = 1000;
  uint64_t max_queued_bytes = 64 * 1024 * 1024;  // topic + payload bytes queued; 0 = no limit
  uint32_t max_outbound_buffer = 4 * 1024 * 1024;
  bool queue_qos0_offline = false;  // keep QoS 0 for offline persistent sessions (on disk)
  // A full queue drops its oldest message to take the new one (EMQX's choice) instead of the
  // new one (limits.queue_full_policy).
  bool drop_oldest = false;
};

struct SubscriptionOptions {
  uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  uint8_t retain_handling = 0;
  uint32_t subscription_id = 0;
};

// One message on its way to one session, with what differs per receiver.
struct OutboundMessage {
  MessagePtr message;
  uint8_t qos = 0;
  bool retain = false;                     // the RETAIN flag this receiver sees
  uint64_t shared_group = 0;               // non-zero: chosen through this shared group
  std::vector<uint32_t> subscription_ids;  // 5.0 Subscription Identifiers that matched
  uint64_t seq = 0;                        // position of its stored queue entry; 0 when not stored
  AckTokenPtr ack;  // the publisher's acknowledgement waits for this delivery to be durable
  // Entry in the sending worker's outbox that the receiving worker removes when it stores the
  // message for the session (0: none).
  uint64_t outbox_seq = 0;
  uint32_t outbox_worker = 0;
};

inline constexpr uint32_t kSessionNeverExpires = 0xFFFFFFFF;

// The application message a will becomes when it is published (the will delay is not part of it).
MessagePtr WillMessage(Will will, std::string_view client_id);

class Session {
 public:
  // Offers an unacknowledged shared-subscription message to another member of its group.
  // Returns false when there is no other member: the message then stays with this session.
  using Redistribute = std::function<bool(const OutboundMessage&, uint64_t from_session)>;

  // `storage` is this worker's (it may have no store); `limits` must outlive the session.
  Session(SessionStorage* storage, std::string client_id, uint64_t id, const SessionLimits& limits)
      : storage_(storage),
        client_id_(std::move(client_id)),
        id_(id),
        limits_(limits),
        has_store_(storage->store() != nullptr) {}
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const std::string& client_id() const { return client_id_; }
  // The client id for routing entries when persistent (see Subscriber::durable_client_id).
  std::shared_ptr<const std::string> durable_client_id();
  uint64_t id() const { return id_; }

  // Seconds the session outlives its connection: 0 = it ends with the connection,
  // kSessionNeverExpires = never (3.x clean session = 0).
  uint32_t expiry_interval() const { return expiry_interval_; }
  void set_expiry_interval(uint32_t seconds) { expiry_interval_ = seconds; }
  bool ends_with_connection() const { return expiry_interval_ == 0; }
  // The registry epoch of the connection that last attached (0: no registry, or not claimed).
  uint64_t claim_epoch() const { return extras_ ? extras_->claim_epoch : 0; }
  void set_claim_epoch(uint64_t epoch) {
    if (epoch != 0 || extras_ != nullptr) extras().claim_epoch = epoch;
  }
  // Persistent sessions keep their state in the store: every QoS 1/2 message routed to them is
  // written (queue entry or in-flight record) before the publisher is acknowledged.
  bool persistent() const { return expiry_interval_ != 0 && has_store_; }
  void set_version(Version version) { version_ = version; }
  Version version() const { return version_; }

  // Writes the session record (subscriptions, expiry, will) to this turn's batch. `will` is the
  // connected client's will, so that a crash of the node still publishes it after restart.
  void SaveRecord(const Will* will);
  // Rebuilds state read from the store at start-up.
  void Restore(const storage::SessionState& state);
  // Deletes the stored session (when the session ends).
  void Forget();
  // Appends an entry recovered from a worker's outbox to the stored queue (start-up only).
  void AppendRecovered(uint64_t message_id, const storage::v1::MessageRecord& message,
                       storage::v1::QueueEntry entry);
  // Monotonic ms when an offline session expires; 0 while connected or never expiring.
  int64_t expires_at_ms() const { return extras_ ? extras_->expires_at_ms : 0; }

  SessionClient* client() const { return client_; }
  // Shared with the groups of the session's shared subscriptions, created on first use: most
  // sessions have none.
  std::shared_ptr<const std::atomic<bool>> online_flag();
  // Attaches a connected client (CONNACK already sent) and resends what was unacknowledged.
  // `receive_maximum` is the client's 5.0 Receive Maximum (65535 for 3.x).
  void Attach(SessionClient* client, uint16_t receive_maximum);
  // The client is gone. Shared-subscription messages not yet acknowledged go to `redistribute`.
  void Detach(const Redistribute& redistribute);

  void Deliver(OutboundMessage&& message);
  // Until `until_ms` (MonotonicMs), a message whose Message::origin was delivered to this session
  // already is dropped: a session that moved here from another node gets copies of one publish
  // by two paths while the routes change (docs/cluster-sessions.md, "The overlap window").
  // At most `max_ids` origins are remembered (the oldest go first).
  void WatchDuplicates(int64_t until_ms, size_t max_ids = kMaxWatchedIds);
  static constexpr size_t kMaxWatchedIds = 200'000;

  // Acknowledgements from the client. Unknown packet ids are ignored (returns false).
  // `sent_ns`, when given, is set to when the acknowledged PUBLISH was last sent (MonotonicNs,
  // node/base/latency_histogram.h; a resend on reconnect counts from the resend).
  bool OnPuback(uint16_t packet_id, int64_t* sent_ns = nullptr);
  bool OnPubrec(uint16_t packet_id);  // then PUBREL is sent
  // A 5.0 PUBREC with a reason code >= 0x80: the exchange ends there, no PUBREL (4.3.3).
  bool OnPubrecError(uint16_t packet_id);
  bool OnPubcomp(uint16_t packet_id, int64_t* sent_ns = nullptr);

  // Inbound QoS 2: true if this packet id was already received and not yet released, i.e. a
  // re-sent PUBLISH that must not be delivered again [MQTT-4.3.3-2].
  bool InboundQos2Pending(uint16_t packet_id) const {
    return extras_ != nullptr && extras_->inbound_qos2.contains(packet_id);
  }
  void AddInboundQos2(uint16_t packet_id);
  bool ReleaseInboundQos2(uint16_t packet_id);
  size_t inbound_qos2_count() const { return extras_ ? extras_->inbound_qos2.size() : 0; }

  absl::flat_hash_map<std::string, SubscriptionOptions>& subscriptions() { return subscriptions_; }

  size_t inflight_count() const { return inflight_.size(); }
  size_t queued_count() const { return queue_ ? queue_->size() : 0; }
  uint64_t disk_queued_count() const { return disk_queued_; }
  uint64_t queued_bytes() const { return queued_bytes_; }
  uint64_t dropped_count() const { return extras_ ? extras_->dropped : 0; }

 private:
  // Sets extras().expires_at_ms and tells the storage's expiry index.
  void SetExpiresAt(int64_t at_ms);
  // Adds the change of this session's queued and in-flight counts since the last report to the
  // worker's totals. Every public method that may change them reports on its way out
  // (GaugeReport first in its body); one that did not would be corrected by the next report.
  void ReportGauges();
  struct GaugeReport {
    Session* session;
    ~GaugeReport() { session->ReportGauges(); }
  };
  enum class Stage : uint8_t { kAwaitPuback, kAwaitPubrec, kAwaitPubcomp };
  struct Inflight {
    uint16_t packet_id;
    Stage stage;
    OutboundMessage out;  // message is null once PUBREC'd; out.seq: its stored record, or 0
    int64_t sent_ns = 0;  // MonotonicNs of the last send (PUBLISH, or PUBREL on a reconnect)
    // Not re-sent yet on this connection: the session resumed with more in flight than the
    // client's window (ResendInflight). Always a suffix of inflight_.
    bool resend = false;
  };

  bool CanSendNow(uint8_t qos) const;
  void SendNow(OutboundMessage&& out);
  void DrainQueue();
  void ResendInflight();
  uint16_t NextPacketId();
  std::vector<Inflight>::iterator FindInflight(uint16_t packet_id);
  bool queue_empty() const { return queue_ == nullptr || queue_->empty(); }
  bool Expired(const OutboundMessage& out) const;
  static uint64_t QueuedBytes(const OutboundMessage& out);
  void StoreInflight(const Inflight& entry);
  void StoreQueued(const OutboundMessage& out);
  void Unstore(const Inflight& entry);
  bool LoadQueuePage();
  void AppendQueuePage(storage::QueuePage& page);
  bool QueueFull(uint64_t bytes) const;
  // Makes room for a message of `bytes` by dropping the oldest queued ones; false when the queue
  // holds nothing more to drop (the new message is then dropped).
  bool DropOldestFor(uint64_t bytes);
  bool DropOldestStored();
  void Dropped(DropReason reason);
  void DroppedBySend(SendResult result);

  // The origins of the messages delivered since the session moved here, for a while; the
  // oldest are forgotten beyond kMaxIds.
  struct DuplicateWatch {
    size_t max_ids = kMaxWatchedIds;
    int64_t until_ms = 0;
    absl::flat_hash_set<OriginId> seen;
    std::deque<OriginId> order;
  };
  // State most sessions never use, allocated on first use so that the session of an idle
  // connection stays small: offline expiry, the registry epoch (cluster), drops, inbound QoS 2
  // ids, the shared groups' online flag, the durable id, and the on-disk queue's read state.
  struct Extras {
    int64_t expires_at_ms = 0;  // MonotonicMs when an offline session expires; 0: not set
    uint64_t claim_epoch = 0;
    uint64_t dropped = 0;
    int64_t drop_logged_ms = 0;  // MonotonicMs of the last drop logged
    uint64_t disk_read_after = 0;
    std::shared_ptr<std::atomic<bool>> online;  // null until online_flag() is called
    std::shared_ptr<const std::string> durable_client_id;
    absl::flat_hash_set<uint16_t> inbound_qos2;
    // drop_oldest, offline: the oldest entries on disk (seq, bytes), read a page at a time so
    // that not every drop needs a read. Only while queue_ is empty; LoadQueuePage forgets them.
    std::unique_ptr<std::deque<std::pair<uint64_t, uint64_t>>> oldest_stored;
    std::unique_ptr<DuplicateWatch> duplicates;  // null unless the session moved here lately
  };
  Extras& extras() {
    if (extras_ == nullptr) extras_ = std::make_unique<Extras>();
    return *extras_;
  }

  // Fields ordered to leave no padding: the size decides the allocator class of every session.
  SessionStorage* const storage_;
  const std::string client_id_;
  const uint64_t id_;
  const SessionLimits& limits_;  // the broker's, which outlives every session
  SessionClient* client_ = nullptr;
  uint32_t expiry_interval_ = 0;
  uint32_t send_window_ = 0;  // min(max_inflight, client's Receive Maximum)
  absl::flat_hash_map<std::string, SubscriptionOptions> subscriptions_;
  // In send order; at most the inflight window long, so a vector (no memory while empty).
  std::vector<Inflight> inflight_;
  // Behind the window; allocated on first use, since std::deque allocates even when empty and
  // most sessions never queue.
  std::unique_ptr<std::deque<OutboundMessage>> queue_;
  // Persistence: the next queue/in-flight sequence number, and the queue entries on disk that
  // are not in queue_ (an offline session keeps its queue on disk only).
  uint64_t next_seq_ = 1;
  uint64_t disk_queued_ = 0;
  uint64_t queued_bytes_ = 0;  // topic + payload of what is queued, in memory and on disk
  std::unique_ptr<Extras> extras_;
  uint16_t last_packet_id_ = 0;
  Version version_ = Version::kV311;
  const bool has_store_;  // storage_->store() != nullptr, asked once: persistent() is hot
  bool stored_ = false;   // a session record may exist in the store
  // What storage_->totals() holds of this session. Narrow: they fit in what was padding of the
  // 192-byte size class a session is allocated in; the in-flight window is at most 65,535.
  uint16_t reported_inflight_ = 0;
  uint32_t reported_queued_ = 0;
  bool SeenBefore(const Message& message);
};

}  // namespace mqtt
