// SPDX-License-Identifier: Apache-2.0
// The part of the broker that belongs to one worker thread: its sessions (by client id), its
// live connections, delayed wills, and its inbox of messages routed to it by other workers.
//
// Threading: every method runs on the shard's worker thread, except Enqueue() and
// client_count(), which any thread may call.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/steady_timer.hpp"
#include "node/net/io_worker.h"
#include "node/net/transport.h"
#include "node/protocol/message.h"
#include "node/protocol/packets.h"
#include "node/router/ack_token.h"
#include "node/session/client.h"
#include "node/session/node_context.h"
#include "node/session/publish_cache.h"
#include "node/session/remote.h"
#include "node/session/session.h"
#include "node/session/session_host.h"
#include "node/session/session_info.h"
#include "storage/store.h"

namespace mqtt {

struct Delivery {
  uint64_t session_id;
  OutboundMessage out;
};

class Shard final : public SessionStorage, public ClientHost {
 public:
  Shard(NodeContext* node, net::IoWorker* worker);
  ~Shard();

  net::IoWorker* worker() const { return worker_; }

  // ClientHost (client.h).
  NodeContext& node() override { return *node_; }
  uint32_t index() const override { return worker_->index(); }
  Executor* executor() override { return worker_; }
  Session* OpenSession(const std::string& client_id, bool clean_start, uint64_t claim_epoch,
                       bool* session_present) override;
  void SessionDetached(Session* session) override;
  void DelayWill(const std::string& client_id, MessagePtr will, uint32_t delay_seconds) override;
  void HandOver(uint32_t home, std::shared_ptr<net::DetachedTransport> transport, Connect connect,
                std::string leftover_input) override;
  void RemoveClient(Client* client) override;
  WorkerCounters& counters() override { return counters_; }
  bool HasSession(const std::string& client_id) override {
    return FindSession(client_id) != nullptr;
  }
  PublishCache& publish_cache() override { return publish_cache_; }
  const WorkerCounters& counters() const { return counters_; }

  // SessionStorage (session_host.h). All null/no-ops when the node runs without a store.
  storage::Store* store() const override;
  storage::Batch* batch() override;
  uint64_t PutMessage(const Message& message) override;
  void HoldUntilCommitted(AckTokenPtr token) override;
  bool CommitNow() override;
  void StorageFailed(const absl::Status& status) override { node_->StorageFailed(status); }
  void CountDrop(DropReason reason) override { counters_.Dropped(reason); }
  void ExpiryChanged(uint64_t session_id, int64_t old_ms, int64_t new_ms) override;
  SessionTotals* totals() override { return &session_totals_; }

  void StartTimers();
  void StopTimers();

  void AddClient(std::shared_ptr<Client> client);
  // Adopts a connection handed over by another worker after it decoded CONNECT. `imported`: the
  // session fetched from `from_node`, the client id's previous holder (SessionMover), written
  // here before the connection goes on. `import_ticket` (ImportGate; 0 outside a cluster) is
  // closed once the import is written or given up.
  void AdoptConnection(std::shared_ptr<net::DetachedTransport> detached, Connect connect,
                       std::string leftover_input, ClaimResult claim, uint64_t import_ticket,
                       std::shared_ptr<TransferredSession> imported, std::string from_node);
  // Handover, the old holder's side (SessionSource): see remote.h.
  absl::StatusOr<std::optional<TransferredSession>> ExportSession(const std::string& client_id,
                                                                  uint64_t epoch,
                                                                  const std::string& to_node,
                                                                  bool discard);
  void FinishExport(const std::string& client_id, uint64_t epoch);
  // Draining, the taking node's side (SessionSource::AdoptSession): writes and restores the
  // session taken from `from_node` at `epoch`, offline, and finishes the move; also when a newer
  // claim replaced `epoch` meanwhile (its node then takes the session from here).
  absl::Status AdoptSession(const std::string& client_id, uint64_t epoch,
                            TransferredSession& imported, const std::string& from_node);
  // Draining, the old holder's side (SessionSource::HandoverState and EndRelays).
  SessionSource::Handovers handovers() const;
  void EndRelays();
  // A copy for the session of `client_id` only, relayed by the node it moved from.
  void DeliverToClient(const std::string& client_id, OutboundMessage&& out);
  // How long a session that moved away still passes on what reaches it here: the routes it had
  // here may still be in use on other nodes until the route change has spread.
  static constexpr int64_t kMovedRelayMs = 60'000;
  // Owner node down, on the holder (SessionSource::CollectSession): the registry epoch at which
  // this node holds `client_id`, if it does and has a session for it.
  std::optional<uint64_t> HeldEpoch(const std::string& client_id);
  // Delivers what `copy` (the session `from_node` kept) holds for the client into the session
  // here, then finishes the move (`from_node` deletes the copy).
  absl::Status MergeCollected(const std::string& client_id, uint64_t epoch,
                              TransferredSession& copy, const std::string& from_node);
  // How long, and for how many messages at most, a session started because the old holder was
  // unreachable watches for duplicates: until that node's copy is collected, in practice.
  static constexpr int64_t kOldCopyWatchMs = 3'600'000;
  static constexpr size_t kOldCopyWatchIds = 10'000;
  // The registry gave `client_id` to another node at `epoch`: a connection here with an older
  // claim is taken over (5.0: DISCONNECT 0x8E) and its session detached as on any close.
  void ClaimedElsewhere(const std::string& client_id, uint64_t epoch);
  // Admin (session_info.h): this shard's sessions that pass `filter`, the first `limit` of
  // them by client id, unsorted.
  std::vector<SessionInfo> ListSessions(const SessionFilter& filter);
  // Closes the connection of `client_id`'s session as Client::Disconnect(reason) does (5.0:
  // DISCONNECT with `reason`; its will is published); a clean session ends, a persistent one
  // stays offline. False if no connection of that client id is attached here.
  bool Kick(const std::string& client_id, uint8_t reason);
  // Rebalancing: closes up to `count` connected clients as CloseAllClients does (5.0: 0x9C with
  // the server reference, else 0x8B) so that they reconnect through the load balancer; returns
  // how many it closed.
  size_t Shed(size_t count);
  // Closes all clients for shutdown or a drain (5.0: DISCONNECT 0x9C Use another server with
  // the configured server reference, else 0x8B Server shutting down); returns how many were open.
  size_t CloseAllClients();
  size_t client_count() const { return live_clients_.load(); }
  // Sessions of this shard, connected or not. This worker's thread only.
  size_t session_count() const { return sessions_.size(); }
  // Calls fn(Session&) for each session of this shard, in no order. This worker's thread only;
  // `fn` must not open or end sessions.
  template <typename Fn>
  void ForEachSession(Fn&& fn) {
    for (const auto& session : sessions_) fn(*session);
  }

