// SPDX-License-Identifier: Apache-2.0
#include "cluster/membership.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/duration.pb.h"
#include "node/base/log.h"

namespace mqtt::cluster {
namespace {

using google::protobuf::RepeatedPtrField;

// Bounds a peer's PingReq timeout: a bogus value must not pin a call for long.
constexpr absl::Duration kMaxForwardTimeout = absl::Seconds(10);

// How a refusal for another cluster's name starts (proto/cluster.proto, "Cluster identity"): the
// caller tells it from the other FAILED_PRECONDITION answers (wrong target, sync with self).
constexpr char kNameMismatch[] = "cluster name mismatch";

// Peers whose mismatch was logged in the last minute, at most: beyond it, peers whose minute has
// passed are forgotten, and while none has, a new one is not logged (a flood; its lines would not
// help).
constexpr size_t kMaxLoggedPeers = 1024;

MemberInfo SelfInfo(const MembershipOptions& options) {
  MemberInfo self;
  self.node_id = options.node_id;
  self.address = options.advertise_address;
  self.incarnation = options.start_incarnation;
  self.started_at = absl::Now();
  self.state_since = self.started_at;
  self.metadata = options.metadata;
  return self;
}

absl::Status Validate(const MembershipOptions& o) {
  if (o.node_id.empty()) return absl::InvalidArgumentError("cluster: node id is empty");
  if (o.cluster_name.empty()) return absl::InvalidArgumentError("cluster: cluster name is empty");
  if (o.advertise_address.empty()) {
    return absl::InvalidArgumentError("cluster: advertise address is empty");
  }
  if (o.probe_interval <= absl::ZeroDuration() || o.probe_timeout <= absl::ZeroDuration() ||
      o.probe_timeout > o.probe_interval) {
    return absl::InvalidArgumentError("cluster: need 0 < probe timeout <= probe interval");
  }
  if (o.suspect_timeout <= absl::ZeroDuration() || o.sync_interval <= absl::ZeroDuration() ||
      o.remove_after <= absl::ZeroDuration() || o.join_backoff_initial <= absl::ZeroDuration() ||
      o.join_backoff_max < o.join_backoff_initial) {
    return absl::InvalidArgumentError("cluster: timeouts and intervals must be positive");
  }
  if (o.indirect_probes < 0 || o.max_updates_per_message < 1 || o.retransmit_mult < 1) {
    return absl::InvalidArgumentError("cluster: bad indirect probe or piggyback counts");
  }
  return absl::OkStatus();
}

void SetDeadline(grpc::ClientContext* ctx, absl::Duration timeout) {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

grpc::Status Unavailable() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "cluster membership not running");
}

bool IsNameMismatch(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
         absl::StartsWith(s.error_message(), kNameMismatch);
}

// Parallel calls through the callback API. Wait() blocks until every call answered (each has a
// deadline) or, with `until_first_ok`, until one succeeded; it returns the successes so far.
class Fanout {
 public:
  Fanout(int calls, bool until_first_ok) : pending_(calls), until_first_ok_(until_first_ok) {}
  void Finish(bool ok) {
    absl::MutexLock lock(&mu_);
    --pending_;
    ok_ += ok ? 1 : 0;
  }
  int Wait() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &Fanout::Ready));
    return ok_;
  }

 private:
  bool Ready() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return pending_ == 0 || (until_first_ok_ && ok_ > 0);
  }

  absl::Mutex mu_;
  int pending_ ABSL_GUARDED_BY(mu_);
  int ok_ ABSL_GUARDED_BY(mu_) = 0;
  const bool until_first_ok_;
};

}  // namespace

