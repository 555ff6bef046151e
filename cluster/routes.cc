// SPDX-License-Identifier: Apache-2.0
#include "cluster/routes.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "node/base/log.h"

namespace mqtt::cluster {
namespace {

// Deltas that arrive for an origin while its full state is being fetched wait here, to be
// replayed on top of it; beyond this many the fetch's state plus a later gap will do.
constexpr size_t kMaxBufferedDeltas = 4096;

uint64_t EpochOrNow(uint64_t epoch) {
  return epoch != 0 ? epoch : static_cast<uint64_t>(absl::ToUnixMicros(absl::Now()));
}

absl::Status Validate(const RouteTableOptions& o) {
  if (o.node_id.empty()) return absl::InvalidArgumentError("cluster routes: node id is empty");
  if (o.advertise_address.empty()) {
    return absl::InvalidArgumentError("cluster routes: advertise address is empty");
  }
  if (o.digest_interval <= absl::ZeroDuration() || o.rpc_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("cluster routes: intervals and timeouts must be positive");
  }
  if (o.max_routes_per_delta < 1 || o.max_queued_deltas_per_peer < 1) {
    return absl::InvalidArgumentError("cluster routes: delta limits must be >= 1");
  }
  return absl::OkStatus();
}

void SetDeadline(grpc::ClientContext* ctx, absl::Duration timeout) {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

grpc::Status Unavailable() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "cluster routes not running");
}

int RouteCount(const v1::RouteDelta& delta) { return delta.added_size() + delta.removed_size(); }

}  // namespace

class RouteTable::Handler final : public v1::Routes::CallbackService {
 public:
  explicit Handler(RouteTable* t) : t_(t) {}

  grpc::ServerUnaryReactor* Push(grpc::CallbackServerContext* ctx, const v1::RoutePushRequest* req,
                                 v1::RoutePushResponse*) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(t_->HandlePush(*req));
    return reactor;
  }
  grpc::ServerUnaryReactor* Digest(grpc::CallbackServerContext* ctx,
                                   const v1::RouteDigestRequest* req,
                                   v1::RouteDigestResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(t_->HandleDigest(*req, resp));
    return reactor;
  }
  grpc::ServerUnaryReactor* Fetch(grpc::CallbackServerContext* ctx,
                                  const v1::RouteFetchRequest* req,
                                  v1::RouteFetchResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(t_->HandleFetch(*req, resp));
    return reactor;
  }

 private:
  RouteTable* const t_;
};

RouteTable::RouteTable(RouteTableOptions options, RouteSink* sink)
    : options_(std::move(options)),
      sink_(sink),
      handler_(std::make_unique<Handler>(this)),
      local_(options_.node_id, EpochOrNow(options_.epoch)),
      rng_(std::random_device{}()) {}

RouteTable::~RouteTable() { Stop(); }

grpc::Service* RouteTable::service() { return handler_.get(); }

