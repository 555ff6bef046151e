#include "node/session/broker.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <mutex>
#include <thread>

#include "node/base/log.h"
#include "node/session/client.h"
#include "node/session/shard.h"
#include "storage/convert.h"

namespace mqtt {
namespace {

// The plain (non-shared) subscriptions matched by the publish in progress on this thread.
std::vector<Subscriber>& PublishMatches() {
  thread_local std::vector<Subscriber> matches;
  return matches;
}

}  // namespace

Broker::Broker(const BrokerOptions& options, std::vector<net::IoWorker*> workers,
               storage::Store* store)
    : options_(options), store_(store) {
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
    for (MessagePtr& will : wills) Publish(first->index(), std::move(will));
  });
}

absl::Status Broker::Recover() {
  if (store_ == nullptr) return absl::OkStatus();
  absl::StatusOr<std::vector<std::string>> purged = store_->PurgeExpiredSessions(UnixMs());
  if (!purged.ok()) return purged.status();
  size_t sessions = 0;
  absl::Status status = store_->LoadSessions([&](const storage::SessionState& state) {
    Shard& home = *shards_[HomeWorker(state.record.client_id())];
    home.RestoreSession(state);
    ++sessions;
    // The client was connected when the node stopped: its connection ended abnormally.
    if (state.record.has_will()) {
      recovered_wills_.push_back(
          WillMessage(storage::FromRecord(state.record.will()), state.record.client_id()));
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  absl::StatusOr<uint64_t> expired_retained = store_->LoadRetained(
      UnixMs(), [this](std::string_view, const storage::v1::MessageRecord& record) {
        retained_.Set(FromStored(0, record));
        return absl::OkStatus();
      });
  if (!expired_retained.ok()) return expired_retained.status();
  if (absl::Status s = RecoverOutboxes(); !s.ok()) return s;
  // Sessions were saved with their wills: the stored copies are now taken care of.
  for (auto& shard : shards_) shard->CommitNow();
  MQTT_LOG_INFO("recovered %d sessions (%d expired ones purged) and %d retained messages in %d ms",
                sessions, purged->size(), retained_.size(), store_->open_stats().micros / 1000);
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

storage::v1::MessageRecord Broker::ToStored(const Message& message) const {
  storage::v1::MessageRecord record = storage::ToRecord(message, 0);
  record.set_expires_at_unix_ms(0);
  if (message.expires_at_ms != 0) {
    int64_t left_ms = std::max<int64_t>(message.expires_at_ms - MonotonicMs(), 0);
    record.set_expires_at_unix_ms(UnixMs() + static_cast<uint64_t>(left_ms));
  }
  return record;
}

MessagePtr Broker::FromStored(uint64_t id, const storage::v1::MessageRecord& record) const {
  auto message = std::make_shared<Message>(storage::FromRecord(record));
  message->stored_id.value.store(id);
  if (record.expires_at_unix_ms() != 0) {
    int64_t left_ms =
        static_cast<int64_t>(record.expires_at_unix_ms()) - static_cast<int64_t>(UnixMs());
    message->expires_at_ms = MonotonicMs() + std::max<int64_t>(left_ms, 1);
  }
  return message;
}

MessagePtr WillMessage(Will will, std::string_view client_id) {
  auto message = std::make_shared<Message>();
  message->topic = std::move(will.topic);
  message->payload = std::move(will.payload);
  message->qos = will.qos;
  message->retain = will.retain;
  message->publisher_id = std::string(client_id);
  will.properties.will_delay_interval.reset();
  if (will.properties.message_expiry_interval) {
    message->expires_at_ms =
        MonotonicMs() + int64_t{*will.properties.message_expiry_interval} * 1000;
  }
  if (will.properties != Properties{}) {
    message->properties = std::make_shared<const Properties>(std::move(will.properties));
  }
  return message;
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

void Broker::Accept(net::IoWorker* worker, boost::asio::ip::tcp::socket socket) {
  Shard* shard = shards_[worker->index()].get();
  worker->Post([shard, s = std::make_shared<boost::asio::ip::tcp::socket>(std::move(socket))] {
    auto client = std::make_shared<Client>(shard, std::move(*s));
    shard->AddClient(client);
    client->Start();
  });
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

void Broker::Publish(uint32_t from_worker, MessagePtr message, AckTokenPtr ack) {
  Shard& from = *shards_[from_worker];
  if (message->retain) {
    {
      std::unique_lock lock(retained_mutex_);
      retained_.Set(message);
    }
    if (storage::Batch* batch = from.batch()) {
      if (message->payload.empty()) {
        batch->DeleteRetained(message->topic);
      } else {
        batch->PutRetained(message->topic, ToStored(*message));
      }
      from.HoldUntilCommitted(ack);
    }
  }
  // Reused per thread: matching allocates nothing in the steady state.
  std::vector<Subscriber>& matches = PublishMatches();
  thread_local std::vector<std::pair<uint64_t, SharedGroups::Member>> shared_picks;
  matches.clear();
  shared_picks.clear();
  {
    std::shared_lock lock(subscriptions_mutex_);
    subscriptions_.Match(message->topic, [&matches](const Subscriber& s) {
      if ((s.session_id & kSharedGroupBit) == 0) {
        matches.push_back(s);
      } else {
        shared_picks.push_back({s.session_id, {}});
      }
    });
    // Each group resolves to one member while its membership cannot change.
    for (auto& [group, member] : shared_picks) {
      auto picked = shared_groups_.Select(group, options_.share_strategy, message->publisher_id,
                                          message->topic);
      if (picked) member = std::move(*picked);
    }
  }
  DeliverToSessions(from, message, ack);
  for (auto& [group, member] : shared_picks) {
    if (member.session_id == 0) continue;
    OutboundMessage out{message, std::min(message->qos, member.qos), false, group, {}, 0, ack};
    if (member.subscription_id != 0) out.subscription_ids.push_back(member.subscription_id);
    if (out.qos > 0 && member.durable_client_id != nullptr && member.worker != from.index()) {
      from.StageInOutbox(out, *member.durable_client_id);
    }
    from.Deliver(member.worker, member.session_id, std::move(out));
  }
}

// One copy per session, at the highest QoS granted among its matching filters, carrying the
// subscription identifiers of all of them [MQTT-3.3.4-3], [MQTT-3.3.4-5].
void Broker::DeliverToSessions(Shard& from, const MessagePtr& message, const AckTokenPtr& ack) {
  std::vector<Subscriber>& matches = PublishMatches();
  // Copies of durable_client_id made under the lock keep the strings alive after it.
  if (matches.size() > 1) {
    std::sort(matches.begin(), matches.end(),
              [](const Subscriber& a, const Subscriber& b) { return a.session_id < b.session_id; });
  }
  for (size_t i = 0; i < matches.size();) {
    const Subscriber& first = matches[i];
    OutboundMessage out{message, 0, false, 0, {}, 0, nullptr};
    uint8_t granted = 0;
    bool retain_as_published = false;
    bool matched = false;
    const std::string* durable_client_id = nullptr;
    size_t j = i;
    for (; j < matches.size() && matches[j].session_id == first.session_id; ++j) {
      const Subscriber& s = matches[j];
      // No Local: this subscription does not match the session's own messages
      // [MQTT-3.8.3-3]; its other subscriptions still may.
      if (s.no_local && s.session_id == message->publisher_session_id) continue;
      matched = true;
      if (s.durable_client_id != nullptr) durable_client_id = s.durable_client_id.get();
      granted = std::max(granted, s.qos);
      retain_as_published |= s.retain_as_published;
      if (s.subscription_id != 0) out.subscription_ids.push_back(s.subscription_id);
    }
    i = j;
    if (!matched) continue;
    out.qos = std::min(message->qos, granted);            // [MQTT-3.8.4-6]
    out.retain = retain_as_published && message->retain;  // [MQTT-3.3.1-9], [MQTT-3.3.1-12]
    if (out.qos > 0) out.ack = ack;
    // A persistent session on another worker: the message goes in this worker's outbox, in the
    // same batch as the publisher's own state, until that worker has stored it.
    if (out.qos > 0 && durable_client_id != nullptr && first.worker != from.index()) {
      from.StageInOutbox(out, *durable_client_id);
    }
    from.Deliver(first.worker, first.session_id, std::move(out));
  }
}

bool Broker::Redistribute(uint32_t from_worker, const OutboundMessage& message,
                          uint64_t from_session) {
  std::optional<SharedGroups::Member> member;
  {
    std::shared_lock lock(subscriptions_mutex_);
    member =
        shared_groups_.Select(message.shared_group, options_.share_strategy,
                              message.message->publisher_id, message.message->topic, from_session);
  }
  if (!member || member->session_id == from_session) return false;
  OutboundMessage out{message.message,
                      std::min(message.message->qos, member->qos),
                      false,
                      message.shared_group,
                      {},
                      0,
                      nullptr};
  if (member->subscription_id != 0) out.subscription_ids.push_back(member->subscription_id);
  shards_[from_worker]->Deliver(member->worker, member->session_id, std::move(out));
  return true;
}

void Broker::AddSubscription(std::string_view filter, const Subscriber& subscriber,
                             std::shared_ptr<const std::atomic<bool>> online) {
  std::unique_lock lock(subscriptions_mutex_);
  auto shared = ParseSharedFilter(filter);
  if (!shared.ok() || !shared->has_value()) {
    subscriptions_.Subscribe(filter, subscriber);
    return;
  }
  const SharedFilter& share = **shared;
  bool created = false;
  uint64_t group = shared_groups_.Join(
      share.group, share.filter,
      {subscriber.session_id, subscriber.worker, subscriber.qos, subscriber.subscription_id,
       subscriber.durable_client_id, std::move(online)},
      &created);
  if (created) {
    subscriptions_.Subscribe(share.filter, Subscriber{group, 0, 2, false, false, 0, nullptr});
  }
}

void Broker::RemoveSubscription(std::string_view filter, uint64_t session_id) {
  std::unique_lock lock(subscriptions_mutex_);
  auto shared = ParseSharedFilter(filter);
  if (!shared.ok() || !shared->has_value()) {
    subscriptions_.Unsubscribe(filter, session_id);
    return;
  }
  const SharedFilter& share = **shared;
  if (uint64_t empty_group = shared_groups_.Leave(share.group, share.filter, session_id)) {
    subscriptions_.Unsubscribe(share.filter, empty_group);
  }
}

std::vector<MessagePtr> Broker::RetainedMatching(std::string_view filter) const {
  std::vector<MessagePtr> result;
  std::shared_lock lock(retained_mutex_);
  retained_.Match(filter, [&result](const MessagePtr& message) { result.push_back(message); });
  return result;
}

}  // namespace mqtt