class Membership::Handler final : public v1::Membership::CallbackService {
 public:
  explicit Handler(Membership* m) : m_(m) {}

  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* ctx, const v1::PingRequest* req,
                                 v1::PingResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(m_->HandlePing(*req, resp));
    return reactor;
  }
  grpc::ServerUnaryReactor* PingReq(grpc::CallbackServerContext* ctx, const v1::PingReqRequest* req,
                                    v1::PingReqResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    m_->HandlePingReq(*req, resp, [reactor](grpc::Status s) { reactor->Finish(s); });
    return reactor;
  }
  grpc::ServerUnaryReactor* Sync(grpc::CallbackServerContext* ctx, const v1::SyncRequest* req,
                                 v1::SyncResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(m_->HandleSync(*req, resp));
    return reactor;
  }
  grpc::ServerUnaryReactor* Leave(grpc::CallbackServerContext* ctx, const v1::LeaveRequest* req,
                                  v1::LeaveResponse*) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(m_->HandleLeave(*req));
    return reactor;
  }

 private:
  Membership* const m_;
};

Membership::Membership(MembershipOptions options)
    : options_(std::move(options)),
      handler_(std::make_unique<Handler>(this)),
      table_(SelfInfo(options_), options_.retransmit_mult),
      rng_(std::random_device{}()),
      // Reconnect within a probe period or two: a restarted peer must be reachable again soon.
      stubs_(static_cast<int>(
          std::clamp<int64_t>(absl::ToInt64Milliseconds(options_.probe_interval), 100, 1000))),
      name_mismatch_log_(absl::Minutes(1), kMaxLoggedPeers) {}

Membership::~Membership() { Stop(); }

grpc::Service* Membership::service() { return handler_.get(); }

void Membership::Subscribe(Listener listener) {
  absl::MutexLock lock(&mu_);
  listeners_.push_back(std::move(listener));
}

absl::Status Membership::Start(std::string_view advertise_address) {
  absl::MutexLock lock(&mu_);
  if (phase_ != Phase::kNew) return absl::FailedPreconditionError("cluster: already started");
  if (!advertise_address.empty()) options_.advertise_address = std::string(advertise_address);
  if (absl::Status s = Validate(options_); !s.ok()) return s;
  table_.set_self_address(options_.advertise_address);
  joined_ = std::none_of(options_.seeds.begin(), options_.seeds.end(),
                         [&](const std::string& s) { return s != options_.advertise_address; });
  phase_ = Phase::kRunning;
  MQTT_LOG_INFO("cluster: node %s of cluster '%s' at %s starting, incarnation %d, %d seed(s)",
                options_.node_id, options_.cluster_name, options_.advertise_address,
                options_.start_incarnation, options_.seeds.size());
  protocol_thread_ = std::thread([this] { ProtocolLoop(); });
  event_thread_ = std::thread([this] { EventLoop(); });
  return absl::OkStatus();
}

absl::Status Membership::Leave(absl::Duration timeout) {
  v1::LeaveRequest request;
  std::vector<std::string> addresses;
  {
    absl::MutexLock lock(&mu_);
    if (phase_ != Phase::kRunning) return absl::FailedPreconditionError("cluster: not running");
    table_.MarkSelfLeft();
    *request.mutable_member() = table_.SelfRecord();
    for (const std::string& id : table_.Reachable()) addresses.push_back(table_.Find(id)->address);
  }
  request.set_cluster_name(options_.cluster_name);
  auto fanout = std::make_shared<Fanout>(static_cast<int>(addresses.size()), false);
  for (const std::string& address : addresses) {
    struct Call {
      grpc::ClientContext ctx;
      v1::LeaveRequest req;
      v1::LeaveResponse resp;
    };
    auto call = std::make_shared<Call>();
    call->req = request;
    SetDeadline(&call->ctx, timeout);
    CallStarted();
    stubs_.Get(address)->async()->Leave(&call->ctx, &call->req, &call->resp,
                                        [this, call, fanout, address](grpc::Status s) {
                                          LogIfRefusedByName(address, s);
                                          fanout->Finish(s.ok());
                                          CallDone();
                                        });
  }
  const int confirmed = fanout->Wait();
  const int failed = static_cast<int>(addresses.size()) - confirmed;
  MQTT_LOG_INFO("cluster: node %s left; %d of %d member(s) confirmed", options_.node_id, confirmed,
                addresses.size());
  if (failed > 0) {
    return absl::DeadlineExceededError(
        absl::StrCat("cluster: leave not confirmed by ", failed, " member(s)"));
  }
  return absl::OkStatus();
}

