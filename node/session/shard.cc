// SPDX-License-Identifier: Apache-2.0
#include "node/session/shard.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "node/base/log.h"
#include "node/persist/convert.h"
#include "node/protocol/reason_codes.h"
#include "node/router/shared_subscriptions.h"
#include "node/session/import_gate.h"
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
  clients_.insert(std::move(client));
  live_clients_.store(clients_.size());
}

// The client may be running one of its own methods: keep it alive until the end of the turn.
void Shard::RemoveClient(Client* client) {
  auto it = clients_.find(client);
  if (it == clients_.end()) return;
  worker_->AtEndOfTurn([doomed = *it] {});
  clients_.erase(it);
  live_clients_.store(clients_.size());
}

void Shard::HandOver(uint32_t home, std::shared_ptr<net::DetachedTransport> transport,
                     Connect connect, std::string leftover_input) {
  struct Moving {
    std::shared_ptr<net::DetachedTransport> transport;
    Connect connect;
    std::string leftover;
    uint64_t import_ticket = 0;  // ImportGate, in a cluster
  };
  auto moving = std::make_shared<Moving>(
      Moving{std::move(transport), std::move(connect), std::move(leftover_input)});
  Shard* target = &node_->shard(home);
  auto adopt = [target, moving](ClaimResult claim,
                                std::shared_ptr<TransferredSession> imported = nullptr,
                                std::string from_node = {}) {
    target->worker()->Post([target, moving, claim = std::move(claim), imported,
                            from_node = std::move(from_node)]() mutable {
      target->AdoptConnection(std::move(moving->transport), std::move(moving->connect),
                              std::move(moving->leftover), std::move(claim), moving->import_ticket,
                              std::move(imported), std::move(from_node));
    });
  };
  ClientRegistry* registry = node_->client_registry();
  if (registry == nullptr) return adopt(ClaimResult{});
  SessionMover* mover = node_->session_mover();
  ImportGate* gate = &node_->import_gate();
  moving->import_ticket = gate->Open(moving->connect.client_id);
  registry->Claim(moving->connect.client_id, [adopt, mover, gate,
                                              moving](absl::StatusOr<Claimed> claimed) {
    if (!claimed.ok()) return adopt(ClaimResult{claimed.status(), 0});
    const ClaimResult claim{absl::OkStatus(), claimed->epoch};
    const std::string& client_id = moving->connect.client_id;
    if (claimed->previous_node.empty() || mover == nullptr) {
      // This node held the id already: a session another claim is fetching here comes first.
      return gate->WhenSettled(client_id, {{}, moving->import_ticket},
                               [adopt, claim] { adopt(claim); });
    }
    // The previous holder is another node: its session comes here before the CONNACK.
    gate->Fetching(client_id, moving->import_ticket, claimed->previous_node);
    mover->Fetch(
        client_id, claimed->epoch, claimed->previous_node, moving->connect.clean_start,
        [adopt, claim, client_id,
         from = claimed->previous_node](absl::StatusOr<std::optional<TransferredSession>> fetched) {
          if (!fetched.ok()) {
            // docs/cluster-sessions.md, "Owner node down": a new session now.
            MQTT_LOG_WARN("client %s: session on node %s not reachable (%s): starting without it",
                          client_id, from, fetched.status().message());
            ClaimResult unreachable = claim;
            unreachable.owner_unreachable = true;
            return adopt(unreachable);
          }
          if (!fetched->has_value()) return adopt(claim);
          adopt(claim, std::make_shared<TransferredSession>(std::move(**fetched)), from);
        });
  });
}