absl::Status RouteTable::Start(std::string_view advertise_address) {
  absl::MutexLock lock(&mu_);
  if (phase_ != Phase::kNew) {
    return absl::FailedPreconditionError("cluster routes: already started");
  }
  if (!advertise_address.empty()) options_.advertise_address = std::string(advertise_address);
  if (absl::Status s = Validate(options_); !s.ok()) return s;
  phase_ = Phase::kRunning;
  MQTT_LOG_INFO("cluster: route table of %s at %s starting, epoch %d", options_.node_id,
                options_.advertise_address, local_.version().epoch);
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void RouteTable::Stop() {
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
  thread_.join();
  absl::MutexLock lock(&mu_);
  // Callbacks of calls in flight use `this`; each call has a deadline.
  mu_.Await(absl::Condition(
      +[](int* n) { return *n == 0; }, &calls_in_flight_));
  phase_ = Phase::kStopped;
}

absl::Status RouteTable::AddLocal(const Route& route) {
  absl::MutexLock lock(&mu_);
  bool changed = false;
  absl::Status s = local_.Add(route, &changed);
  wake_ = wake_ || changed;
  return s;
}

absl::Status RouteTable::RemoveLocal(const Route& route) {
  absl::MutexLock lock(&mu_);
  bool changed = false;
  absl::Status s = local_.Remove(route, &changed);
  wake_ = wake_ || changed;
  return s;
}

void RouteTable::PeerAlive(const std::string& node_id, const std::string& address) {
  if (node_id == options_.node_id || address.empty()) return;
  std::string old_address;
  {
    absl::MutexLock lock(&mu_);
    Peer& peer = peers_[node_id];
    if (peer.address != address) old_address = std::exchange(peer.address, address);
    peer.alive = true;
    // Repair at once rather than at the next digest: a joining (or returning) node holds
    // nothing of ours and we may hold nothing (or only the persistent part) of its.
    digest_queue_.push_back(node_id);
    if (remote_.MarkAlive(node_id)) QueueFetch(node_id, address);
    wake_ = true;
  }
  if (!old_address.empty()) stubs_.Drop(old_address);
}

void RouteTable::PeerDead(const std::string& node_id) {
  if (node_id == options_.node_id) return;
  absl::MutexLock lock(&mu_);
  if (auto it = peers_.find(node_id); it != peers_.end()) {
    it->second.alive = false;
    it->second.queue.clear();  // it fetches our full state when it comes back
  }
  std::vector<RouteEvent> events;
  remote_.MarkDead(node_id, &events);
  Emit(std::move(events));
}

void RouteTable::PeerGone(const std::string& node_id) {
  if (node_id == options_.node_id) return;
  absl::MutexLock lock(&mu_);
  peers_.erase(node_id);
  std::vector<RouteEvent> events;
  remote_.MarkGone(node_id, &events);
  Emit(std::move(events));
}

void RouteTable::OnMemberChange(const MemberInfo& member, MemberChange change) {
  switch (change) {
    case MemberChange::kJoined:
    case MemberChange::kAlive:
      PeerAlive(member.node_id, member.address);
      break;
    // A node that left (SIGTERM, a rolling restart) is treated like a dead one: the routes of
    // its persistent sessions stay, so their messages wait in the outboxes for it to return,
    // until it is removed. (Scale-in without loss is drain, issue 12.)
    case MemberChange::kDead:
    case MemberChange::kLeft:
      PeerDead(member.node_id);
      break;
    case MemberChange::kRemoved:
      PeerGone(member.node_id);
      break;
    case MemberChange::kSuspect:
      break;  // still a member: its routes stay until it is declared dead
  }
}

uint32_t RouteTable::NodeIndex(std::string_view node_id) {
  absl::MutexLock lock(&index_mu_);
  auto [it, inserted] =
      index_.try_emplace(std::string(node_id), static_cast<uint32_t>(index_.size() + 1));
  if (inserted) ids_.emplace_back(node_id);
  return it->second;
}

bool RouteTable::HoldsRoutesOf(const std::string& origin) const {
  absl::MutexLock lock(&mu_);
  return remote_.CompleteVersion(origin).has_value();
}

std::string RouteTable::NodeIdOf(uint32_t index) const {
  absl::MutexLock lock(&index_mu_);
  return index >= 1 && index <= ids_.size() ? ids_[index - 1] : std::string();
}

RouteVersion RouteTable::local_version() const {
  absl::MutexLock lock(&mu_);
  return local_.version();
}

std::vector<Route> RouteTable::LocalRouteSet() const {
  absl::MutexLock lock(&mu_);
  return local_.Routes();
}

std::vector<Route> RouteTable::RemoteRouteSet(const std::string& origin) const {
  absl::MutexLock lock(&mu_);
  return remote_.Routes(origin);
}

size_t RouteTable::remote_route_count() const {
  absl::MutexLock lock(&mu_);
  return remote_.route_count();
}

uint64_t RouteTable::fetches() const {
  absl::MutexLock lock(&mu_);
  return fetches_;
}

void RouteTable::FlushLocal() {
  if (!local_.has_pending()) return;
  std::vector<v1::RouteDelta> deltas = local_.TakeDeltas(options_.max_routes_per_delta);
  for (auto& [id, peer] : peers_) {
    if (!peer.alive) continue;
    for (const v1::RouteDelta& delta : deltas) {
      if (peer.queue.size() >= static_cast<size_t>(options_.max_queued_deltas_per_peer)) {
        // Too far behind: what it misses shows as a gap at its next delta (or digest).
        MQTT_LOG_DEBUG("cluster: route deltas for %s dropped, queue full", id);
        peer.queue.clear();
      }
      peer.queue.push_back(std::make_shared<const v1::RouteDelta>(delta));
    }
  }
  wake_ = true;
}

void RouteTable::QueueFetch(const std::string& origin, const std::string& address) {
  if (address.empty() || fetching_.contains(origin)) return;
  fetching_[origin];
  fetch_queue_.push_back({origin, address});
  wake_ = true;
}

std::string RouteTable::AddressOf(const std::string& node_id) const {
  auto it = peers_.find(node_id);
  return it != peers_.end() && it->second.alive ? it->second.address : std::string();
}

void RouteTable::ApplyDeltaLocked(const v1::RouteDelta& delta, const std::string& sender_address) {
  if (delta.origin() == options_.node_id) return;  // we are the only writer of our routes
  if (auto it = fetching_.find(delta.origin()); it != fetching_.end()) {
    if (it->second.size() < kMaxBufferedDeltas) it->second.push_back(delta);
    return;
  }
  std::vector<RouteEvent> events;
  const RemoteRoutes::DeltaResult result = remote_.ApplyDelta(delta, &events);
  Emit(std::move(events));
  if (result == RemoteRoutes::DeltaResult::kGap) {
    std::string address = AddressOf(delta.origin());
    QueueFetch(delta.origin(), address.empty() ? sender_address : address);
    if (auto it = fetching_.find(delta.origin()); it != fetching_.end()) {
      it->second.push_back(delta);
    }
  }
}

void RouteTable::Emit(std::vector<RouteEvent> events) {
  if (events.empty()) return;
  if (events_.empty()) {
    events_ = std::move(events);
  } else {
    events_.insert(events_.end(), std::make_move_iterator(events.begin()),
                   std::make_move_iterator(events.end()));
  }
  wake_ = true;
}

void RouteTable::Loop() {
  absl::Time next_digest = absl::Now() + options_.digest_interval;
  for (;;) {
    stubs_.ReleaseRetired();  // here, off gRPC's callback threads (stub_cache.h)
    std::vector<RouteEvent> events;
    std::vector<PendingPush> pushes;
    std::vector<PendingFetch> fetches;
    std::vector<std::pair<std::string, std::string>> digests;  // (peer, address)
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithDeadline(absl::Condition(
                                +[](RouteTable* t) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                  return t->wake_ || t->phase_ != Phase::kRunning;
                                },
                                this),
                            next_digest);
      if (phase_ != Phase::kRunning) return;
      wake_ = false;
      FlushLocal();
      events.swap(events_);
      for (auto& [id, peer] : peers_) {
        if (!peer.alive || peer.in_flight || peer.queue.empty()) continue;
        // Consecutive deltas in one call, up to about one delta's worth of routes.
        auto request = std::make_shared<v1::RoutePushRequest>();
        request->set_sender_node_id(options_.node_id);
        request->set_sender_address(options_.advertise_address);
        int routes = 0;
        while (!peer.queue.empty() &&
               (request->deltas_size() == 0 ||
                routes + RouteCount(*peer.queue.front()) <= options_.max_routes_per_delta)) {
          routes += RouteCount(*peer.queue.front());
          *request->add_deltas() = *peer.queue.front();
          peer.queue.pop_front();
        }
        peer.in_flight = true;
        pushes.push_back({id, peer.address, std::move(request)});
      }
      fetches.swap(fetch_queue_);
      if (absl::Now() >= next_digest) {
        std::vector<std::string> alive;
        for (const auto& [id, peer] : peers_) {
          if (peer.alive) alive.push_back(id);
        }
        if (!alive.empty()) {
          std::uniform_int_distribution<size_t> pick(0, alive.size() - 1);
          digest_queue_.push_back(alive[pick(rng_)]);
        }
        next_digest = absl::Now() + options_.digest_interval;
      }
      for (const std::string& id : digest_queue_) {
        if (std::string address = AddressOf(id); !address.empty()) {
          digests.emplace_back(id, std::move(address));
        }
      }
      digest_queue_.clear();
      calls_in_flight_ += static_cast<int>(pushes.size() + fetches.size() + digests.size());
    }
    for (const RouteEvent& event : events) {
      const uint32_t index = NodeIndex(event.origin);
      if (event.added) {
        sink_->Added(event.origin, index, event.route);
      } else {
        sink_->Removed(event.origin, index, event.route);
      }
    }
    for (PendingPush& push : pushes) SendPush(std::move(push));
    for (PendingFetch& fetch : fetches) SendFetch(std::move(fetch));
    for (auto& [peer, address] : digests) SendDigest(std::move(peer), std::move(address));
  }
}