void Membership::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (phase_ == Phase::kNew) phase_ = Phase::kStopped;
    if (phase_ != Phase::kRunning) {
      mu_.Await(absl::Condition(
          +[](Phase* p) { return *p == Phase::kStopped; }, &phase_));
      return;
    }
    phase_ = Phase::kStopping;
  }
  protocol_thread_.join();
  event_thread_.join();
  absl::MutexLock lock(&mu_);
  // Callbacks of calls in flight use `this`; each call has a deadline.
  mu_.Await(absl::Condition(
      +[](int* n) { return *n == 0; }, &calls_in_flight_));
  phase_ = Phase::kStopped;
}

std::vector<MemberInfo> Membership::Members() const {
  absl::MutexLock lock(&mu_);
  return table_.Snapshot();
}

uint64_t Membership::incarnation() const {
  absl::MutexLock lock(&mu_);
  return table_.self().incarnation;
}

bool Membership::joined() const {
  absl::MutexLock lock(&mu_);
  return joined_;
}

bool Membership::Running() const {
  absl::MutexLock lock(&mu_);
  return phase_ == Phase::kRunning;
}

void Membership::CallStarted() {
  absl::MutexLock lock(&mu_);
  ++calls_in_flight_;
}

void Membership::CallDone() {
  absl::MutexLock lock(&mu_);
  --calls_in_flight_;
}

void Membership::AddUpdates(RepeatedPtrField<v1::Member>* out) {
  for (v1::Member& record : table_.TakeUpdates(options_.max_updates_per_message)) {
    *out->Add() = std::move(record);
  }
}

void Membership::Merge(const RepeatedPtrField<v1::Member>& records, const v1::Member* sender) {
  std::vector<MemberEvent> events;
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  const uint64_t refutations = table_.refutations();
  if (sender != nullptr) table_.Apply(*sender, now, &events);
  for (const v1::Member& record : records) table_.Apply(record, now, &events);
  if (table_.refutations() != refutations) {
    MQTT_LOG_INFO("cluster: node %s refuted a suspicion, incarnation now %d", options_.node_id,
                  table_.self().incarnation);
  }
  Publish(std::move(events));
}

void Membership::Publish(std::vector<MemberEvent> events) {
  for (MemberEvent& event : events) {
    const MemberInfo& m = event.member;
    MQTT_LOG_INFO("cluster: %s sees %s %s at %s (incarnation %d)", options_.node_id, m.node_id,
                  MemberChangeName(event.change), m.address, m.incarnation);
    if (event.change != MemberChange::kSuspect) {
      // A member that comes back may be a new process: do not reuse a channel in backoff.
      stubs_.Drop(m.address);
    }
    events_.push_back(std::move(event));
  }
}

void Membership::EventLoop() {
  for (;;) {
    std::vector<MemberEvent> batch;
    std::vector<Listener> listeners;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](Membership* m) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return !m->events_.empty() || m->phase_ != Phase::kRunning;
          },
          this));
      if (events_.empty()) return;
      batch.swap(events_);
      listeners = listeners_;
    }
    for (const MemberEvent& event : batch) {
      for (const Listener& listener : listeners) listener(event.member, event.change);
    }
  }
}

