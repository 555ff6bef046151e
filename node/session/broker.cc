#include "node/session/broker.h"

#include <algorithm>
#include <functional>
#include <mutex>
#include <thread>

#include "node/session/client.h"
#include "node/session/shard.h"

namespace mqtt {
namespace {

// The plain (non-shared) subscriptions matched by the publish in progress on this thread.
std::vector<Subscriber>& PublishMatches() {
  thread_local std::vector<Subscriber> matches;
  return matches;
}

}  // namespace

Broker::Broker(const BrokerOptions& options, std::vector<net::IoWorker*> workers)
    : options_(options) {
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

void Broker::Publish(uint32_t from_worker, MessagePtr message) {
  if (message->retain) {
    std::unique_lock lock(retained_mutex_);
    retained_.Set(message);
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
  Shard& from = *shards_[from_worker];
  DeliverToSessions(from, message);
  for (auto& [group, member] : shared_picks) {
    if (member.session_id == 0) continue;
    OutboundMessage out{message, std::min(message->qos, member.qos), false, group, {}};
    if (member.subscription_id != 0) out.subscription_ids.push_back(member.subscription_id);
    from.Deliver(member.worker, member.session_id, std::move(out));
  }
}

// One copy per session, at the highest QoS granted among its matching filters, carrying the
// subscription identifiers of all of them [MQTT-3.3.4-3], [MQTT-3.3.4-5].
void Broker::DeliverToSessions(Shard& from, const MessagePtr& message) {
  std::vector<Subscriber>& matches = PublishMatches();
  if (matches.size() > 1) {
    std::sort(matches.begin(), matches.end(), [](const Subscriber& a, const Subscriber& b) {
      return a.session_id < b.session_id;
    });
  }
  for (size_t i = 0; i < matches.size();) {
    const Subscriber& first = matches[i];
    OutboundMessage out{message, 0, false, 0, {}};
    uint8_t granted = 0;
    bool retain_as_published = false;
    bool matched = false;
    size_t j = i;
    for (; j < matches.size() && matches[j].session_id == first.session_id; ++j) {
      const Subscriber& s = matches[j];
      // No Local: this subscription does not match the session's own messages
      // [MQTT-3.8.3-3]; its other subscriptions still may.
      if (s.no_local && s.session_id == message->publisher_session_id) continue;
      matched = true;
      granted = std::max(granted, s.qos);
      retain_as_published |= s.retain_as_published;
      if (s.subscription_id != 0) out.subscription_ids.push_back(s.subscription_id);
    }
    i = j;
    if (!matched) continue;
    out.qos = std::min(message->qos, granted);             // [MQTT-3.8.4-6]
    out.retain = retain_as_published && message->retain;  // [MQTT-3.3.1-9], [MQTT-3.3.1-12]
    from.Deliver(first.worker, first.session_id, std::move(out));
  }
}

bool Broker::Redistribute(uint32_t from_worker, const OutboundMessage& message,
                          uint64_t from_session) {
  std::optional<SharedGroups::Member> member;
  {
    std::shared_lock lock(subscriptions_mutex_);
    member = shared_groups_.Select(message.shared_group, options_.share_strategy,
                                   message.message->publisher_id, message.message->topic,
                                   from_session);
  }
  if (!member || member->session_id == from_session) return false;
  OutboundMessage out{message.message, std::min(message.message->qos, member->qos), false,
                      message.shared_group, {}};
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
       std::move(online)},
      &created);
  if (created) subscriptions_.Subscribe(share.filter, Subscriber{group, 0, 2, false, false, 0});
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
