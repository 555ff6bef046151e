#include "node/session/broker.h"

#include <algorithm>
#include <functional>
#include <mutex>
#include <thread>

#include "node/session/client.h"
#include "node/session/shard.h"

namespace mqtt {

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
  thread_local std::vector<Subscriber> matches;
  matches.clear();
  {
    std::shared_lock lock(subscriptions_mutex_);
    subscriptions_.Match(message->topic,
                         [](const Subscriber& subscriber) { matches.push_back(subscriber); });
  }
  if (matches.size() > 1) {
    // One copy per session, at the highest granted QoS among its matching filters.
    std::sort(matches.begin(), matches.end(), [](const Subscriber& a, const Subscriber& b) {
      return a.session_id < b.session_id || (a.session_id == b.session_id && a.qos > b.qos);
    });
    matches.erase(std::unique(matches.begin(), matches.end(),
                              [](const Subscriber& a, const Subscriber& b) {
                                return a.session_id == b.session_id;
                              }),
                  matches.end());
  }
  Shard& from = *shards_[from_worker];
  for (const Subscriber& subscriber : matches) {
    uint8_t qos = std::min(message->qos, subscriber.qos);  // [MQTT-3.8.4-6]
    bool retain = subscriber.retain_as_published && message->retain;  // [MQTT-3.3.1-9]
    from.Deliver(subscriber.worker, subscriber.session_id, message, qos, retain);
  }
}

void Broker::AddSubscription(std::string_view filter, const Subscriber& subscriber) {
  std::unique_lock lock(subscriptions_mutex_);
  subscriptions_.Subscribe(filter, subscriber);
}

void Broker::RemoveSubscription(std::string_view filter, uint64_t session_id) {
  std::unique_lock lock(subscriptions_mutex_);
  subscriptions_.Unsubscribe(filter, session_id);
}

std::vector<MessagePtr> Broker::RetainedMatching(std::string_view filter) const {
  std::vector<MessagePtr> result;
  std::shared_lock lock(retained_mutex_);
  retained_.Match(filter, [&result](const MessagePtr& message) { result.push_back(message); });
  return result;
}

}  // namespace mqtt