void Membership::ProtocolLoop() {
  absl::Duration join_backoff = options_.join_backoff_initial;
  absl::Time next_join = absl::Now();
  absl::Time next_sync = absl::Now() + options_.sync_interval;
  const absl::Duration reconnect_interval = options_.reconnect_interval > absl::ZeroDuration()
                                                ? options_.reconnect_interval
                                                : options_.probe_interval * 10;
  absl::Time next_reconnect = absl::Now() + reconnect_interval;
  while (Running()) {
    stubs_.ReleaseRetired();  // here, off gRPC's callback threads (stub_cache.h)
    const absl::Time tick = absl::Now();
    if (!joined() && tick >= next_join) {
      TryJoin();
      next_join = absl::Now() + join_backoff;
      join_backoff = std::min(join_backoff * 2, options_.join_backoff_max);
    }
    ProbeOne();
    {
      std::vector<MemberEvent> events;
      absl::MutexLock lock(&mu_);
      table_.Expire(absl::Now(), options_.suspect_timeout, options_.remove_after, &events);
      Publish(std::move(events));
    }
    if (absl::Now() >= next_sync) {
      SyncWithRandomMember(/*dead=*/false);
      next_sync = absl::Now() + options_.sync_interval;
    }
    if (absl::Now() >= next_reconnect) {
      SyncWithRandomMember(/*dead=*/true);
      next_reconnect = absl::Now() + reconnect_interval;
    }
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithDeadline(absl::Condition(
                              +[](Phase* p) { return *p != Phase::kRunning; }, &phase_),
                          tick + options_.probe_interval);
  }
}

void Membership::TryJoin() {
  std::vector<std::string> seeds = options_.seeds;
  {
    absl::MutexLock lock(&mu_);
    std::shuffle(seeds.begin(), seeds.end(), rng_);
  }
  // Every seed, not only the first that answers: a seed may be a node starting at the same
  // moment that knows nobody yet (a StatefulSet scaled out by two pods in parallel, both
  // resolving the same headless Service): two such nodes joining through each other only
  // would form a cluster of their own and never learn of the others (tests/helm/test_scale.py).
  std::vector<std::string> answered;
  for (const std::string& seed : seeds) {
    if (!Running()) return;
    if (seed == options_.advertise_address) continue;
    absl::Status s = SyncWith(seed);
    if (s.ok()) {
      answered.push_back(seed);
      continue;
    }
    MQTT_LOG_DEBUG("cluster: join through %s failed: %s", seed, s.ToString());
    stubs_.Drop(seed);  // next attempt on a fresh channel, not one in reconnect backoff
  }
  if (answered.empty()) return;
  absl::MutexLock lock(&mu_);
  joined_ = true;
  MQTT_LOG_INFO("cluster: node %s joined through %s", options_.node_id,
                absl::StrJoin(answered, ", "));
}

absl::Status Membership::SyncWith(const std::string& address) {
  v1::SyncRequest request;
  {
    absl::MutexLock lock(&mu_);
    *request.mutable_sender() = table_.SelfRecord();
    for (v1::Member& record : table_.FullState()) *request.add_members() = std::move(record);
  }
  request.set_cluster_name(options_.cluster_name);
  grpc::ClientContext ctx;
  SetDeadline(&ctx, std::max(options_.probe_interval, absl::Seconds(1)));
  v1::SyncResponse response;
  grpc::Status s = stubs_.Get(address)->Sync(&ctx, request, &response);
  if (!s.ok()) {
    // A seed or sync peer of another cluster: not a join, and nothing of it merged.
    LogIfRefusedByName(address, s);
    return absl::UnavailableError(
        absl::StrCat("cluster: sync with ", address, ": ", s.error_message()));
  }
  Merge(response.members());
  return absl::OkStatus();
}

// Syncs with one member picked at random among the reachable ones, or among the DEAD ones. Then
// the sync carries our view ("dead at incarnation n"): one that is back refutes with n + 1 in
// its answer, comes alive here, and learns that we are alive.
void Membership::SyncWithRandomMember(bool dead) {
  std::string address;
  {
    absl::MutexLock lock(&mu_);
    const std::vector<std::string> ids = dead ? table_.Dead() : table_.Reachable();
    if (ids.empty()) return;
    std::uniform_int_distribution<size_t> pick(0, ids.size() - 1);
    address = table_.Find(ids[pick(rng_)])->address;
  }
  if (absl::Status s = SyncWith(address); !s.ok()) MQTT_LOG_DEBUG("%s", s.ToString());
}

