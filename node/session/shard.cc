// SPDX-License-Identifier: Apache-2.0
#include "node/session/shard.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "node/base/log.h"
#include "node/persist/convert.h"
#include "node/protocol/reason_codes.h"
#include "node/router/shared_subscriptions.h"
#include "node/session/remote.h"

namespace mqtt {

Shard::Shard(NodeContext* node, net::IoWorker* worker)
    : node_(node),
      store_(node->store()),
      worker_(worker),
      outboxes_(node->worker_count()),
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

void Shard::HandOver(uint32_t home, std::shared_ptr<net::DetachedTransport> transport,
                     Connect connect, std::string leftover_input) {
  struct Moving {
    std::shared_ptr<net::DetachedTransport> transport;
    Connect connect;
    std::string leftover;
  };
  auto moving = std::make_shared<Moving>(
      Moving{std::move(transport), std::move(connect), std::move(leftover_input)});
  Shard* target = &node_->shard(home);
  auto adopt = [target, moving](ClaimResult claim) {
    target->worker()->Post([target, moving, claim = std::move(claim)]() mutable {
      target->AdoptConnection(std::move(moving->transport), std::move(moving->connect),
                              std::move(moving->leftover), std::move(claim));
    });
  };
  ClientRegistry* registry = node_->client_registry();
  if (registry == nullptr) return adopt(ClaimResult{});
  registry->Claim(moving->connect.client_id, [adopt](absl::StatusOr<uint64_t> epoch) {
    adopt(ClaimResult{epoch.status(), epoch.value_or(0)});
  });
}

void Shard::AdoptConnection(std::shared_ptr<net::DetachedTransport> detached, Connect connect,
                            std::string leftover_input, ClaimResult claim) {
  std::shared_ptr<net::Transport> transport = detached->Attach(worker_);
  if (transport == nullptr) return;  // logged by the transport; the connection is closed
  auto client = std::make_shared<Client>(this, std::move(transport));
  AddClient(client);
  client->ResumeConnect(std::move(connect), std::move(leftover_input), std::move(claim));
}

void Shard::ClaimedElsewhere(const std::string& client_id, uint64_t epoch) {
  Session* session = FindSession(client_id);
  if (session == nullptr || session->claim_epoch() >= epoch) return;
  SessionClient* client = session->client();
  // An offline persistent session stays here for now (its handover is issue 12's next step).
  if (client == nullptr) return;
  MQTT_LOG_INFO("client %s: session taken over by a connection on another node", client_id);
  client->TakenOver(/*resumed=*/false);
  session->set_claim_epoch(0);  // the registry names the other node now: nothing to release
  SessionDetached(session);
}

std::vector<SessionInfo> Shard::ListSessions(const SessionFilter& filter) {
  std::vector<Session*> found;
  if (!filter.client_id.empty()) {
    if (Session* session = FindSession(filter.client_id)) found.push_back(session);
  } else {
    found.reserve(sessions_.size());
    for (const auto& [client_id, session] : sessions_) found.push_back(session.get());
  }
  if (filter.limit != 0 && found.size() > filter.limit) {
    auto by_id = [](Session* a, Session* b) { return a->client_id() < b->client_id(); };
    std::nth_element(found.begin(), found.begin() + filter.limit, found.end(), by_id);
    found.resize(filter.limit);
  }
  std::vector<SessionInfo> infos;
  infos.reserve(found.size());
  for (Session* s : found) {
    infos.push_back({s->client_id(), s->client() != nullptr, static_cast<uint8_t>(s->version()),
                     !s->ends_with_connection(), static_cast<uint32_t>(s->subscriptions().size()),
                     s->inflight_count(), s->queued_count() + s->disk_queued_count(),
                     s->expiry_interval(), s->claim_epoch()});
  }
  return infos;
}

bool Shard::Kick(const std::string& client_id, uint8_t reason) {
  Session* session = FindSession(client_id);
  if (session == nullptr || session->client() == nullptr) return false;
  // Every SessionClient a shard attaches is one of its Clients.
  auto it = clients_.find(dynamic_cast<Client*>(session->client()));
  if (it == clients_.end()) return false;
  MQTT_LOG_INFO("client %s: disconnected by an administrator (reason 0x%02x)", client_id,
                static_cast<int>(reason));
  // Disconnect detaches the session (a clean one ends) and may remove the client from clients_.
  std::shared_ptr<Client> client = it->second;
  client->Disconnect(reason);
  return true;
}

size_t Shard::CloseAllClients() {
  std::vector<std::shared_ptr<Client>> all;
  for (auto& [key, client] : clients_) all.push_back(client);
  for (auto& client : all) client->Disconnect(rc::kServerShuttingDown);
  return all.size();
}

Session* Shard::OpenSession(const std::string& client_id, bool clean_start, uint64_t claim_epoch,
                            bool* session_present) {
  *session_present = false;
  auto it = sessions_.find(client_id);
  if (claim_epoch != 0) {
    const bool newer_here = it != sessions_.end() && it->second->client() != nullptr &&
                            it->second->claim_epoch() > claim_epoch;
    if (newer_here || !node_->client_registry()->StillHolds(client_id, claim_epoch)) {
      return nullptr;
    }
  }
  if (it != sessions_.end()) {
    Session* session = it->second.get();
    const bool resume = !clean_start && !session->ends_with_connection();
    if (SessionClient* previous = session->client()) {
      MQTT_LOG_INFO("client %s: session taken over by a new connection", client_id);
      previous->TakenOver(resume);
      // A resumed session keeps its unacknowledged messages for the new connection.
      if (resume) {
        session->Detach(nullptr);
      } else {
        DetachAndRedistribute(session);
      }
    }
    if (resume) {
      pending_wills_.erase(client_id);  // resumed in time: no will [MQTT-3.1.3-9]
      *session_present = true;
      return session;
    }
    session->set_claim_epoch(0);  // the new claim replaced it in the registry: nothing to release
    DestroySession(session);
  }
  auto session = std::make_unique<Session>(this, client_id, node_->NewSessionId(),
                                           node_->options().session_limits);
  Session* raw = session.get();
  sessions_by_id_[raw->id()] = raw;
  sessions_[client_id] = std::move(session);
  return raw;
}

void Shard::SessionDetached(Session* session) {
  DetachAndRedistribute(session);
  if (session->ends_with_connection()) {
    DestroySession(session);
  } else {
    session->SaveRecord(nullptr);  // now with its expiry deadline, and no will
  }
}

// Detaches and hands unacknowledged shared-subscription messages to other group members.
void Shard::DetachAndRedistribute(Session* session) {
  session->Detach([this](const OutboundMessage& out, uint64_t from_session) {
    return node_->Redistribute(index(), out, from_session);
  });
}

void Shard::DestroySession(Session* session) {
  auto will = pending_wills_.find(session->client_id());
  if (will != pending_wills_.end()) {
    MessagePtr message = std::move(will->second.message);
    pending_wills_.erase(will);
    node_->Publish(index(), std::move(message), nullptr);  // the session ends first [MQTT-3.1.3-9]
  }
  for (const auto& [filter, options] : session->subscriptions()) {
    node_->router().Unsubscribe(filter, session->id());
  }
  if (ClientRegistry* registry = node_->client_registry();
      registry != nullptr && session->claim_epoch() != 0) {
    registry->Release(session->client_id(), session->claim_epoch());
  }
  session->Forget();
  sessions_by_id_.erase(session->id());
  sessions_.erase(session->client_id());  // destroys *session
}

Session* Shard::RestoreSession(const storage::SessionState& state) {
  const std::string& client_id = state.record.client_id();
  auto session = std::make_unique<Session>(this, client_id, node_->NewSessionId(),
                                           node_->options().session_limits);
  Session* raw = session.get();
  raw->Restore(state);
  // A stored will is published by the broker after recovery; forget it so that a second crash
  // does not publish it again.
  if (state.record.has_will()) raw->SaveRecord(nullptr);
  for (const auto& [filter, options] : raw->subscriptions()) {
    node_->router().Subscribe(
        filter,
        Subscriber{raw->id(), index(), options.qos, options.no_local, options.retain_as_published,
                   options.subscription_id, raw->durable_client_id()},
        ParseSharedFilter(filter).value_or(std::nullopt).has_value() ? raw->online_flag()
                                                                     : nullptr);
  }
  sessions_by_id_[raw->id()] = raw;
  sessions_[client_id] = std::move(session);
  return raw;
}

void Shard::DelayWill(const std::string& client_id, MessagePtr will, uint32_t delay_seconds) {
  pending_wills_[client_id] = {std::move(will), MonotonicMs() + int64_t{delay_seconds} * 1000};
}

void Shard::Deliver(uint32_t worker, uint64_t session_id, OutboundMessage&& out) {
  if (worker == index()) {
    DeliverLocal({session_id, std::move(out)});
    return;
  }
  outboxes_[worker].push_back({session_id, std::move(out)});
  ScheduleEndOfTurn();
}

void Shard::ScheduleEndOfTurn() {
  if (end_of_turn_scheduled_) return;
  end_of_turn_scheduled_ = true;
  worker_->AtEndOfTurn([this] { EndOfTurn(); });
}

// Storage first: a message handed to another worker, or a PUBREC written to a publisher, must
// not depend on state a crash could still lose.
void Shard::EndOfTurn() {
  end_of_turn_scheduled_ = false;
  CommitNow();
  FlushOutboxes();
}

storage::Store* Shard::store() const { return store_; }

storage::Batch* Shard::batch() {
  if (store() == nullptr) return nullptr;
  ScheduleEndOfTurn();
  return &batch_;
}

uint64_t Shard::PutMessage(const Message& message) {
  uint64_t id = message.stored_id.value.load();
  if (id == 0) {
    absl::StatusOr<uint64_t> fresh = store()->NewMessageId();
    if (!fresh.ok()) {
      node_->StorageFailed(fresh.status());
      return 0;
    }
    uint64_t expected = 0;
    id = message.stored_id.value.compare_exchange_strong(expected, *fresh) ? *fresh : expected;
  }
  if (batch_messages_.insert(id).second) batch()->PutMessage(id, persist::ToStored(message));
  return id;
}

void Shard::HoldUntilCommitted(AckTokenPtr token) {
  if (token == nullptr || store() == nullptr) return;
  held_tokens_.push_back(std::move(token));
  ScheduleEndOfTurn();
}

bool Shard::CommitNow() {
  if (store() == nullptr) return true;
  bool ok = true;
  if (!batch_.empty()) {
    absl::Status status = store()->Write(std::move(batch_));
    batch_.Clear();
    if (!status.ok()) {
      node_->StorageFailed(status);
      ok = false;
    }
  }
  batch_messages_.clear();
  // Released tokens let publishers' acknowledgements go; after a failed write they must not.
  if (!ok) {
    for (AckTokenPtr& token : held_tokens_) token->Cancel();
  }
  held_tokens_.clear();
  return ok;
}

void Shard::DeliverLocal(Delivery&& delivery) {
  const uint64_t outbox_seq = delivery.out.outbox_seq;
  const uint32_t outbox_worker = delivery.out.outbox_worker;
  auto it = sessions_by_id_.find(delivery.session_id);
  // (A session that ended while the message travelled gets nothing.)
  if (it != sessions_by_id_.end()) it->second->Deliver(std::move(delivery.out));
  // In the batch that stored the message for the session, after it: the outbox entry's
  // reference must not be the last one before the session's is added.
  if (outbox_seq != 0) batch()->RemoveQueueEntry(OutboxId(outbox_worker), outbox_seq);
}

void Shard::StageInOutbox(OutboundMessage& out, const std::string& target_client_id) {
  if (store() == nullptr) return;
  storage::v1::QueueEntry entry;
  entry.set_message_id(PutMessage(*out.message));
  entry.set_qos(out.qos);
  entry.set_retain(out.retain);
  for (uint32_t id : out.subscription_ids) entry.add_subscription_identifiers(id);
  entry.set_target_client_id(target_client_id);
  out.outbox_seq = next_outbox_seq_++;
  out.outbox_worker = index();
  batch()->AddQueueEntry(OutboxId(index()), out.outbox_seq, entry);
  HoldUntilCommitted(out.ack);
}

// 0xFF never occurs in UTF-8, so no client id can collide with an outbox.
std::string Shard::OutboxId(uint32_t worker) {
  return absl::StrCat(
      "\xff"
      "outbox-",
      worker);
}

Session* Shard::FindSession(const std::string& client_id) {
  auto it = sessions_.find(client_id);
  return it == sessions_.end() ? nullptr : it->second.get();
}

void Shard::FlushOutboxes() {
  for (size_t target = 0; target < outboxes_.size(); ++target) {
    if (!outboxes_[target].empty()) node_->shard(target).Enqueue(&outboxes_[target]);
  }
}

void Shard::Enqueue(std::vector<Delivery>* batch) {
  bool wake;
  {
    absl::MutexLock lock(&inbox_mutex_);
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
    absl::MutexLock lock(&inbox_mutex_);
    batch.swap(inbox_);
  }
  for (Delivery& delivery : batch) DeliverLocal(std::move(delivery));
}

void Shard::ArmSweep() {
  sweep_timer_.expires_after(std::chrono::seconds(1));
  sweep_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    Sweep();
    ArmSweep();
  });
}

