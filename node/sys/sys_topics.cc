// SPDX-License-Identifier: Apache-2.0
#include "node/sys/sys_topics.h"

#include <atomic>
#include <cmath>
#include <future>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "boost/asio/steady_timer.hpp"
#include "node/base/log.h"

namespace mqtt::sys {
namespace {

using Clock = std::chrono::steady_clock;

// When the process started (dynamic initialisation, before main): $SYS/broker/uptime counts
// from here, as /metrics' mqttd_uptime_seconds does.
const Clock::time_point kProcessStart = Clock::now();

constexpr const char* kWindows[] = {"1min", "5min", "15min"};
constexpr double kWindowSeconds[] = {60, 300, 900};
constexpr const char* kLoadNames[] = {"messages/received", "messages/sent", "bytes/received",
                                      "bytes/sent"};

using Values = std::vector<std::pair<std::string, std::string>>;

void Add(Values* out, const std::string& topic, std::string value) {
  out->emplace_back(absl::StrCat("$SYS/", topic), std::move(value));
}

void AddTraffic(const SysFigures& f, Values* out) {
  Add(out, "broker/messages/received", absl::StrCat(f.traffic.received()));
  Add(out, "broker/messages/sent", absl::StrCat(f.traffic.sent()));
  Add(out, "broker/publish/messages/received", absl::StrCat(f.traffic.received()));
  Add(out, "broker/publish/messages/sent", absl::StrCat(f.traffic.sent()));
  Add(out, "broker/bytes/received", absl::StrCat(f.traffic.bytes_received));
  Add(out, "broker/bytes/sent", absl::StrCat(f.traffic.bytes_sent));
  for (int i = 0; i < 4; ++i) {
    if (f.load[i] == nullptr) continue;
    for (int w = 0; w < 3; ++w) {
      Add(out, absl::StrCat("broker/load/", kLoadNames[i], "/", kWindows[w]),
          absl::StrFormat("%.2f", f.load[i]->per_minute(w)));
    }
  }
}

}  // namespace

void LoadAverage::Update(uint64_t total, double seconds) {
  if (!started_ || seconds <= 0) {
    started_ = true;
    last_total_ = total;
    return;
  }
  const double per_minute = static_cast<double>(total - last_total_) * 60.0 / seconds;
  last_total_ = total;
  for (int w = 0; w < 3; ++w) {
    const double keep = std::exp(-seconds / kWindowSeconds[w]);
    load_[w] = load_[w] * keep + per_minute * (1 - keep);
  }
}

Values SysValues(const SysOptions& options, const SysFigures& f) {
  Values out;
  Add(&out, "broker/version", absl::StrCat("mqttd ", options.version));
  Add(&out, "broker/uptime", absl::StrCat(f.uptime_seconds, " seconds"));
  Add(&out, "broker/clients/connected", absl::StrCat(f.clients_connected));
  const uint64_t total = std::max(f.sessions, f.clients_connected);
  Add(&out, "broker/clients/disconnected", absl::StrCat(total - f.clients_connected));
  Add(&out, "broker/clients/total", absl::StrCat(total));
  AddTraffic(f, &out);
  Add(&out, "broker/retained messages/count", absl::StrCat(f.retained));
  Add(&out, "broker/subscriptions/count", absl::StrCat(f.subscriptions));
  if (f.has_store) Add(&out, "broker/store/messages/count", absl::StrCat(f.stored_messages));
  if (options.cluster_members) {
    Add(&out, "cluster/node", options.node_id);
    for (const char* state : {"alive", "suspect", "dead", "left"}) {
      auto it = f.cluster_members.find(state);
      Add(&out, absl::StrCat("cluster/nodes/", state),
          absl::StrCat(it == f.cluster_members.end() ? 0 : it->second));
    }
  }
  return out;
}

struct SysPublisher::State : std::enable_shared_from_this<SysPublisher::State> {
  State(Broker* b, SysOptions o)
      : broker(b), options(std::move(o)), timer(b->shard(0).worker()->io()) {}