void Shard::AdoptConnection(std::shared_ptr<net::DetachedTransport> detached, Connect connect,
                            std::string leftover_input, ClaimResult claim, uint64_t import_ticket,
                            std::shared_ptr<TransferredSession> imported, std::string from_node) {
  // Written here even if a newer claim replaced this one meanwhile: the connection is then
  // refused (OpenSession), and the newer claim's node takes the session from here (its Take
  // waited for this import: ImportGate).
  const bool stored = imported == nullptr || ImportSession(connect.client_id, *imported) != nullptr;
  if (imported != nullptr && stored) {
    node_->session_mover()->Finish(connect.client_id, claim.epoch, from_node);
  }
  if (import_ticket != 0) node_->import_gate().Close(connect.client_id, import_ticket);
  if (!stored) return;  // storage failed: the node stops
  std::shared_ptr<net::Transport> transport = detached->Attach(worker_);
  if (transport == nullptr) return;  // logged by the transport; the connection is closed
  auto client = std::make_shared<Client>(this, std::move(transport));
  AddClient(client);
  const std::string client_id = connect.client_id;
  const bool owner_unreachable = claim.owner_unreachable;
  client->ResumeConnect(std::move(connect), std::move(leftover_input), std::move(claim));
  // The old holder's copy comes later (CollectSession), with copies of messages this session
  // gets meanwhile by the routes that still lead there: QoS 2 must not arrive twice.
  Session* session = FindSession(client_id);
  if (owner_unreachable && session != nullptr && session->persistent()) {
    session->WatchDuplicates(MonotonicMs() + kOldCopyWatchMs, kOldCopyWatchIds);
  }
}

void Shard::ClaimedElsewhere(const std::string& client_id, uint64_t epoch) {
  Session* session = FindSession(client_id);
  if (session == nullptr || session->claim_epoch() >= epoch) return;
  SessionClient* client = session->client();
  // An offline copy stays until the new holder takes it, or collects it (ReconcileWithRegistry).
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
    for (const auto& session : sessions_) found.push_back(session.get());
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
  std::shared_ptr<Client> client = *it;
  client->Disconnect(reason);
  return true;
}

size_t Shard::Shed(size_t count) {
  std::vector<std::shared_ptr<Client>> chosen;
  for (const auto& session : sessions_) {
    if (chosen.size() == count) break;
    auto it = clients_.find(dynamic_cast<Client*>(session->client()));
    if (session->client() != nullptr && it != clients_.end()) chosen.push_back(*it);
  }
  const std::string& reference = node_->options().server_reference;
  const uint8_t reason = reference.empty() ? rc::kServerShuttingDown : rc::kUseAnotherServer;
  for (auto& client : chosen) client->Disconnect(reason, reference);
  return chosen.size();
}

size_t Shard::CloseAllClients() {
  const std::string& reference = node_->options().server_reference;
  const uint8_t reason = reference.empty() ? rc::kServerShuttingDown : rc::kUseAnotherServer;
  std::vector<std::shared_ptr<Client>> all;
  for (const auto& client : clients_) all.push_back(client);
  for (auto& client : all) client->Disconnect(reason, reference);
  return all.size();
}

