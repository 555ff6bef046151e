// The broker of one node: accepts MQTT connections, keeps sessions on their home workers and
// routes each published message to every matching subscription.
//
// Threading model:
// - Each worker (net::IoWorker) has a Shard: the sessions whose client id hashes to it and the
//   connections it runs. A connection is accepted on any worker; after CONNECT its socket moves
//   to the session's home worker, so takeover and delivery to a session never need a lock.
// - The subscription trie and the retained store are shared by all workers behind
//   reader/writer locks: every publish reads them, only (un)subscribes and retained publishes
//   write.
// - A message for a session on another worker is appended to that worker's inbox in a batch at
//   the end of the sender's loop turn: one lock and one wake-up per batch, not per message.
//   Messages from one publisher reach a subscriber in order: one FIFO per (sender, receiver).
//
// Overlapping subscriptions: a client whose several filters match a topic gets one copy, at the
// highest QoS granted among them (the spec allows either; one copy is what applications expect).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "boost/asio/ip/tcp.hpp"
#include "node/auth/enhanced_auth.h"
#include "node/net/io_worker.h"
#include "node/protocol/message.h"
#include "node/router/retained_store.h"
#include "node/router/shared_subscriptions.h"
#include "node/router/topic_tree.h"
#include "node/session/ack_token.h"
#include "node/session/session.h"
#include "storage/store.h"

namespace mqtt {

class Shard;

// The application message a will becomes when it is published (the will delay is not part of it).
MessagePtr WillMessage(Will will, std::string_view client_id);

struct BrokerOptions {
  SessionLimits session_limits;
  uint32_t max_packet_size = 1024 * 1024;
  uint32_t connect_timeout_seconds = 10;
  uint16_t receive_maximum = 1024;    // inbound QoS 1/2 unacknowledged, advertised to 5.0
  uint16_t topic_alias_maximum = 64;  // inbound topic aliases per 5.0 connection
  uint16_t max_keep_alive = 65535;    // 5.0 Server Keep Alive caps the client's value
  ShareStrategy share_strategy = ShareStrategy::kRoundRobin;
  // 5.0 enhanced authentication methods, by name; none by default (CONNECT with a method: 0x8C).
  std::vector<std::shared_ptr<const auth::AuthMethod>> auth_methods;
};

class Broker {
 public:
  // `store` may be null: then nothing is persisted (sessions and retained messages live in
  // memory only). Otherwise it must outlive the broker.
  Broker(const BrokerOptions& options, std::vector<net::IoWorker*> workers,
         storage::Store* store = nullptr);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Loads persistent sessions and retained messages from the store. Call once, before Start()
  // and before the workers run. Wills of sessions whose client was connected when the node
  // stopped are published by Start().
  absl::Status Recover();

  // Starts the per-worker timers (keep-alive, connect timeout). Call before accepting.
  void Start();

  // Takes a freshly accepted socket bound to `worker`'s io_context. Any thread.
  void Accept(net::IoWorker* worker, boost::asio::ip::tcp::socket socket);

  // Closes every connection (5.0 clients get DISCONNECT 0x8B), waits up to `grace` for output
  // to drain, and stops the timers. Any thread but a worker's. Wills are not published.
  void Shutdown(std::chrono::milliseconds grace);

  const BrokerOptions& options() const { return options_; }
  // The enhanced authentication method called `name`, or null.
  const auth::AuthMethod* FindAuthMethod(std::string_view name) const;
  size_t worker_count() const { return shards_.size(); }
  Shard& shard(uint32_t worker) { return *shards_[worker]; }
  uint32_t HomeWorker(std::string_view client_id) const;
  uint64_t NewSessionId() { return next_session_id_.fetch_add(1, std::memory_order_relaxed); }
  bool shutting_down() const { return shutting_down_.load(std::memory_order_relaxed); }

  // Routes a message published on worker `from_worker` (and stores it if retained). `ack`, if
  // given, is held by every batch that persists the message (see ack_token.h).
  void Publish(uint32_t from_worker, MessagePtr message, AckTokenPtr ack = nullptr);

  // Persistence helpers shared by the shards.
  storage::Store* store() const { return store_; }
  // A storage error: logged, and the node stops (SIGTERM to itself) rather than acknowledge
  // what it cannot keep. Any thread.
  void StorageFailed(const absl::Status& status);
  storage::v1::MessageRecord ToStored(const Message& message) const;
  MessagePtr FromStored(uint64_t id, const storage::v1::MessageRecord& record) const;

  // Sends a shared-subscription message that session `from_session` did not acknowledge to
  // another member of its group. Returns false, doing nothing, when there is no other member.
  bool Redistribute(uint32_t from_worker, const OutboundMessage& message, uint64_t from_session);

  // The shared subscription trie. Callers on any worker. `filter` may be a shared filter
  // ($share/group/filter, $queue/filter), already validated.
  void AddSubscription(std::string_view filter, const Subscriber& subscriber,
                       std::shared_ptr<const std::atomic<bool>> online);
  void RemoveSubscription(std::string_view filter, uint64_t session_id);
  // Retained messages matching `filter`.
  std::vector<MessagePtr> RetainedMatching(std::string_view filter) const;

 private:
  void DeliverToSessions(Shard& from, const MessagePtr& message, const AckTokenPtr& ack);
  absl::Status RecoverOutboxes();

  const BrokerOptions options_;
  storage::Store* const store_;
  std::atomic<bool> storage_failed_{false};
  std::vector<MessagePtr> recovered_wills_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<uint64_t> next_session_id_{1};
  std::atomic<bool> shutting_down_{false};

  mutable std::shared_mutex subscriptions_mutex_;
  TopicTree subscriptions_;     // guarded by subscriptions_mutex_
  SharedGroups shared_groups_;  // guarded by subscriptions_mutex_ (Select: shared is enough)
  mutable std::shared_mutex retained_mutex_;
  RetainedStore retained_;  // guarded by retained_mutex_
};

}  // namespace mqtt