  // Worker 0. Asks every worker for its session count; the last to answer publishes.
  void Round() {
    if (stopped) return;
    struct Gather {
      std::atomic<size_t> left;
      std::atomic<uint64_t> sessions{0};
    };
    auto gather = std::make_shared<Gather>();
    gather->left = broker->worker_count();
    auto self = shared_from_this();
    for (uint32_t i = 0; i < broker->worker_count(); ++i) {
      Shard* shard = &broker->shard(i);
      shard->worker()->Post([self, shard, gather] {
        gather->sessions.fetch_add(shard->session_count(), std::memory_order_relaxed);
        if (gather->left.fetch_sub(1) != 1) return;
        self->worker0()->Post([self, gather] { self->Publish(gather->sessions.load()); });
      });
    }
  }

  // Worker 0: publishes what changed and arms the next round.
  void Publish(uint64_t sessions) {
    if (stopped) return;
    const Clock::time_point now = Clock::now();
    SysFigures f = Figures(sessions, now);
    for (auto& [topic, payload] : SysValues(options, f)) {
      std::string& last = published[topic];
      if (last == payload && !topic.ends_with("/uptime")) continue;
      last = payload;
      auto message = std::make_shared<Message>();
      message->topic = topic;
      message->payload = payload;
      message->retain = true;
      broker->PublishLocal(0, std::move(message));
    }
    timer.expires_after(options.interval);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->Round();
    });
  }

  SysFigures Figures(uint64_t sessions, Clock::time_point now) {
    SysFigures f;
    f.uptime_seconds =
        std::chrono::duration_cast<std::chrono::seconds>(now - kProcessStart).count();
    for (uint32_t i = 0; i < broker->worker_count(); ++i) {
      f.clients_connected += broker->shard(i).client_count();
      f.traffic.Add(broker->shard(i).counters().Read());
    }
    f.sessions = sessions;
    const double seconds = std::chrono::duration<double>(now - last_round).count();
    last_round = now;
    const uint64_t totals[4] = {f.traffic.received(), f.traffic.sent(), f.traffic.bytes_received,
                                f.traffic.bytes_sent};
    for (int i = 0; i < 4; ++i) {
      loads[i].Update(totals[i], seconds);
      f.load[i] = &loads[i];
    }
    f.retained = broker->router().retained_count();
    f.subscriptions = broker->router().subscription_count();
    if (storage::Store* store = broker->store(); store != nullptr) {
      f.has_store = true;
      f.stored_messages = store->stats().messages;
    }
    if (options.cluster_members) f.cluster_members = options.cluster_members();
    return f;
  }

  net::IoWorker* worker0() { return broker->shard(0).worker(); }

  Broker* const broker;
  const SysOptions options;
  // Worker 0 only, from Start on.
  boost::asio::steady_timer timer;
  bool stopped = false;
  Clock::time_point last_round = Clock::now();
  LoadAverage loads[4];
  std::map<std::string, std::string> published;  // topic -> last payload
  bool started = false;                          // Start/Stop's thread
};

SysPublisher::SysPublisher(Broker* broker, SysOptions options)
    : state_(std::make_shared<State>(broker, std::move(options))) {}

SysPublisher::~SysPublisher() { Stop(); }

void SysPublisher::Start() {
  if (state_->options.interval.count() == 0 || state_->started) return;
  state_->started = true;
  std::shared_ptr<State> state = state_;
  state->worker0()->Post([state] { state->Round(); });
}

void SysPublisher::Stop() {
  if (!state_->started) return;
  state_->started = false;
  std::promise<void> done;
  std::shared_ptr<State> state = state_;
  state->worker0()->Post([state, &done] {
    state->stopped = true;
    state->timer.cancel();
    done.set_value();
  });
  done.get_future().wait();
}

}  // namespace mqtt::sys