  // Ends a session: publishes its delayed will, removes its subscriptions, forgets it.
  void DestroySession(Session* session);

  // Delivers to a session of this shard, or queues for another worker's shard.
  void Deliver(uint32_t worker, uint64_t session_id, OutboundMessage&& out);

  // Called by other workers (any thread) with a batch for this shard.
  void Enqueue(std::vector<Delivery>* batch) ABSL_LOCKS_EXCLUDED(inbox_mutex_);

  // Cross-worker durability: a QoS 1/2 message for a persistent session on another worker is
  // written to this worker's outbox (a queue in the store) in this turn's batch, together with
  // the publisher's state; the receiving worker removes the entry in the batch that stores the
  // message for the session. Sets out.outbox_seq/outbox_worker. Not for a message whose
  // AckToken is the publisher's only state (Message::ack_is_only_record: a client's QoS 1).
  void StageInOutbox(OutboundMessage& out, const std::string& target_client_id);
  static constexpr uint32_t kMaxOutboxes = 256;  // workers are limited to 256 (config)
  static std::string OutboxId(uint32_t worker);
  Session* FindSession(const std::string& client_id);

  // Adds a session read from the store at start-up (before the workers run).
  Session* RestoreSession(const storage::SessionState& state);

 private:
  struct PendingWill {
    MessagePtr message;
    int64_t due_ms;
  };

  // A session that moved to another node: its subscriptions stay in the router for
  // kMovedRelayMs, and what they route here is relayed to `to_node`.
  struct MovedSession {
    std::string client_id;
    std::string to_node;
    int64_t until_ms;
    std::vector<std::string> filters;
  };
  // An export in progress: the copy went to `to_node` with queue entries up to `last_seq`.
  struct Exporting {
    std::string to_node;
    uint64_t epoch;
    uint64_t last_seq;
    int64_t started_ms;  // MonotonicMs
  };
  static constexpr int64_t kExportAbandonMs = 30'000;
  static constexpr int64_t kStaleCheckMs = 5'000;
  static constexpr int64_t kStaleGraceMs = 10'000;
  static constexpr int64_t kCollectRetryMs = 30'000;
  // Registry lookups per sweep (one a second) of the reconcile pass: a pass over every session
  // at once stalled the worker (800 ms at 500,000 offline sessions per worker).
  static constexpr size_t kReconcilePerSweep = 4'096;

  void AbandonStaleExports(int64_t now_ms);
  void ReconcileWithRegistry(int64_t now_ms);
  void ReconcileSession(ClientRegistry& registry, const Session& session, int64_t now_ms);
  void AskToCollect(const std::string& client_id, const std::string& holder);
  void RegisterAfterNetsplit(const std::string& client_id);
  static OutboundMessage CollectedMessage(
      const storage::v1::MessageRecord& record, uint32_t qos, bool retain,
      const google::protobuf::RepeatedField<uint32_t>& subscription_ids);

