// SPDX-License-Identifier: Apache-2.0
// The broker of one node: accepts MQTT connections, keeps sessions on their home workers and
// routes each published message to every matching subscription.
//
// Threading model:
// - Each worker (net::IoWorker) has a Shard: the sessions whose client id hashes to it and the
//   connections it runs. A connection is accepted on any worker; after CONNECT its socket moves
//   to the session's home worker, so takeover and delivery to a session never need a lock.
// - Routing (subscriptions, shared groups, retained messages, remote routes) is the Router's
//   (node/router/router.h), shared by all workers: every publish reads it, only (un)subscribes
//   and retained publishes write.
// - A message for a session on another worker is appended to that worker's inbox in a batch at
//   the end of the sender's loop turn: one lock and one wake-up per batch, not per message.
//   Messages from one publisher reach a subscriber in order: one FIFO per (sender, receiver).
//
// Overlapping subscriptions: a client whose several filters match a topic gets one copy, at the
// highest QoS granted among them (the spec allows either; one copy is what applications expect).
#pragma once

#include <atomic>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "node/auth/enhanced_auth.h"
#include "node/base/log_limiter.h"
#include "node/net/io_worker.h"
#include "node/net/transport.h"
#include "node/protocol/message.h"
#include "node/protocol/reason_codes.h"
#include "node/router/ack_token.h"
#include "node/router/router.h"
#include "node/session/import_gate.h"
#include "node/session/node_context.h"
#include "node/session/remote.h"
#include "node/session/session.h"
#include "node/session/session_info.h"
#include "node/session/shard.h"
#include "storage/store.h"

namespace mqtt {

class Broker final : public NodeContext, public ForwardedDelivery, public SessionSource {
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

  // Takes a freshly accepted connection bound to its worker (not started yet). Any thread.
  void Accept(std::shared_ptr<net::Transport> transport);

  // Closes every connection (5.0 clients get DISCONNECT 0x8B), waits up to `grace` for output
  // to drain, and stops the timers. Any thread but a worker's. Wills are not published.
  void Shutdown(std::chrono::milliseconds grace);

  // NodeContext (node_context.h).
  const BrokerOptions& options() const override { return options_; }
  Router& router() override { return router_; }
  void Publish(uint32_t from_worker, MessagePtr message, AckTokenPtr ack) override;
  bool Redistribute(uint32_t from_worker, const OutboundMessage& message,
                    uint64_t from_session) override;
  uint32_t HomeWorker(std::string_view client_id) const override;
  Shard& shard(uint32_t worker) override { return *shards_[worker]; }
  size_t worker_count() const override { return shards_.size(); }  // also ForwardedDelivery's
  uint64_t NewSessionId() override {
    return next_session_id_.fetch_add(1, std::memory_order_relaxed);
  }
  const auth::AuthMethod* FindAuthMethod(std::string_view name) const override;
  bool shutting_down() const override { return shutting_down_.load(std::memory_order_relaxed); }
  storage::Store* store() const override { return store_; }
  // Logged once, then the node stops (SIGTERM to itself). Any thread.
  void StorageFailed(const absl::Status& status) override;
  ClientRegistry* client_registry() const override { return client_registry_; }
  SessionMover* session_mover() const override { return session_mover_; }
  ImportGate& import_gate() override { return import_gate_; }

  // ForwardedDelivery (remote.h).
  Executor& executor_of(uint32_t worker) override { return *shards_[worker]->worker(); }
  SessionStorage& storage_of(uint32_t worker) override { return *shards_[worker]; }
  void DeliverForwarded(uint32_t worker, const MessagePtr& message, const AckTokenPtr& ack,
                        const SharedTarget* shared) override;

