#include "node/session/shard.h"

#include "node/base/log.h"
#include "node/protocol/reason_codes.h"
#include "node/session/broker.h"
#include "node/session/client.h"

namespace mqtt {

Shard::Shard(Broker* broker, net::IoWorker* worker)
    : broker_(broker),
      worker_(worker),
      outboxes_(broker->worker_count()),
      sweep_timer_(worker->io()) {}

Shard::~Shard() = default;

void Shard::StartTimers() { ArmSweep(); }

void Shard::StopTimers() { sweep_timer_.cancel(); }

void Shard::AddClient(std::shared_ptr<Client> client) {
  Client* key = client.get();
  clients_.emplace(key, std::move(client));
  live_clients_.store(clients_.size());
}

// The client may be running one of its own methods: keep it alive until the end of the turn.
void Shard::RemoveClient(Client* client) {
  auto it = clients_.find(client);
  if (it == clients_.end()) return;
  worker_->AtEndOfTurn([doomed = std::move(it->second)] {});
  clients_.erase(it);
  live_clients_.store(clients_.size());
}

void Shard::AdoptConnection(int fd, bool is_v6, Connect connect, std::string leftover_input) {
  boost::asio::ip::tcp::socket socket(worker_->io());
  boost::system::error_code ec;
  socket.assign(is_v6 ? boost::asio::ip::tcp::v6() : boost::asio::ip::tcp::v4(), fd, ec);
  if (ec) {
    MQTT_LOG_WARN("adopting a connection failed: %s", ec.message());
    ::close(fd);
    return;
  }
  auto client = std::make_shared<Client>(this, std::move(socket));
  AddClient(client);
  client->ResumeConnect(std::move(connect), std::move(leftover_input));
}

size_t Shard::CloseAllClients() {
  std::vector<std::shared_ptr<Client>> all;
  for (auto& [key, client] : clients_) all.push_back(client);
  for (auto& client : all) client->Disconnect(rc::kServerShuttingDown);
  return all.size();
}

Session* Shard::OpenSession(const std::string& client_id, bool clean_start,
                            bool* session_present) {
  *session_present = false;
  auto it = sessions_.find(client_id);
  if (it != sessions_.end()) {
    Session* session = it->second.get();
    if (Client* previous = session->client()) {
      MQTT_LOG_INFO("client %s: session taken over by a new connection", client_id);
      previous->DetachSession();
      session->Detach();
      previous->Disconnect(rc::kSessionTakenOver);  // [MQTT-3.1.4-2]
    }
    if (!clean_start && !session->clean()) {
      *session_present = true;
      return session;
    }
    DestroySession(session);
  }
  auto session = std::make_unique<Session>(client_id, broker_->NewSessionId(),
                                           broker_->options().session_limits);
  Session* raw = session.get();
  sessions_by_id_[raw->id()] = raw;
  sessions_[client_id] = std::move(session);
  return raw;
}

void Shard::DestroySession(Session* session) {
  for (const auto& [filter, options] : session->subscriptions()) {
    broker_->RemoveSubscription(filter, session->id());
  }
  sessions_by_id_.erase(session->id());
  sessions_.erase(session->client_id());  // destroys *session
}

void Shard::Deliver(uint32_t worker, uint64_t session_id, const MessagePtr& message, uint8_t qos,
                    bool retain) {
  if (worker == index()) {
    DeliverLocal({session_id, message, qos, retain});
    return;
  }
  outboxes_[worker].push_back({session_id, message, qos, retain});
  if (!outbox_flush_scheduled_) {
    outbox_flush_scheduled_ = true;
    worker_->AtEndOfTurn([this] { FlushOutboxes(); });
  }
}

void Shard::DeliverLocal(const Delivery& delivery) {
  auto it = sessions_by_id_.find(delivery.session_id);
  if (it == sessions_by_id_.end()) return;  // the session ended while the message travelled
  it->second->Deliver(delivery.message, delivery.qos, delivery.retain);
}

void Shard::FlushOutboxes() {
  outbox_flush_scheduled_ = false;
  for (size_t target = 0; target < outboxes_.size(); ++target) {
    if (!outboxes_[target].empty()) broker_->shard(target).Enqueue(&outboxes_[target]);
  }
}

void Shard::Enqueue(std::vector<Delivery>* batch) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    wake = inbox_.empty();
    if (wake) {
      inbox_.swap(*batch);
    } else {
      inbox_.insert(inbox_.end(), std::make_move_iterator(batch->begin()),
                    std::make_move_iterator(batch->end()));
    }
  }
  batch->clear();
  if (wake) worker_->Post([this] { DrainInbox(); });
}

void Shard::DrainInbox() {
  std::vector<Delivery> batch;
  {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    batch.swap(inbox_);
  }
  for (const Delivery& delivery : batch) DeliverLocal(delivery);
}

void Shard::ArmSweep() {
  sweep_timer_.expires_after(std::chrono::seconds(1));
  sweep_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    Sweep();
    ArmSweep();
  });
}

// Two passes: timing out a client may close it and change clients_.
void Shard::Sweep() {
  auto now = std::chrono::steady_clock::now();
  std::vector<std::shared_ptr<Client>> expired;
  for (auto& [key, client] : clients_) {
    if (client->TimedOut(now)) expired.push_back(client);
  }
  for (auto& client : expired) client->OnTimeout();
}

}  // namespace mqtt