void Membership::ProbeOne() {
  std::string id, address;
  uint64_t incarnation = 0;
  v1::PingRequest request;
  {
    absl::MutexLock lock(&mu_);
    for (;;) {
      if (probe_order_.empty()) {
        probe_order_ = table_.Reachable();  // a new round in a new random order
        std::shuffle(probe_order_.begin(), probe_order_.end(), rng_);
        if (probe_order_.empty()) return;
      }
      id = std::move(probe_order_.back());
      probe_order_.pop_back();
      const MemberInfo* m = table_.Find(id);
      if (m != nullptr && (m->state == MemberState::kAlive || m->state == MemberState::kSuspect)) {
        address = m->address;
        incarnation = m->incarnation;
        break;
      }
    }
    *request.mutable_sender() = table_.SelfRecord();
    request.set_target_node_id(id);
    AddUpdates(request.mutable_updates());
  }
  request.set_cluster_name(options_.cluster_name);
  bool acked = false;
  if (!options_.drop_probe_for_test || !options_.drop_probe_for_test(id)) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, options_.probe_timeout);
    v1::PingResponse response;
    grpc::Status s = stubs_.Get(address)->Ping(&ctx, request, &response);
    if (s.ok()) {
      Merge(response.updates());
      acked = response.node_id() == id;
    }
    // A refusal by name (another cluster now at that address) is a failed probe like any other.
    LogIfRefusedByName(address, s);
    if (!acked) acked = ProbeIndirect(id, address);
  }
  if (acked) return;
  std::vector<MemberEvent> events;
  absl::MutexLock lock(&mu_);
  table_.Suspect(id, incarnation, absl::Now(), &events);
  Publish(std::move(events));
}

bool Membership::ProbeIndirect(const std::string& target_id, const std::string& target_address) {
  const absl::Duration wait =
      std::max(options_.probe_interval - options_.probe_timeout, options_.probe_timeout);
  std::vector<std::string> helpers;
  v1::PingReqRequest request;
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& id : table_.Reachable()) {
      const MemberInfo* m = table_.Find(id);
      if (id != target_id && m->state == MemberState::kAlive) helpers.push_back(m->address);
    }
    std::shuffle(helpers.begin(), helpers.end(), rng_);
    if (helpers.size() > static_cast<size_t>(options_.indirect_probes)) {
      helpers.resize(options_.indirect_probes);
    }
    *request.mutable_sender() = table_.SelfRecord();
    request.set_target_node_id(target_id);
    request.set_target_address(target_address);
    // The helper's own probe ends before our deadline, so a "no" reaches us in time.
    const int64_t forward_ms = absl::ToInt64Milliseconds(wait * 3 / 4);
    request.mutable_timeout()->set_seconds(forward_ms / 1000);
    request.mutable_timeout()->set_nanos(static_cast<int32_t>(forward_ms % 1000) * 1000000);
    AddUpdates(request.mutable_updates());
  }
  request.set_cluster_name(options_.cluster_name);
  if (helpers.empty()) return false;
  auto fanout = std::make_shared<Fanout>(static_cast<int>(helpers.size()), true);
  for (const std::string& helper : helpers) {
    struct Call {
      grpc::ClientContext ctx;
      v1::PingReqRequest req;
      v1::PingReqResponse resp;
    };
    auto call = std::make_shared<Call>();
    call->req = request;
    SetDeadline(&call->ctx, wait);
    CallStarted();
    stubs_.Get(helper)->async()->PingReq(&call->ctx, &call->req, &call->resp,
                                         [this, call, fanout, helper](grpc::Status s) {
                                           LogIfRefusedByName(helper, s);
                                           if (s.ok()) Merge(call->resp.updates());
                                           fanout->Finish(s.ok() && call->resp.acked());
                                           CallDone();
                                         });
  }
  return fanout->Wait() > 0;
}

grpc::Status Membership::HandlePing(const v1::PingRequest& request, v1::PingResponse* response) {
  if (grpc::Status s = CheckClusterName(request.cluster_name(), request.sender()); !s.ok()) {
    return s;
  }
  if (!Running()) return Unavailable();
  if (request.target_node_id() != options_.node_id) {
    // Another node lives at the address the sender knows: no ack for the one it meant.
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("this is node ", options_.node_id));
  }
  Merge(request.updates(), &request.sender());
  absl::MutexLock lock(&mu_);
  response->set_node_id(options_.node_id);
  AddUpdates(response->mutable_updates());
  return grpc::Status::OK;
}