  Session* ImportSession(const std::string& client_id, TransferredSession& imported);
  // Appends the stored queue entries of `client_id` after `after_seq` to `imported`'s queue.
  bool AppendStoredQueue(const std::string& client_id, uint64_t after_seq,
                         TransferredSession& imported);
  // Commits this turn's batch (what the turn queued so far must be in the store), then appends
  // `client_id`'s stored queue entries after `after_seq` to `out`, in order; returns the last
  // sequence number examined (at least `after_seq`).
  absl::StatusOr<uint64_t> ReadStoredQueue(const std::string& client_id, uint64_t after_seq,
                                           std::vector<storage::QueuedMessage>* out);
  void EndMovedSession(uint64_t session_id);
  void RelayMoved(const MovedSession& moved, OutboundMessage&& out);
  bool RelayQueueAfter(const std::string& client_id, uint64_t after_seq,
                       const std::string& to_node);
  void ExpireMoved(int64_t now_ms);
  void DetachAndRedistribute(Session* session);
  void DeliverLocal(Delivery&& delivery);
  void FlushOutboxes();
  void ScheduleEndOfTurn();
  void EndOfTurn();
  void DrainInbox();
  void ArmSweep();
  void Sweep();
  void UpdateGauges();
  void PublishDueWills(int64_t now_ms);
  void ExpireSessions(int64_t now_ms);

  NodeContext* const node_;
  storage::Store* const store_;  // node_->store(), asked once: it is on the delivery path
  net::IoWorker* const worker_;
  // Sessions by client id. The key is the session's own client id, so that a slot is one
  // pointer (the per-session cost of an idle connection counts).
  struct ByClientId {
    using is_transparent = void;
    static std::string_view Id(std::string_view id) { return id; }
    static std::string_view Id(const std::unique_ptr<Session>& session) {
      return session->client_id();
    }
    template <typename T>
    size_t operator()(const T& key) const {
      return absl::Hash<std::string_view>()(Id(key));
    }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return Id(a) == Id(b);
    }
  };
  // Adds `session`, replacing one with its client id.
  void PutSession(std::unique_ptr<Session> session);
  SessionTotals session_totals_;  // declared before the sessions: they report to it until gone
  absl::flat_hash_set<std::unique_ptr<Session>, ByClientId, ByClientId> sessions_;
  absl::flat_hash_map<uint64_t, Session*> sessions_by_id_;
  // Offline sessions by expiry (MonotonicMs, session id), so that ExpireSessions visits only
  // the due ones. An entry may outlive its session (a session replaced or exported); a due entry
  // is checked against the session before it ends anything.
  absl::btree_set<std::pair<int64_t, uint64_t>> expiring_;
  absl::flat_hash_map<std::string, PendingWill> pending_wills_;  // by client id
  absl::flat_hash_map<uint64_t, MovedSession> moved_;            // by the session id it had
  absl::flat_hash_map<std::string, Exporting> exporting_;        // by client id
  int64_t last_finish_ms_ = 0;  // MonotonicMs of the last FinishExport
  // Sessions kept here while the registry names another node (owner node down), by client id:
  // when to offer the copy to that node (AskToCollect) next. First after kStaleGraceMs, which
  // lets a handover in progress (the holder's own Take) end first, then every kCollectRetryMs.
  absl::flat_hash_map<std::string, int64_t> stale_copies_;
  absl::flat_hash_set<std::string> reclaiming_;  // RegisterAfterNetsplit calls in flight
  int64_t next_stale_check_ms_ = 0;
  // The reconcile pass in progress: the session ids when it began, the next to look at, and
  // the stale copies it found so far (they replace stale_copies_ when it ends).
  std::vector<uint64_t> reconcile_ids_;
  size_t reconcile_next_ = 0;
  absl::flat_hash_map<std::string, int64_t> reconcile_stale_;
  // Ids a session had here before an imported copy replaced it (ImportSession): deliveries
  // already on their way to such an id, from other workers, go to the client's session.
  struct Replaced {
    std::string client_id;
    int64_t until_ms;
  };
  absl::flat_hash_map<uint64_t, Replaced> replaced_;
  absl::flat_hash_set<std::shared_ptr<Client>> clients_;  // found by Client* too
  std::atomic<size_t> live_clients_{0};          // clients_.size(), readable from any thread
  std::vector<std::vector<Delivery>> outboxes_;  // per target worker
  bool end_of_turn_scheduled_ = false;
  storage::Batch batch_;
  absl::flat_hash_set<uint64_t> batch_messages_;  // message ids put in batch_
  std::vector<AckTokenPtr> held_tokens_;
  uint64_t next_outbox_seq_ = 1;  // recovery empties the outbox, so numbering restarts
  boost::asio::steady_timer sweep_timer_;
  WorkerCounters counters_;  // written on this worker, read anywhere (worker_counters.h)
  PublishCache publish_cache_;

  absl::Mutex inbox_mutex_;
  std::vector<Delivery> inbox_ ABSL_GUARDED_BY(inbox_mutex_);
};

}  // namespace mqtt
