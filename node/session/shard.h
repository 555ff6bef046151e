// The part of the broker that belongs to one worker thread: its sessions (by client id), its
// live connections, and its inbox of messages routed to it by other workers.
//
// Threading: every method runs on the shard's worker thread, except Enqueue(), which any
// worker calls to hand over a batch of deliveries.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "boost/asio/steady_timer.hpp"
#include "node/net/io_worker.h"
#include "node/protocol/message.h"
#include "node/protocol/packets.h"
#include "node/session/session.h"

namespace mqtt {

class Broker;
class Client;

struct Delivery {
  uint64_t session_id;
  MessagePtr message;
  uint8_t qos;
  bool retain;
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
  // Adopts a socket handed over by another worker after it decoded CONNECT.
  void AdoptConnection(int fd, bool is_v6, Connect connect, std::string leftover_input);
  void RemoveClient(Client* client);
  // Closes all clients for shutdown; returns how many were open.
  size_t CloseAllClients();
  size_t client_count() const { return live_clients_.load(); }

  // Finds or creates the session for a CONNECT on this (its home) worker, taking over from a
  // connected client with the same id [MQTT-3.1.4-2]. Sets *session_present.
  Session* OpenSession(const std::string& client_id, bool clean_start, bool* session_present);
  // Ends a session: removes its subscriptions from the trie and forgets it.
  void DestroySession(Session* session);

  // Delivers to a session of this shard, or queues for another worker's shard.
  void Deliver(uint32_t worker, uint64_t session_id, const MessagePtr& message, uint8_t qos,
               bool retain);

  // Called by other workers (any thread) with a batch for this shard.
  void Enqueue(std::vector<Delivery>* batch);

 private:
  void DeliverLocal(const Delivery& delivery);
  void FlushOutboxes();
  void DrainInbox();
  void ArmSweep();
  void Sweep();

  Broker* const broker_;
  net::IoWorker* const worker_;
  absl::flat_hash_map<std::string, std::unique_ptr<Session>> sessions_;
  absl::flat_hash_map<uint64_t, Session*> sessions_by_id_;
  absl::flat_hash_map<Client*, std::shared_ptr<Client>> clients_;
  std::atomic<size_t> live_clients_{0};  // clients_.size(), readable from any thread
  std::vector<std::vector<Delivery>> outboxes_;  // per target worker
  bool outbox_flush_scheduled_ = false;
  boost::asio::steady_timer sweep_timer_;

  std::mutex inbox_mutex_;
  std::vector<Delivery> inbox_;  // guarded by inbox_mutex_
};

}  // namespace mqtt