void Membership::HandlePingReq(const v1::PingReqRequest& request, v1::PingReqResponse* response,
                               std::function<void(grpc::Status)> done) {
  if (grpc::Status s = CheckClusterName(request.cluster_name(), request.sender()); !s.ok()) {
    return done(s);
  }
  if (!Running()) return done(Unavailable());
  Merge(request.updates(), &request.sender());
  absl::Duration timeout =
      absl::Seconds(request.timeout().seconds()) + absl::Nanoseconds(request.timeout().nanos());
  if (timeout <= absl::ZeroDuration()) timeout = options_.probe_timeout;
  timeout = std::min(timeout, kMaxForwardTimeout);
  struct Call {
    grpc::ClientContext ctx;
    v1::PingRequest req;
    v1::PingResponse resp;
  };
  auto call = std::make_shared<Call>();
  {
    absl::MutexLock lock(&mu_);
    *call->req.mutable_sender() = table_.SelfRecord();
  }
  call->req.set_target_node_id(request.target_node_id());
  call->req.set_cluster_name(options_.cluster_name);  // ours: the target checks the helper
  SetDeadline(&call->ctx, timeout);
  CallStarted();
  // Answered from the callback: no gRPC thread waits for the target.
  stubs_.Get(request.target_address())
      ->async()
      ->Ping(&call->ctx, &call->req, &call->resp,
             [this, call, response, target = request.target_address(),
              done = std::move(done)](grpc::Status s) {
               LogIfRefusedByName(target, s);
               const bool acked = s.ok() && call->resp.node_id() == call->req.target_node_id();
               if (s.ok()) Merge(call->resp.updates());
               response->set_acked(acked);
               {
                 absl::MutexLock lock(&mu_);
                 AddUpdates(response->mutable_updates());
               }
               done(grpc::Status::OK);
               CallDone();
             });
}

grpc::Status Membership::HandleSync(const v1::SyncRequest& request, v1::SyncResponse* response) {
  if (grpc::Status s = CheckClusterName(request.cluster_name(), request.sender()); !s.ok()) {
    return s;
  }
  if (!Running()) return Unavailable();
  if (request.sender().node_id() == options_.node_id) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "sync with self");
  }
  Merge(request.members(), &request.sender());
  absl::MutexLock lock(&mu_);
  for (v1::Member& record : table_.FullState()) *response->add_members() = std::move(record);
  return grpc::Status::OK;
}

grpc::Status Membership::HandleLeave(const v1::LeaveRequest& request) {
  if (grpc::Status s = CheckClusterName(request.cluster_name(), request.member()); !s.ok()) {
    return s;
  }
  if (!Running()) return Unavailable();
  Merge({}, &request.member());
  return grpc::Status::OK;
}

// options_.cluster_name is set at construction and never changes: read without mu_.
grpc::Status Membership::CheckClusterName(const std::string& name, const v1::Member& sender) {
  if (name.empty() || name == options_.cluster_name) return grpc::Status::OK;
  std::string message = absl::StrCat(kNameMismatch, ": this node (", options_.node_id,
                                     ") is in cluster '", options_.cluster_name, "', the caller (",
                                     sender.node_id(), ", ", sender.address(), ") in '", name, "'");
  if (name_mismatch_log_.Allow(absl::StrCat("from ", sender.address()))) {
    MQTT_LOG_WARN("cluster: refused a request: %s (logged once a minute per caller)", message);
  }
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, std::move(message));
}

void Membership::LogIfRefusedByName(const std::string& address, const grpc::Status& status) {
  if (!IsNameMismatch(status) || !name_mismatch_log_.Allow(absl::StrCat("to ", address))) return;
  MQTT_LOG_ERROR(
      "cluster: %s refused node %s: %s. A seed or member address of another cluster: not joined "
      "through it, nothing of it merged, no answer as a probe (logged once a minute per address)",
      address, options_.node_id, status.error_message());
}

}  // namespace mqtt::cluster