void Shard::Sweep() {
  auto now = std::chrono::steady_clock::now();
  // Two passes: timing out a client may close it and change clients_.
  std::vector<std::shared_ptr<Client>> expired;
  for (auto& [key, client] : clients_) {
    if (client->TimedOut(now)) expired.push_back(client);
  }
  for (auto& client : expired) client->OnTimeout();
  int64_t now_ms = MonotonicMs();
  PublishDueWills(now_ms);
  ExpireSessions(now_ms);
}

void Shard::PublishDueWills(int64_t now_ms) {
  std::vector<MessagePtr> due;
  for (auto it = pending_wills_.begin(); it != pending_wills_.end();) {
    if (it->second.due_ms <= now_ms) {
      due.push_back(std::move(it->second.message));
      pending_wills_.erase(it++);
    } else {
      ++it;
    }
  }
  for (MessagePtr& will : due) node_->Publish(index(), std::move(will), nullptr);
}

// Offline sessions past their 5.0 Session Expiry Interval end [MQTT-3.1.2-23].
void Shard::ExpireSessions(int64_t now_ms) {
  std::vector<Session*> expired;
  for (auto& [id, session] : sessions_by_id_) {
    if (session->client() == nullptr && session->expires_at_ms() != 0 &&
        session->expires_at_ms() <= now_ms) {
      expired.push_back(session);
    }
  }
  for (Session* session : expired) {
    MQTT_LOG_DEBUG("session %s expired", session->client_id());
    DestroySession(session);
  }
}

}  // namespace mqtt
