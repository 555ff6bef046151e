// The part of the broker that belongs to one worker thread: its sessions (by client id), its
// live connections, delayed wills, and its inbox of messages routed to it by other workers.
//
// Threading: every method runs on the shard's worker thread, except Enqueue() and
// client_count(), which any thread may call.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "boost/asio/steady_timer.hpp"
#include "node/net/io_worker.h"
#include "node/protocol/message.h"
#include "node/protocol/packets.h"
#include "node/session/ack_token.h"
#include "node/session/session.h"
#include "storage/store.h"

namespace mqtt {

class Broker;
class Client;

struct Delivery {
  uint64_t session_id;
  OutboundMessage out;
};

class Shard {
 public:
  Shard(Broker* broker, net::IoWorker* worker);
  ~Shard();

  net::IoWorker* worker() const { return worker_; }
  uint32_t index() const { return worker_->index(); }
  Broker* broker() const { return broker_; }

  void StartTimers();
  void StopTimers();

  void AddClient(std::shared_ptr<Client> client);
  // Forgets a client; it stays alive until the end of the loop turn.
  void RemoveClient(Client* client);
  // Adopts a socket handed over by another worker after it decoded CONNECT.
  void AdoptConnection(int fd, bool is_v6, Connect connect, std::string leftover_input);
  // Closes all clients for shutdown; returns how many were open.
  size_t CloseAllClients();
  size_t client_count() const { return live_clients_.load(); }

  // Finds or creates the session for a CONNECT on this (its home) worker, taking over from a
  // connected client with the same id [MQTT-3.1.4-2]. Cancels a delayed will of the session
  // when it is resumed [MQTT-3.1.3-9]. Sets *session_present.
  Session* OpenSession(const std::string& client_id, bool clean_start, bool* session_present);
  // The client of `session` went away: ends the session if it ends with its connection.
  void SessionDetached(Session* session);
  // Ends a session: publishes its delayed will, removes its subscriptions, forgets it.
  void DestroySession(Session* session);

  // Publishes `will` when the delay passes or the session ends, whichever is first, unless the
  // session is resumed before.
  void DelayWill(const std::string& client_id, MessagePtr will, uint32_t delay_seconds);

  // Delivers to a session of this shard, or queues for another worker's shard.
  void Deliver(uint32_t worker, uint64_t session_id, OutboundMessage&& out);

  // Called by other workers (any thread) with a batch for this shard.
  void Enqueue(std::vector<Delivery>* batch);

  // --- Persistence. All null/no-ops when the broker runs without a store. ---
  storage::Store* store() const;
  // The storage batch of this loop turn. It is written at the end of the turn, before messages
  // go to other workers and before any output is written, so nothing leaves the node that a
  // crash could take back.
  storage::Batch* batch();
  // Puts `message` in this turn's batch unless already there; returns its stored id.
  uint64_t PutMessage(const Message& message);
  // Keeps `token` until this turn's batch is written.
  void HoldUntilCommitted(AckTokenPtr token);
  // Writes the batch now (a reader is about to need what it holds). False on a storage error.
  bool CommitNow();
  // Cross-worker durability: a QoS 1/2 message for a persistent session on another worker is
  // written to this worker's outbox (a queue in the store) in this turn's batch, together with
  // the publisher's state; the receiving worker removes the entry in the batch that stores the
  // message for the session. Sets out.outbox_seq/outbox_worker.
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

  void DetachAndRedistribute(Session* session);
  void DeliverLocal(Delivery&& delivery);
  void FlushOutboxes();
  void ScheduleEndOfTurn();
  void EndOfTurn();
  void DrainInbox();
  void ArmSweep();
  void Sweep();
  void PublishDueWills(int64_t now_ms);
  void ExpireSessions(int64_t now_ms);

  Broker* const broker_;
  net::IoWorker* const worker_;
  absl::flat_hash_map<std::string, std::unique_ptr<Session>> sessions_;
  absl::flat_hash_map<uint64_t, Session*> sessions_by_id_;
  absl::flat_hash_map<std::string, PendingWill> pending_wills_;  // by client id
  absl::flat_hash_map<Client*, std::shared_ptr<Client>> clients_;
  std::atomic<size_t> live_clients_{0};          // clients_.size(), readable from any thread
  std::vector<std::vector<Delivery>> outboxes_;  // per target worker
  bool end_of_turn_scheduled_ = false;
  storage::Batch batch_;
  absl::flat_hash_set<uint64_t> batch_messages_;  // message ids put in batch_
  std::vector<AckTokenPtr> held_tokens_;
  uint64_t next_outbox_seq_ = 1;  // recovery empties the outbox, so numbering restarts
  boost::asio::steady_timer sweep_timer_;

  std::mutex inbox_mutex_;
  std::vector<Delivery> inbox_;  // guarded by inbox_mutex_
};

}  // namespace mqtt