Session* Shard::OpenSession(const std::string& client_id, bool clean_start, uint64_t claim_epoch,
                            bool* session_present) {
  *session_present = false;
  auto it = sessions_.find(std::string_view(client_id));
  if (claim_epoch != 0) {
    const bool newer_here =
        it != sessions_.end() && (*it)->client() != nullptr && (*it)->claim_epoch() > claim_epoch;
    if (newer_here || !node_->client_registry()->StillHolds(client_id, claim_epoch)) {
      return nullptr;
    }
  }
  if (it != sessions_.end()) {
    Session* session = it->get();
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
  PutSession(std::move(session));
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
  if (session->expires_at_ms() != 0) expiring_.erase({session->expires_at_ms(), session->id()});
  sessions_by_id_.erase(session->id());
  sessions_.erase(std::string_view(session->client_id()));  // destroys *session
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
  PutSession(std::move(session));
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
    if (!held_tokens_.empty()) batch_.RequireDurable();
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
  if (it != sessions_by_id_.end()) {
    it->second->Deliver(std::move(delivery.out));
  } else if (auto moved = moved_.find(delivery.session_id); moved != moved_.end()) {
    RelayMoved(moved->second, std::move(delivery.out));
  } else if (auto renamed = replaced_.find(delivery.session_id); renamed != replaced_.end()) {
    if (Session* session = FindSession(renamed->second.client_id)) {
      session->Deliver(std::move(delivery.out));
    }
  }  // (a session that ended while the message travelled gets nothing)
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
  auto it = sessions_.find(std::string_view(client_id));
  return it == sessions_.end() ? nullptr : it->get();
}

void Shard::PutSession(std::unique_ptr<Session> session) {
  auto it = sessions_.find(std::string_view(session->client_id()));
  if (it != sessions_.end()) sessions_.erase(it);
  sessions_.insert(std::move(session));
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
  for (const auto& client : clients_) {
    if (client->TimedOut(now)) expired.push_back(client);
    client->ReleaseIdleBuffers();
  }
  for (auto& client : expired) client->OnTimeout();
  publish_cache_.Release();  // the last message fanned out, and its bytes, need not stay
  int64_t now_ms = MonotonicMs();
  PublishDueWills(now_ms);
  ExpireSessions(now_ms);
  ExpireMoved(now_ms);
  AbandonStaleExports(now_ms);
  ReconcileWithRegistry(now_ms);
  UpdateGauges();
}

// Once a second, from the totals the sessions keep (SessionTotals).
void Shard::UpdateGauges() {
  WorkerCounters::SessionGauges g;
  g.sessions = sessions_.size();
  g.queued = static_cast<uint64_t>(std::max<int64_t>(session_totals_.queued, 0));
  g.inflight = static_cast<uint64_t>(std::max<int64_t>(session_totals_.inflight, 0));
  counters_.SetSessionGauges(g);
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

void Shard::ExpiryChanged(uint64_t session_id, int64_t old_ms, int64_t new_ms) {
  if (old_ms != 0) expiring_.erase({old_ms, session_id});
  if (new_ms != 0) expiring_.insert({new_ms, session_id});
}

// Offline sessions past their 5.0 Session Expiry Interval end [MQTT-3.1.2-23].
void Shard::ExpireSessions(int64_t now_ms) {
  std::vector<uint64_t> due;
  auto it = expiring_.begin();
  for (; it != expiring_.end() && it->first <= now_ms; ++it) due.push_back(it->second);
  expiring_.erase(expiring_.begin(), it);
  for (uint64_t id : due) {
    auto found = sessions_by_id_.find(id);
    if (found == sessions_by_id_.end()) continue;
    Session* session = found->second;
    if (session->client() != nullptr || session->expires_at_ms() == 0 ||
        session->expires_at_ms() > now_ms) {
      continue;  // reconnected, or a later expiry has its own entry
    }
    MQTT_LOG_DEBUG("session %s expired", session->client_id());
    DestroySession(session);
  }
}

// --- Handover (docs/cluster-sessions.md, "Handover") ---

absl::StatusOr<std::optional<TransferredSession>> Shard::ExportSession(const std::string& client_id,
                                                                       uint64_t epoch,
                                                                       const std::string& to_node,
                                                                       bool discard) {
  Session* session = FindSession(client_id);
  if (session == nullptr) return std::nullopt;
  if (session->claim_epoch() > epoch) {
    return absl::FailedPreconditionError("a newer connection holds the session here");
  }
  const bool resume = !discard && session->persistent();
  if (SessionClient* client = session->client()) {
    MQTT_LOG_INFO("client %s: session taken over by a connection on node %s", client_id, to_node);
    client->TakenOver(resume);
    session->set_claim_epoch(0);  // the registry names the other node now: nothing to release
    SessionDetached(session);     // a clean session ends here
    session = FindSession(client_id);
    if (session == nullptr) return std::nullopt;
  }
  session->set_claim_epoch(0);
  if (!resume) {
    DestroySession(session);
    return std::nullopt;
  }
  pending_wills_.erase(client_id);  // the session goes on elsewhere: no will [MQTT-3.1.3-9]
  if (!CommitNow()) return absl::UnavailableError("storage failed");
  absl::StatusOr<storage::SessionState> state = store()->LoadSession(client_id);
  if (!state.ok()) return state.status();
  TransferredSession exported{std::move(*state), {}};
  absl::StatusOr<uint64_t> last_seq = ReadStoredQueue(client_id, 0, &exported.queue);
  if (!last_seq.ok()) return last_seq.status();
  exporting_[client_id] = Exporting{to_node, epoch, *last_seq, MonotonicMs()};
  MQTT_LOG_INFO("client %s: session (%d queued, %d in flight) handed to node %s", client_id,
                exported.queue.size(), exported.state.inflight.size(), to_node);
  return exported;
}

void Shard::FinishExport(const std::string& client_id, uint64_t epoch) {
  auto it = exporting_.find(client_id);
  if (it == exporting_.end() || it->second.epoch != epoch) return;
  const Exporting exported = std::move(it->second);
  exporting_.erase(it);
  last_finish_ms_ = MonotonicMs();
  Session* session = FindSession(client_id);
  if (session == nullptr || session->client() != nullptr) return;  // ended, or back here
  // What was queued after the copy goes to the new holder, in the batch that deletes the copy.
  if (!RelayQueueAfter(client_id, exported.last_seq, exported.to_node)) return;
  MovedSession moved{client_id, exported.to_node, MonotonicMs() + kMovedRelayMs, {}};
  for (const auto& [filter, options] : session->subscriptions()) moved.filters.push_back(filter);
  const uint64_t id = session->id();
  session->Forget();
  sessions_by_id_.erase(id);
  sessions_.erase(std::string_view(client_id));  // destroys *session; its router entries stay
  moved_[id] = std::move(moved);
}

// An export the taker never finished (it failed to write, or its Finish was lost): the copy
// stays here as a stale one (ReconcileWithRegistry), rather than waiting for a Finish forever.
void Shard::AbandonStaleExports(int64_t now_ms) {
  absl::erase_if(exporting_, [now_ms](const auto& entry) {
    if (entry.second.started_ms + kExportAbandonMs > now_ms) return false;
    MQTT_LOG_WARN("client %s: node %s never finished taking the session: keeping it here",
                  entry.first, entry.second.to_node);
    return true;
  });
}

// --- Owner node down and netsplit heal, as this node sees the registry (docs/cluster-sessions.md)
//
// A pass over the sessions every kStaleCheckMs, kReconcilePerSweep of them per sweep: a
// connection let in unregistered registers (RegisterAfterNetsplit), and an offline copy of a
// session whose client id the registry gives to another node is offered to that node
// (AskToCollect). Sessions that arrive during a pass wait for the next one.

void Shard::ReconcileWithRegistry(int64_t now_ms) {
  ClientRegistry* registry = node_->client_registry();
  if (registry == nullptr || node_->session_mover() == nullptr) return;
  if (reconcile_ids_.empty()) {
    if (now_ms < next_stale_check_ms_) return;
    next_stale_check_ms_ = now_ms + kStaleCheckMs;
    reconcile_ids_.reserve(sessions_by_id_.size());
    for (const auto& [id, session] : sessions_by_id_) reconcile_ids_.push_back(id);
    reconcile_next_ = 0;
    reconcile_stale_.clear();
  }
  const size_t end = std::min(reconcile_ids_.size(), reconcile_next_ + kReconcilePerSweep);
  for (; reconcile_next_ < end; ++reconcile_next_) {
    auto it = sessions_by_id_.find(reconcile_ids_[reconcile_next_]);
    if (it != sessions_by_id_.end()) ReconcileSession(*registry, *it->second, now_ms);
  }
  if (reconcile_next_ < reconcile_ids_.size()) return;
  stale_copies_ = std::move(reconcile_stale_);
  reconcile_stale_.clear();
  reconcile_ids_.clear();
  reconcile_ids_.shrink_to_fit();  // 8 bytes a session, between passes
}

void Shard::ReconcileSession(ClientRegistry& registry, const Session& session, int64_t now_ms) {
  const std::string& client_id = session.client_id();
  if (session.client() != nullptr && session.claim_epoch() == 0) {
    RegisterAfterNetsplit(client_id);
    return;
  }
  if (session.client() != nullptr || !session.persistent() || exporting_.contains(client_id)) {
    return;
  }
  std::optional<ClientRegistry::Holder> holder = registry.HolderOf(client_id);
  if (!holder.has_value() || holder->here || holder->epoch <= session.claim_epoch()) return;
  auto seen = stale_copies_.find(client_id);
  int64_t next_ask_ms = seen != stale_copies_.end() ? seen->second : now_ms + kStaleGraceMs;
  if (next_ask_ms <= now_ms) {
    next_ask_ms = now_ms + kCollectRetryMs;
    AskToCollect(client_id, holder->node_id);
  }
  reconcile_stale_.emplace(client_id, next_ask_ms);
}

void Shard::AskToCollect(const std::string& client_id, const std::string& holder) {
  MQTT_LOG_INFO(
      "client %s: its session moved to node %s while this node was away: handing the "
      "copy left here over",
      client_id, holder);
  node_->session_mover()->AskToCollect(client_id, holder, [client_id, holder](absl::Status s) {
    if (!s.ok()) {
      // The copy stays here and is offered again (kCollectRetryMs).
      MQTT_LOG_INFO("client %s: node %s did not collect the session's copy: %s", client_id, holder,
                    s.message());
    }
  });
}

// A connection let in without registering (allow_register_during_netsplit, no majority): once a
// majority answers, it registers, and the node that registered the id meanwhile (on the other
// side of the partition) closes its connection; that session's copy is then collected here. The
// connection here wins because its registration is the newest.
void Shard::RegisterAfterNetsplit(const std::string& client_id) {
  if (!reclaiming_.insert(client_id).second) return;
  node_->client_registry()->Reclaim(client_id, [this, client_id](absl::StatusOr<Claimed> claim) {
    worker()->Post([this, client_id, claim = std::move(claim)] {
      reclaiming_.erase(client_id);
      if (!claim.ok()) return;  // no majority yet: tried again at the next check
      Session* session = FindSession(client_id);
      if (session == nullptr) {  // a clean session that ended meanwhile
        node_->client_registry()->Release(client_id, claim->epoch);
        return;
      }
      if (session->claim_epoch() != 0) return;  // a newer CONNECT here registered it
      session->set_claim_epoch(claim->epoch);
      MQTT_LOG_INFO("client %s: registered after the netsplit (epoch %d, previous holder: %s)",
                    client_id, claim->epoch,
                    claim->previous_node.empty() ? "none" : claim->previous_node);
    });
  });
}

std::optional<uint64_t> Shard::HeldEpoch(const std::string& client_id) {
  ClientRegistry* registry = node_->client_registry();
  if (registry == nullptr || FindSession(client_id) == nullptr) return std::nullopt;
  std::optional<ClientRegistry::Holder> holder = registry->HolderOf(client_id);
  if (!holder.has_value() || !holder->here) return std::nullopt;
  return holder->epoch;
}

absl::Status Shard::MergeCollected(const std::string& client_id, uint64_t epoch,
                                   TransferredSession& copy, const std::string& from_node) {
  Session* session = FindSession(client_id);
  if (session == nullptr) return absl::NotFoundError("the session here ended meanwhile");
  size_t merged = 0;
  // A session that ends with its connection was a clean start: the old state is discarded
  // [MQTT-3.1.2-4], and so is the copy.
  if (session->persistent()) {
    for (const storage::InflightEntry& entry : copy.state.inflight) {
      if (!entry.message) continue;  // PUBREC'd: the client has it
      session->Deliver(CollectedMessage(*entry.message, entry.record.qos(), entry.record.retain(),
                                        entry.record.subscription_identifiers()));
      ++merged;
    }
    for (const storage::QueuedMessage& queued : copy.queue) {
      session->Deliver(CollectedMessage(queued.message, queued.entry.qos(), queued.entry.retain(),
                                        queued.entry.subscription_identifiers()));
      ++merged;
    }
  }
  if (!CommitNow()) return absl::UnavailableError("storage failed");
  node_->session_mover()->Finish(client_id, epoch, from_node);
  MQTT_LOG_INFO("client %s: %d messages of the copy left on node %s %s", client_id, merged,
                from_node, session->persistent() ? "delivered to the session" : "discarded");
  return absl::OkStatus();
}

OutboundMessage Shard::CollectedMessage(
    const storage::v1::MessageRecord& record, uint32_t qos, bool retain,
    const google::protobuf::RepeatedField<uint32_t>& subscription_ids) {
  auto message = std::make_shared<Message>(*persist::FromStored(0, record));
  message->qos = static_cast<uint8_t>(qos);
  message->retain = retain;
  OutboundMessage out;
  out.message = std::move(message);
  out.qos = static_cast<uint8_t>(qos);
  out.retain = retain;
  out.subscription_ids.assign(subscription_ids.begin(), subscription_ids.end());
  return out;
}

bool Shard::RelayQueueAfter(const std::string& client_id, uint64_t after_seq,
                            const std::string& to_node) {
  std::vector<storage::QueuedMessage> queued;
  if (absl::Status s = ReadStoredQueue(client_id, after_seq, &queued).status(); !s.ok()) {
    node_->StorageFailed(s);
    return false;
  }
  for (const storage::QueuedMessage& m : queued) {
    auto message = std::make_shared<Message>(*persist::FromStored(0, m.message));
    message->qos = static_cast<uint8_t>(m.entry.qos());
    message->retain = m.entry.retain();
    const std::vector<uint32_t> ids(m.entry.subscription_identifiers().begin(),
                                    m.entry.subscription_identifiers().end());
    node_->session_mover()->Relay(*this, to_node, client_id, message, ids, nullptr);
  }
  return true;
}

void Shard::RelayMoved(const MovedSession& moved, OutboundMessage&& out) {
  SessionMover* mover = node_->session_mover();
  if (mover == nullptr) return;
  MessagePtr message = out.message;
  if (message->qos != out.qos || message->retain != out.retain) {
    auto copy = std::make_shared<Message>(*message);
    copy->qos = out.qos;
    copy->retain = out.retain;
    message = std::move(copy);
  }
  mover->Relay(*this, moved.to_node, moved.client_id, message, out.subscription_ids, out.ack);
}

void Shard::DeliverToClient(const std::string& client_id, OutboundMessage&& out) {
  if (Session* session = FindSession(client_id)) {
    session->Deliver(std::move(out));
    return;
  }
  for (const auto& [id, moved] : moved_) {
    if (moved.client_id == client_id) return RelayMoved(moved, std::move(out));
  }
  MQTT_LOG_WARN("client %s: relayed message on %s dropped: no session here", client_id,
                out.message->topic);
}

Session* Shard::ImportSession(const std::string& client_id, TransferredSession& imported) {
  // Messages on their way from other workers to the ids this client's session had here go to
  // the imported session (its own id is new).
  std::vector<uint64_t> old_ids;
  if (Session* stale = FindSession(client_id)) {
    old_ids.push_back(stale->id());
    // A copy left here: one whose export did not finish yet (the client came back quickly), or
    // one from before the client went to another node while this one was down. The session that
    // comes in is the newer one; what the copy queued and the client never got follows it
    // (docs/cluster-sessions.md "Owner node down").
    auto exporting = exporting_.find(client_id);
    const uint64_t after_seq = exporting == exporting_.end() ? 0 : exporting->second.last_seq;
    if (exporting != exporting_.end()) exporting_.erase(exporting);
    if (stale->persistent() && !AppendStoredQueue(client_id, after_seq, imported)) return nullptr;
    MQTT_LOG_INFO("client %s: local copy of the session merged into the one from another node",
                  client_id);
    stale->set_claim_epoch(0);
    if (SessionClient* client = stale->client()) {
      client->TakenOver(false);
      DetachAndRedistribute(stale);
    }
    DestroySession(stale);
  }
  std::vector<uint64_t> stubs;
  for (const auto& [id, moved] : moved_) {
    if (moved.client_id == client_id) stubs.push_back(id);
  }
  for (uint64_t id : stubs) EndMovedSession(id);
  old_ids.insert(old_ids.end(), stubs.begin(), stubs.end());

  storage::SessionState& state = imported.state;
  storage::Batch* out = batch();
  out->DeleteSession(client_id);  // whatever is left of an older copy here
  absl::Status id_error;
  auto put_message = [this, out, &id_error](const storage::v1::MessageRecord& record) {
    absl::StatusOr<uint64_t> id = store()->NewMessageId();
    if (!id.ok()) {
      id_error = id.status();
      return uint64_t{0};
    }
    out->PutMessage(*id, record);
    return *id;
  };
  for (storage::InflightEntry& entry : state.inflight) {
    entry.record.set_message_id(entry.message ? put_message(*entry.message) : 0);
    out->PutInflight(client_id, entry.seq, entry.record);
  }
  for (storage::QueuedMessage& queued : imported.queue) {
    queued.entry.set_message_id(put_message(queued.message));
    out->AddQueueEntry(client_id, queued.seq, queued.entry);
  }
  for (uint16_t packet_id : state.inbound_qos2) out->AddInboundQos2(client_id, packet_id);
  out->PutSession(state.record);
  if (!id_error.ok()) {
    batch_.Clear();
    node_->StorageFailed(id_error);
    return nullptr;
  }
  if (!CommitNow()) return nullptr;
  state.queue = store()->queue_stats(client_id);
  Session* session = RestoreSession(state);
  session->WatchDuplicates(MonotonicMs() + kMovedRelayMs + 30'000);
  for (uint64_t id : old_ids) replaced_[id] = Replaced{client_id, MonotonicMs() + 10'000};
  MQTT_LOG_INFO("client %s: session (%d queued, %d in flight) taken over from another node",
                client_id, imported.queue.size(), state.inflight.size());
  return session;
}

bool Shard::AppendStoredQueue(const std::string& client_id, uint64_t after_seq,
                              TransferredSession& imported) {
  std::vector<storage::QueuedMessage> queued;
  if (absl::Status s = ReadStoredQueue(client_id, after_seq, &queued).status(); !s.ok()) {
    node_->StorageFailed(s);
    return false;
  }
  for (storage::QueuedMessage& m : queued) {
    m.seq = imported.state.next_seq++;
    imported.queue.push_back(std::move(m));
  }
  return true;
}

absl::StatusOr<uint64_t> Shard::ReadStoredQueue(const std::string& client_id, uint64_t after_seq,
                                                std::vector<storage::QueuedMessage>* out) {
  if (!CommitNow()) return absl::UnavailableError("storage failed");
  for (bool end = false; !end;) {
    absl::StatusOr<storage::QueuePage> page =
        store()->ReadQueue(client_id, after_seq, 1024, UnixMs());
    if (!page.ok()) return page.status();
    for (storage::QueuedMessage& m : page->messages) out->push_back(std::move(m));
    after_seq = std::max(after_seq, page->last_seq);
    end = page->end || page->messages.empty();
  }
  return after_seq;
}

absl::Status Shard::AdoptSession(const std::string& client_id, uint64_t epoch,
                                 TransferredSession& imported, const std::string& from_node) {
  // A newer claim may have replaced `epoch` meanwhile: the session is written here all the same
  // (offline, holding no claim), and the newer claim's node takes it from here (ImportGate).
  const bool holds = node_->client_registry()->StillHolds(client_id, epoch);
  Session* session = ImportSession(client_id, imported);
  if (session == nullptr) return absl::UnavailableError("storage failed");
  if (holds) session->set_claim_epoch(epoch);
  node_->session_mover()->Finish(client_id, epoch, from_node);
  return absl::OkStatus();
}

SessionSource::Handovers Shard::handovers() const {
  return {exporting_.size(), moved_.size(), last_finish_ms_};
}

void Shard::EndRelays() {
  std::vector<uint64_t> ids;
  for (const auto& [id, moved] : moved_) ids.push_back(id);
  for (uint64_t id : ids) EndMovedSession(id);
}

void Shard::EndMovedSession(uint64_t session_id) {
  auto it = moved_.find(session_id);
  if (it == moved_.end()) return;
  for (const std::string& filter : it->second.filters) {
    node_->router().Unsubscribe(filter, session_id);
  }
  moved_.erase(it);
}

void Shard::ExpireMoved(int64_t now_ms) {
  std::vector<uint64_t> expired;
  for (const auto& [id, moved] : moved_) {
    if (moved.until_ms <= now_ms) expired.push_back(id);
  }
  for (uint64_t id : expired) EndMovedSession(id);
  absl::erase_if(replaced_,
                 [now_ms](const auto& entry) { return entry.second.until_ms <= now_ms; });
}

}  // namespace mqtt