void RouteTable::SendPush(PendingPush push) {
  struct Call {
    grpc::ClientContext ctx;
    v1::RoutePushResponse resp;
  };
  auto call = std::make_shared<Call>();
  SetDeadline(&call->ctx, options_.rpc_timeout);
  auto stub = stubs_.Get(push.address);
  stub->async()->Push(
      &call->ctx, push.request.get(), &call->resp,
      [this, call, peer = std::move(push.peer), address = push.address,
       request = push.request](grpc::Status s) {
        if (!s.ok()) {
          // The deltas are lost for this peer: its next one shows a gap and it fetches.
          MQTT_LOG_DEBUG("cluster: route push to %s failed: %s", peer, s.error_message());
          stubs_.Drop(address);  // next call on a fresh channel, not one in reconnect backoff
        }
        {
          absl::MutexLock lock(&mu_);
          if (auto it = peers_.find(peer); it != peers_.end()) it->second.in_flight = false;
          wake_ = true;
          --calls_in_flight_;
        }
      });
}

void RouteTable::SendFetch(PendingFetch fetch) {
  struct Call {
    grpc::ClientContext ctx;
    v1::RouteFetchRequest req;
    v1::RouteFetchResponse resp;
  };
  auto call = std::make_shared<Call>();
  call->req.set_origin(fetch.origin);
  SetDeadline(&call->ctx, options_.rpc_timeout);
  stubs_.Get(fetch.address)
      ->async()
      ->Fetch(&call->ctx, &call->req, &call->resp,
              [this, call, fetch = std::move(fetch)](grpc::Status s) {
                if (!s.ok()) {
                  MQTT_LOG_DEBUG("cluster: route fetch of %s from %s failed: %s", fetch.origin,
                                 fetch.address, s.error_message());
                  if (s.error_code() != grpc::StatusCode::NOT_FOUND) stubs_.Drop(fetch.address);
                }
                absl::MutexLock lock(&mu_);
                --calls_in_flight_;
                std::vector<v1::RouteDelta> buffered;
                if (auto it = fetching_.find(fetch.origin); it != fetching_.end()) {
                  buffered = std::move(it->second);
                  fetching_.erase(it);
                }
                if (!s.ok()) {
                  // The origin itself is the authority; otherwise the next digest repairs.
                  std::string origin_address = AddressOf(fetch.origin);
                  if (!origin_address.empty() && origin_address != fetch.address) {
                    QueueFetch(fetch.origin, origin_address);
                  }
                  return;
                }
                std::vector<RouteEvent> events;
                if (remote_.ApplyState(call->resp, &events)) ++fetches_;
                Emit(std::move(events));  // before the replayed deltas' events
                std::sort(buffered.begin(), buffered.end(),
                          [](const v1::RouteDelta& a, const v1::RouteDelta& b) {
                            return std::pair(a.epoch(), a.from_version()) <
                                   std::pair(b.epoch(), b.from_version());
                          });
                // Replays what arrived meanwhile; a delta that still does not chain (a hole
                // among them) queues another fetch, which takes the rest into its buffer.
                for (const v1::RouteDelta& delta : buffered) ApplyDeltaLocked(delta, fetch.address);
              });
}

