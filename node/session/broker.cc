// SPDX-License-Identifier: Apache-2.0
#include "node/session/broker.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <future>
#include <iterator>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "node/base/log.h"
#include "node/persist/convert.h"
#include "node/session/client.h"

namespace mqtt {

Broker::Broker(const BrokerOptions& options, std::vector<net::IoWorker*> workers,
               storage::Store* store)
    : options_(options), store_(store), router_(options.share_strategy) {
  // Shards size their outboxes by worker_count(), so shards_ has its final size first.
  shards_.resize(workers.size());
  for (size_t i = 0; i < workers.size(); ++i) {
    shards_[i] = std::make_unique<Shard>(this, workers[i]);
  }
}

Broker::~Broker() = default;

void Broker::Start() {
  for (auto& shard : shards_) {
    Shard* s = shard.get();
    s->worker()->Post([s] { s->StartTimers(); });
  }
  Shard* first = shards_[0].get();
  first->worker()->Post([this, first, wills = std::move(recovered_wills_)]() mutable {
    for (MessagePtr& will : wills) Publish(first->index(), std::move(will), nullptr);
  });
}

absl::Status Broker::Recover() {
  if (store_ == nullptr) return absl::OkStatus();
  const int64_t start_ms = MonotonicMs();
  absl::StatusOr<std::vector<std::string>> purged = store_->PurgeExpiredSessions(UnixMs());
  if (!purged.ok()) return purged.status();
  size_t sessions = 0;
  absl::Status status = store_->LoadSessions([&](const storage::SessionState& state) {
    Shard& home = *shards_[HomeWorker(state.record.client_id())];
    Session* session = home.RestoreSession(state);
    // A session that moved here shortly before a crash may receive a message twice after the
    // restart: once relayed by its old node, once straight from the publisher's (both waited in
    // their outboxes while this node was down), and the duplicate watch of the import was in
    // memory (found by bench/mqtt-chaos). Watch every restored session for as long.
    if (session_mover_ != nullptr) {
      session->WatchDuplicates(start_ms + Shard::kMovedRelayMs + 30'000);
    }
    ++sessions;
    // The client was connected when the node stopped: its connection ended abnormally.
    if (state.record.has_will()) {
      recovered_wills_.push_back(
          WillMessage(persist::FromRecord(state.record.will()), state.record.client_id()));
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  absl::StatusOr<uint64_t> expired_retained = store_->LoadRetained(
      UnixMs(), [this](std::string_view, const storage::v1::MessageRecord& record) {
        router_.SetRetained(persist::FromStored(0, record), /*routed_here=*/false);
        return absl::OkStatus();
      });
  if (!expired_retained.ok()) return expired_retained.status();
  if (absl::Status s = RecoverOutboxes(); !s.ok()) return s;
  // Sessions were saved with their wills: the stored copies are now taken care of.
  for (auto& shard : shards_) shard->CommitNow();
  MQTT_LOG_INFO(
      "recovered %d sessions (%d expired ones purged) and %d retained messages in %d ms (store "
      "opened in %d ms)",
      sessions, purged->size(), router_.retained_count(), MonotonicMs() - start_ms,
      store_->open_stats().micros / 1000);
  return absl::OkStatus();
}

// Entries left in workers' outboxes were durable for the publisher (acknowledged) but not yet
// stored by the receiving worker: append them to their sessions' queues now. They are a suffix
// of what that worker received from the outbox's worker, so appending keeps the order.
absl::Status Broker::RecoverOutboxes() {
  size_t recovered = 0;
  for (uint32_t worker = 0; worker < Shard::kMaxOutboxes; ++worker) {
    const std::string outbox = Shard::OutboxId(worker);
    uint64_t after = 0;
    for (;;) {
      absl::StatusOr<storage::QueuePage> page = store_->ReadQueue(outbox, after, 256, UnixMs());
      if (!page.ok()) return page.status();
      for (storage::QueuedMessage& queued : page->messages) {
        const std::string& target = queued.entry.target_client_id();
        Shard& home = *shards_[HomeWorker(target)];
        if (Session* session = home.FindSession(target); session && session->persistent()) {
          session->AppendRecovered(queued.entry.message_id(), queued.message, queued.entry);
          ++recovered;
        }
        home.batch()->RemoveQueueEntry(outbox, queued.seq);
        home.CommitNow();
      }
      after = page->last_seq;
      if (page->end) break;
    }
  }
  if (recovered > 0) MQTT_LOG_INFO("recovered %d messages from worker outboxes", recovered);
  return absl::OkStatus();
}

void Broker::StorageFailed(const absl::Status& status) {
  if (storage_failed_.exchange(true)) return;
  MQTT_LOG_ERROR("storage error, stopping the node rather than lose acknowledged state: %s",
                 status.message());
  kill(getpid(), SIGTERM);
}

const auth::AuthMethod* Broker::FindAuthMethod(std::string_view name) const {
  for (const auto& method : options_.auth_methods) {
    if (method->name() == name) return method.get();
  }
  return nullptr;
}

uint32_t Broker::HomeWorker(std::string_view client_id) const {
  return std::hash<std::string_view>()(client_id) % shards_.size();
}

// Listeners accept on the transport's own worker (net/listener.h): the client starts there and
// then; from another thread (a bridge's local side) it is posted.
void Broker::Accept(std::shared_ptr<net::Transport> transport) {
  Shard* shard = shards_[transport->worker()->index()].get();
  auto start = [shard, transport = std::move(transport)]() mutable {
    auto client = std::make_shared<Client>(shard, std::move(transport));
    shard->AddClient(client);
    client->Start();
  };
  if (shard->worker()->InThisThread()) {
    start();
  } else {
    shard->worker()->Post(std::move(start));
  }
}

void Broker::Shutdown(std::chrono::milliseconds grace) {
  shutting_down_ = true;
  for (auto& shard : shards_) {
    Shard* s = shard.get();
    s->worker()->Post([s] {
      s->StopTimers();
      s->CloseAllClients();
    });
  }
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    bool all_closed = std::all_of(shards_.begin(), shards_.end(),
                                  [](const auto& s) { return s->client_count() == 0; });
    if (all_closed) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

namespace {

// Turns the router's targets of one publish into deliveries from the publishing worker.
// `remote` null: nothing goes to other nodes (a plain copy forwarded here, or a group's copy
// that may not be passed on again). `hops`: of the group copies it sends to other nodes.
class PublishDelivery final : public RouteVisitor {
 public:
  PublishDelivery(Shard& from, const MessagePtr& message, const AckTokenPtr& ack,
                  RemoteDelivery* remote, uint32_t hops)
      : from_(from), message_(message), ack_(ack), remote_(remote), hops_(hops) {}

  void ToSession(const SessionTarget& target) override {
    OutboundMessage out{message_, target.qos, target.retain, target.shared_group, {}, 0, nullptr};
    // Most deliveries carry no subscription identifier: skip even an empty vector's copy.
    if (!target.subscription_ids.empty()) out.subscription_ids = target.subscription_ids;
    if (out.qos > 0) out.ack = ack_;
    // A persistent session on another worker: the message goes in this worker's outbox, in
    // the same batch as the publisher's own state, until that worker has stored it; unless the
    // acknowledgement it holds is all the publisher's state there is (message.h).
    const bool ack_alone = message_->ack_is_only_record && out.ack != nullptr;
    if (out.qos > 0 && target.durable_client_id != nullptr && target.worker != from_.index() &&
        !ack_alone) {
      from_.StageInOutbox(out, *target.durable_client_id);
    }
    from_.Deliver(target.worker, target.session_id, std::move(out));
  }

  void ToNode(uint32_t node, bool durable) override {
    if (remote_ == nullptr) return;
    remote_->Forward(from_, node, durable, message_, message_->qos > 0 ? ack_ : nullptr, nullptr);
  }

  void ToNodeShared(uint32_t node, bool durable, std::string_view group,
                    std::string_view filter) override {
    if (remote_ == nullptr) return;
    const SharedTarget shared{group, filter, hops_, {}, nullptr};
    remote_->Forward(from_, node, durable, message_, message_->qos > 0 ? ack_ : nullptr, &shared);
  }

 private:
  Shard& from_;
  const MessagePtr& message_;
  const AckTokenPtr& ack_;
  RemoteDelivery* const remote_;
  const uint32_t hops_;
};

}  // namespace

void Broker::Publish(uint32_t from_worker, MessagePtr message, AckTokenPtr ack) {
  Shard& from = *shards_[from_worker];
  uint64_t retained_seq = 0;
  if (message->retain && retained_ != nullptr) {
    retained_seq = retained_->PublishRetained(from, message, ack);
  } else if (message->retain) {
    retained_seq = router_.SetRetained(message);
    if (storage::Batch* batch = from.batch()) {
      if (message->payload.empty()) {
        batch->DeleteRetained(message->topic);
      } else {
        batch->PutRetained(message->topic, persist::ToStored(*message));
      }
      from.HoldUntilCommitted(ack);
    }
  }
  PublishDelivery delivery(from, message, ack, remote_, /*hops=*/0);
  router_.Route(*message, delivery, retained_seq);
}

void Broker::PublishLocal(uint32_t from_worker, MessagePtr message) {
  const uint64_t retained_seq = message->retain ? router_.SetRetained(message) : 0;
  const AckTokenPtr no_ack;
  PublishDelivery delivery(*shards_[from_worker], message, no_ack, /*remote=*/nullptr, 0);
  router_.Route(*message, delivery, retained_seq);
}

// The sender chose the groups' members: a plain copy reaches only the plain subscribers here,
// and a group's copy only one member of that group, so each message reaches exactly one member
// of a group cluster-wide (5.0 section 4.8.2).
void Broker::DeliverForwarded(uint32_t worker, const MessagePtr& message, const AckTokenPtr& ack,
                              const SharedTarget* shared) {
  Shard& shard = *shards_[worker];
  if (shared != nullptr && !shared->client_id.empty()) {
    // A copy for one session that moved here: delivered on its home worker, in the order the
    // copies arrive (posts from one worker to another run in order).
    OutboundMessage out{message, message->qos, message->retain, 0, {}, 0, ack};
    if (shared->subscription_ids != nullptr) out.subscription_ids = *shared->subscription_ids;
    Shard* home = shards_[HomeWorker(shared->client_id)].get();
    home->worker()->Post(
        [home, client_id = std::string(shared->client_id), out = std::move(out)]() mutable {
          home->DeliverToClient(client_id, std::move(out));
        });
    return;
  }
  if (shared == nullptr) {
    PublishDelivery delivery(shard, message, ack, nullptr, 0);
    // A subscription that got the replicated copy from the store does not get it again.
    router_.RouteLocal(*message, delivery, message->retain ? router_.RetainedSeqOf(*message) : 0);
    return;
  }
  // Passed on at most once: two nodes that each lost their last member cannot bounce it.
  const bool may_pass_on = shared->hops == 0 && remote_ != nullptr;
  PublishDelivery delivery(shard, message, ack, may_pass_on ? remote_ : nullptr, shared->hops + 1);
  if (!router_.RouteToGroup(*message, shared->group, shared->filter, may_pass_on, delivery)) {
    SharedCopyDropped(*message, *shared);
  }
}

// Logged at most once a second (a group emptied under load drops many at once), with the count.
void Broker::SharedCopyDropped(const Message& message, const SharedTarget& shared) {
  const uint64_t dropped = shared_dropped_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (!shared_drop_log_.Allow()) return;
  MQTT_LOG_WARN(
      "shared group %s/%s has no member left on this node%s: message on %s dropped (%d so far)",
      shared.group, shared.filter,
      shared.hops == 0 ? " nor on another it knows" : " (passed on already)", message.topic,
      dropped);
}

// Local only: the message is already on this node, and another member here takes it (a member
// on another node would need the forwarding path again for a message a session here holds).
bool Broker::Redistribute(uint32_t from_worker, const OutboundMessage& message,
                          uint64_t from_session) {
  std::optional<SessionTarget> target =
      router_.Redistribute(*message.message, message.shared_group, from_session);
  if (!target) return false;
  OutboundMessage out{message.message,
                      target->qos,
                      false,
                      message.shared_group,
                      std::move(target->subscription_ids),
                      0,
                      nullptr};
  shards_[from_worker]->Deliver(target->worker, target->session_id, std::move(out));
  return true;
}

void Broker::ClaimedElsewhere(const std::string& client_id, uint64_t epoch) {
  Shard* home = shards_[HomeWorker(client_id)].get();
  home->worker()->Post([home, client_id, epoch] { home->ClaimedElsewhere(client_id, epoch); });
}

void Broker::ExportSession(const std::string& client_id, uint64_t epoch, const std::string& to_node,
                           bool discard, Exported done) {
  Shard* home = shards_[HomeWorker(client_id)].get();
  // A session still on its way here must be here before it can go on (ImportGate).
  import_gate_.WhenSettled(client_id, {to_node, 0},
                           [home, client_id, epoch, to_node, discard, done = std::move(done)] {
                             home->worker()->Post([home, client_id, epoch, to_node, discard, done] {
                               done(home->ExportSession(client_id, epoch, to_node, discard));
                             });
                           });
}

void Broker::FinishExport(const std::string& client_id, uint64_t epoch) {
  Shard* home = shards_[HomeWorker(client_id)].get();
  home->worker()->Post([home, client_id, epoch] { home->FinishExport(client_id, epoch); });
}

void Broker::AdoptSession(const std::string& client_id, const std::string& from_node,
                          Adopted done) {
  if (client_registry_ == nullptr || session_mover_ == nullptr) {
    return done(absl::FailedPreconditionError("this node is not in a cluster with a registry"));
  }
  const uint64_t ticket = import_gate_.Open(client_id);
  Adopted finish = ClosingTicket(client_id, ticket, std::move(done));
  client_registry_->ClaimFrom(client_id, from_node,
                              [this, ticket, client_id, from_node,
                               finish = std::move(finish)](absl::StatusOr<Claimed> claim) {
                                if (!claim.ok()) return finish(claim.status());
                                FetchToHome(client_id, claim->epoch, from_node, ticket,
                                            absl::NotFoundError("no persistent session there"),
                                            &Shard::AdoptSession, std::move(finish));
                              });
}

void Broker::CollectSession(const std::string& client_id, const std::string& from_node,
                            Adopted done) {
  if (client_registry_ == nullptr || session_mover_ == nullptr) {
    return done(absl::FailedPreconditionError("this node is not in a cluster with a registry"));
  }
  // A ticket as for a claim: a CONNECT here waits until the collected messages are in the
  // session (ImportGate), and a Take from a third node waits too.
  const uint64_t ticket = import_gate_.Open(client_id);
  Adopted finish = ClosingTicket(client_id, ticket, std::move(done));
  Shard* home = shards_[HomeWorker(client_id)].get();
  home->worker()->Post([this, home, ticket, client_id, from_node, finish = std::move(finish)] {
    const std::optional<uint64_t> epoch = home->HeldEpoch(client_id);
    if (!epoch.has_value()) {
      return finish(absl::NotFoundError("this node holds no session for the client id"));
    }
    FetchToHome(client_id, *epoch, from_node, ticket, /*if_none=*/absl::OkStatus(),
                &Shard::MergeCollected, finish);
  });
}

Broker::Adopted Broker::ClosingTicket(const std::string& client_id, uint64_t ticket, Adopted done) {
  return [gate = &import_gate_, client_id, ticket, done = std::move(done)](absl::Status status) {
    gate->Close(client_id, ticket);
    done(std::move(status));
  };
}

void Broker::FetchToHome(const std::string& client_id, uint64_t epoch, const std::string& from_node,
                         uint64_t ticket, absl::Status if_none, WriteFetched write,
                         Adopted finish) {
  import_gate_.Fetching(client_id, ticket, from_node);
  Shard* home = shards_[HomeWorker(client_id)].get();
  session_mover_->Fetch(
      client_id, epoch, from_node, /*discard=*/false,
      [home, client_id, from_node, epoch, if_none, write,
       finish = std::move(finish)](absl::StatusOr<std::optional<TransferredSession>> fetched) {
        if (!fetched.ok()) return finish(fetched.status());
        if (!fetched->has_value()) return finish(if_none);
        auto session = std::make_shared<TransferredSession>(std::move(**fetched));
        home->worker()->Post([home, client_id, from_node, epoch, session, write, finish] {
          finish((home->*write)(client_id, epoch, *session, from_node));
        });
      });
}

std::future<SessionSource::Handovers> Broker::HandoverState() {
  struct Gather {
    absl::Mutex mu;
    size_t left;
    Handovers sum;
    std::promise<Handovers> done;
  };
  auto gather = std::make_shared<Gather>();
  gather->left = shards_.size();
  std::future<Handovers> result = gather->done.get_future();
  for (auto& shard : shards_) {
    Shard* s = shard.get();
    s->worker()->Post([s, gather] {
      const Handovers part = s->handovers();
      absl::MutexLock lock(&gather->mu);
      gather->sum.exporting += part.exporting;
      gather->sum.relaying += part.relaying;
      gather->sum.last_finish_ms = std::max(gather->sum.last_finish_ms, part.last_finish_ms);
      if (--gather->left == 0) gather->done.set_value(gather->sum);
    });
  }
  return result;
}

void Broker::EndRelays() {
  for (auto& shard : shards_) {
    Shard* s = shard.get();
    s->worker()->Post([s] { s->EndRelays(); });
  }
}

namespace {

// The sessions of several workers, gathered as each answers; the last one sorts and answers.
struct SessionGather {
  explicit SessionGather(SessionFilter f, size_t workers) : filter(std::move(f)), left(workers) {}

  void Add(std::vector<SessionInfo> part) {
    absl::MutexLock lock(&mu);
    sessions.insert(sessions.end(), std::make_move_iterator(part.begin()),
                    std::make_move_iterator(part.end()));
    if (--left > 0) return;
    std::sort(sessions.begin(), sessions.end(),
              [](const SessionInfo& a, const SessionInfo& b) { return a.client_id < b.client_id; });
    if (filter.limit != 0 && sessions.size() > filter.limit) sessions.resize(filter.limit);
    done.set_value(std::move(sessions));
  }

  const SessionFilter filter;
  absl::Mutex mu;
  size_t left ABSL_GUARDED_BY(mu);
  std::vector<SessionInfo> sessions ABSL_GUARDED_BY(mu);
  std::promise<std::vector<SessionInfo>> done;
};

}  // namespace

std::future<std::vector<SessionInfo>> Broker::ListSessions(SessionFilter filter) {
  // One client id lives on its home worker only.
  std::vector<Shard*> asked;
  if (!filter.client_id.empty()) {
    asked.push_back(shards_[HomeWorker(filter.client_id)].get());
  } else {
    for (auto& shard : shards_) asked.push_back(shard.get());
  }
  auto gather = std::make_shared<SessionGather>(std::move(filter), asked.size());
  std::future<std::vector<SessionInfo>> result = gather->done.get_future();
  for (Shard* shard : asked) {
    shard->worker()->Post([shard, gather] { gather->Add(shard->ListSessions(gather->filter)); });
  }
  return result;
}

std::future<size_t> Broker::Shed(size_t count) {
  struct Gather {
    absl::Mutex mu;
    size_t left;
    size_t shed = 0;
    std::promise<size_t> done;
  };
  auto gather = std::make_shared<Gather>();
  gather->left = shards_.size();
  std::future<size_t> result = gather->done.get_future();
  for (size_t i = 0; i < shards_.size(); ++i) {
    // An even share per worker, the remainder to the first ones.
    const size_t share = count / shards_.size() + (i < count % shards_.size() ? 1 : 0);
    Shard* s = shards_[i].get();
    s->worker()->Post([s, share, gather] {
      const size_t shed = share == 0 ? 0 : s->Shed(share);
      absl::MutexLock lock(&gather->mu);
      gather->shed += shed;
      if (--gather->left == 0) gather->done.set_value(gather->shed);
    });
  }
  return result;
}

std::future<bool> Broker::Kick(std::string client_id, uint8_t reason) {
  auto done = std::make_shared<std::promise<bool>>();
  std::future<bool> result = done->get_future();
  Shard* home = shards_[HomeWorker(client_id)].get();
  home->worker()->Post([home, client_id = std::move(client_id), reason, done] {
    done->set_value(home->Kick(client_id, reason));
  });
  return result;
}

}  // namespace mqtt