  // Where messages for remote nodes go (the cluster's forwarder); null on a single node. Set
  // before Start().
  void set_remote_delivery(RemoteDelivery* remote) { remote_ = remote; }
  // Where retained publishes go instead of the local router and store; null on a single node.
  // Set before Start().
  void set_retained_replication(RetainedReplication* retained) { retained_ = retained; }
  // The cluster's client-id registry; null on a single node. Set before Start().
  void set_client_registry(ClientRegistry* registry) { client_registry_ = registry; }
  // Moves persistent sessions between nodes (with the registry); null on a single node. Set
  // before Start().
  void set_session_mover(SessionMover* mover) { session_mover_ = mover; }
  // SessionSource (remote.h).
  void ExportSession(const std::string& client_id, uint64_t epoch, const std::string& to_node,
                     bool discard, Exported done) override;
  void FinishExport(const std::string& client_id, uint64_t epoch) override;
  void AdoptSession(const std::string& client_id, const std::string& from_node,
                    Adopted done) override;
  void CollectSession(const std::string& client_id, const std::string& from_node,
                      Adopted done) override;
  std::future<Handovers> HandoverState() override;
  void EndRelays() override;
  // The registry gave `client_id` to another node at `epoch` (Shard::ClaimedElsewhere). Any
  // thread.
  void ClaimedElsewhere(const std::string& client_id, uint64_t epoch);

  // A message of this node itself ($SYS, node/sys) published on worker `from_worker` (on its
  // thread) to this node's subscribers only: retained in the router alone (not stored, not
  // replicated to the cluster), never forwarded to another node. QoS 0.
  void PublishLocal(uint32_t from_worker, MessagePtr message);

  // Admin (session_info.h; `mqttctl sessions` and `kick`). Any thread; the work runs on the
  // workers and the future is ready once it is done. A stopped worker never answers: a caller
  // that is not a worker waits with a timeout (a worker must not wait at all).
  // The sessions of every worker that pass `filter`: the first `limit` by client id, sorted.
  std::future<std::vector<SessionInfo>> ListSessions(SessionFilter filter);
  // Closes the connection of `client_id` with `reason` (Shard::Kick); false if it is not
  // connected to this node.
  std::future<bool> Kick(std::string client_id, uint8_t reason);
  // Rebalancing (`mqttctl rebalance`): closes up to `count` connected clients, spread over the
  // workers (Shard::Shed); ready with how many were closed.
  std::future<size_t> Shed(size_t count);

 private:
  absl::Status RecoverOutboxes();
  // `done`, closing the ImportGate ticket of `client_id` first.
  Adopted ClosingTicket(const std::string& client_id, uint64_t ticket, Adopted done);
  // Fetches the session `from_node` holds for `client_id` (for the claim at `epoch`; `ticket`
  // is marked fetching) and writes it on the home worker with `write`; `finish` gets the
  // outcome: `write`'s status, the fetch's error, or `if_none` when there was no session.
  using WriteFetched = absl::Status (Shard::*)(const std::string& client_id, uint64_t epoch,
                                               TransferredSession& fetched,
                                               const std::string& from_node);
  void FetchToHome(const std::string& client_id, uint64_t epoch, const std::string& from_node,
                   uint64_t ticket, absl::Status if_none, WriteFetched write, Adopted finish);
  void SharedCopyDropped(const Message& message, const SharedTarget& shared);

  const BrokerOptions options_;
  storage::Store* const store_;
  std::atomic<bool> storage_failed_{false};
  std::vector<MessagePtr> recovered_wills_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<uint64_t> next_session_id_{1};
  std::atomic<bool> shutting_down_{false};
  Router router_;
  RemoteDelivery* remote_ = nullptr;
  RetainedReplication* retained_ = nullptr;
  ClientRegistry* client_registry_ = nullptr;
  SessionMover* session_mover_ = nullptr;
  ImportGate import_gate_;
  // Group copies forwarded here that found no member (DeliverForwarded), and their log line.
  std::atomic<uint64_t> shared_dropped_{0};
  LogLimiter shared_drop_log_{absl::Seconds(1)};
};

}  // namespace mqtt