void RouteTable::SendDigest(std::string peer, std::string address) {
  struct Call {
    grpc::ClientContext ctx;
    v1::RouteDigestRequest req;
    v1::RouteDigestResponse resp;
  };
  auto call = std::make_shared<Call>();
  {
    absl::MutexLock lock(&mu_);
    call->req.set_sender_node_id(options_.node_id);
    call->req.set_sender_address(options_.advertise_address);
    v1::RouteVersion* self = call->req.add_versions();
    self->set_origin(options_.node_id);
    self->set_epoch(local_.version().epoch);
    self->set_version(local_.version().version);
    for (v1::RouteVersion& v : remote_.Digest()) *call->req.add_versions() = std::move(v);
  }
  SetDeadline(&call->ctx, options_.rpc_timeout);
  stubs_.Get(address)->async()->Digest(
      &call->ctx, &call->req, &call->resp,
      [this, call, peer = std::move(peer), address](grpc::Status s) {
        if (!s.ok()) {
          MQTT_LOG_DEBUG("cluster: route digest with %s failed: %s", peer, s.error_message());
          stubs_.Drop(address);
        }
        absl::MutexLock lock(&mu_);
        --calls_in_flight_;
        if (!s.ok()) return;
        for (const v1::RouteVersion& v : call->resp.ahead()) {
          if (v.origin() == options_.node_id || !remote_.Accepts(v.origin())) continue;
          // A delta or fetch may have brought it since the request was built.
          std::optional<RouteVersion> mine = remote_.CompleteVersion(v.origin());
          if (mine && *mine >= RouteVersion{v.epoch(), v.version()}) continue;
          QueueFetch(v.origin(), address);
        }
      });
}

grpc::Status RouteTable::HandlePush(const v1::RoutePushRequest& request) {
  absl::MutexLock lock(&mu_);
  if (phase_ != Phase::kRunning) return Unavailable();
  for (const v1::RouteDelta& delta : request.deltas()) {
    if (delta.origin() != request.sender_node_id()) continue;  // nodes push only their own
    ApplyDeltaLocked(delta, request.sender_address());
  }
  return grpc::Status::OK;
}

grpc::Status RouteTable::HandleDigest(const v1::RouteDigestRequest& request,
                                      v1::RouteDigestResponse* response) {
  absl::MutexLock lock(&mu_);
  if (phase_ != Phase::kRunning) return Unavailable();
  if (request.sender_node_id() == options_.node_id) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "digest with self");
  }
  absl::flat_hash_map<std::string, RouteVersion> theirs;
  for (const v1::RouteVersion& v : request.versions()) {
    theirs[v.origin()] = {v.epoch(), v.version()};
  }
  auto add = [](google::protobuf::RepeatedPtrField<v1::RouteVersion>* out,
                const std::string& origin, RouteVersion version) {
    v1::RouteVersion* v = out->Add();
    v->set_origin(origin);
    v->set_epoch(version.epoch);
    v->set_version(version.version);
  };
  // Ahead: what we hold newer. The requester is the authority on itself, so never about it.
  auto consider = [&](const std::string& origin, RouteVersion mine) {
    auto it = theirs.find(origin);
    if (it == theirs.end() || it->second < mine) add(response->mutable_ahead(), origin, mine);
  };
  consider(options_.node_id, local_.version());
  for (const v1::RouteVersion& v : remote_.Digest()) {
    if (v.origin() != request.sender_node_id()) consider(v.origin(), {v.epoch(), v.version()});
  }
  // Behind: what the requester holds newer; we fetch it from the requester.
  for (const auto& [origin, version] : theirs) {
    if (origin == options_.node_id || !remote_.Accepts(origin)) continue;
    std::optional<RouteVersion> mine = remote_.CompleteVersion(origin);
    if (mine && *mine >= version) continue;
    add(response->mutable_behind(), origin, version);
    QueueFetch(origin, request.sender_address());
  }
  return grpc::Status::OK;
}

grpc::Status RouteTable::HandleFetch(const v1::RouteFetchRequest& request,
                                     v1::RouteFetchResponse* response) {
  absl::MutexLock lock(&mu_);
  if (phase_ != Phase::kRunning) return Unavailable();
  if (request.origin() == options_.node_id) {
    // Pending changes go to the peers' queues first, so the snapshot's version is where the
    // next pushed delta starts.
    FlushLocal();
    *response = local_.Snapshot();
    return grpc::Status::OK;
  }
  std::optional<v1::RouteFetchResponse> state = remote_.State(request.origin());
  if (!state) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("no complete routes of ", request.origin()));
  }
  *response = std::move(*state);
  return grpc::Status::OK;
}

}  // namespace mqtt::cluster
