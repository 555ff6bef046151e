// SPDX-License-Identifier: Apache-2.0
#include "cluster/session_transfer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "node/base/log.h"

namespace mqtt::cluster {

v1::TakeReply ToReply(const TransferredSession& session) {
  v1::TakeReply reply;
  reply.set_found(true);
  const storage::SessionState& state = session.state;
  *reply.mutable_record() = state.record;
  for (const storage::InflightEntry& entry : state.inflight) {
    v1::TransferredInflight* out = reply.add_inflight();
    out->set_seq(entry.seq);
    *out->mutable_record() = entry.record;
    if (entry.message) *out->mutable_message() = *entry.message;
  }
  for (uint16_t packet_id : state.inbound_qos2) reply.add_inbound_qos2(packet_id);
  for (const storage::QueuedMessage& queued : session.queue) {
    v1::TransferredQueued* out = reply.add_queue();
    out->set_seq(queued.seq);
    *out->mutable_entry() = queued.entry;
    *out->mutable_message() = queued.message;
  }
  reply.set_next_seq(state.next_seq);
  return reply;
}

TransferredSession FromReply(v1::TakeReply reply) {
  TransferredSession session;
  storage::SessionState& state = session.state;
  state.record = std::move(*reply.mutable_record());
  for (v1::TransferredInflight& in : *reply.mutable_inflight()) {
    storage::InflightEntry entry;
    entry.seq = in.seq();
    entry.record = std::move(*in.mutable_record());
    if (in.has_message()) entry.message = std::move(*in.mutable_message());
    state.inflight.push_back(std::move(entry));
  }
  for (uint32_t packet_id : reply.inbound_qos2()) {
    state.inbound_qos2.push_back(static_cast<uint16_t>(packet_id));
  }
  for (v1::TransferredQueued& in : *reply.mutable_queue()) {
    session.queue.push_back(
        {in.seq(), std::move(*in.mutable_entry()), std::move(*in.mutable_message())});
  }
  state.next_seq = reply.next_seq();
  return session;
}

namespace {

grpc::Status ToGrpc(const absl::Status& s) {
  return s.ok() ? grpc::Status::OK
                : grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

absl::Status FromGrpc(const grpc::Status& s) {
  return s.ok() ? absl::OkStatus()
                : absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

}  // namespace

class SessionTransfer::Service final : public v1::SessionTransfer::CallbackService {
 public:
  explicit Service(SessionSource* source) : source_(source) {}

  grpc::ServerUnaryReactor* Take(grpc::CallbackServerContext* ctx, const v1::TakeRequest* request,
                                 v1::TakeReply* reply) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    source_->ExportSession(
        request->client_id(), request->epoch(), request->to_node(), request->discard(),
        [reactor, reply](absl::StatusOr<std::optional<TransferredSession>> exported) {
          if (!exported.ok()) return reactor->Finish(ToGrpc(exported.status()));
          if (exported->has_value()) *reply = ToReply(**exported);
          reactor->Finish(grpc::Status::OK);
        });
    return reactor;
  }

  grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* ctx,
                                   const v1::FinishRequest* request, v1::FinishReply*) override {
    source_->FinishExport(request->client_id(), request->epoch());
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* Adopt(grpc::CallbackServerContext* ctx, const v1::AdoptRequest* request,
                                  v1::AdoptReply*) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    source_->AdoptSession(request->client_id(), request->from_node(),
                          [reactor](absl::Status s) { reactor->Finish(ToGrpc(s)); });
    return reactor;
  }

  grpc::ServerUnaryReactor* Collect(grpc::CallbackServerContext* ctx,
                                    const v1::CollectRequest* request, v1::CollectReply*) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    source_->CollectSession(request->client_id(), request->from_node(),
                            [reactor](absl::Status s) { reactor->Finish(ToGrpc(s)); });
    return reactor;
  }

 private:
  SessionSource* const source_;
};

SessionTransfer::SessionTransfer(SessionTransferOptions options, Membership* membership,
                                 Forwarder* forwarder, RouteTable* routes, SessionSource* source)
    : options_(std::move(options)),
      membership_(membership),
      forwarder_(forwarder),
      routes_(routes),
      service_(std::make_unique<Service>(source)),
      finisher_([this] { RunFinishes(); }) {}

SessionTransfer::~SessionTransfer() { Stop(); }

grpc::Service* SessionTransfer::service() { return service_.get(); }

void SessionTransfer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !finisher_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (finisher_.joinable()) finisher_.join();
  stubs_.ReleaseRetired();
}

// A suspect member is asked too: on a loaded machine SWIM suspects live nodes for a moment, and a
// CONNECT that gave up on one started its client on a new session while its session was there
// (the loss checker's drain fault, 2026-12-04). A dead one is not: it would cost the deadline.
std::string SessionTransfer::ReachableAddress(const std::string& node_id) const {
  for (const MemberInfo& m : membership_->Members()) {
    if (m.node_id != node_id) continue;
    const bool reachable = m.state == MemberState::kAlive || m.state == MemberState::kSuspect;
    return reachable ? m.address : std::string();
  }
  return std::string();
}

void SessionTransfer::Fetch(const std::string& client_id, uint64_t epoch,
                            const std::string& from_node, bool discard, Fetched done) {
  const std::string address = ReachableAddress(from_node);
  if (address.empty()) {
    return done(absl::UnavailableError(absl::StrCat("node ", from_node, " is not alive")));
  }
  struct Call {
    grpc::ClientContext ctx;
    v1::TakeRequest request;
    v1::TakeReply reply;
  };
  auto call = std::make_shared<Call>();
  call->request.set_client_id(client_id);
  call->request.set_epoch(epoch);
  call->request.set_to_node(options_.node_id);
  call->request.set_discard(discard);
  call->ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.take_timeout));
  std::shared_ptr<v1::SessionTransfer::Stub> stub = stubs_.Get(address);
  stub->async()->Take(&call->ctx, &call->request, &call->reply,
                      [this, call, address, done = std::move(done)](grpc::Status s) {
                        if (!s.ok()) {
                          if (s.error_code() == grpc::StatusCode::UNAVAILABLE) stubs_.Drop(address);
                          return done(FromGrpc(s));
                        }
                        if (!call->reply.found()) return done(std::nullopt);
                        done(FromReply(std::move(call->reply)));
                      });
}

void SessionTransfer::Push(const std::string& client_id, const std::string& to_node,
                           absl::Duration timeout, std::function<void(absl::Status)> done) {
  const std::string address = ReachableAddress(to_node);
  if (address.empty()) {
    return done(absl::UnavailableError(absl::StrCat("node ", to_node, " is not alive")));
  }
  struct Call {
    grpc::ClientContext ctx;
    v1::AdoptRequest request;
    v1::AdoptReply reply;
  };
  auto call = std::make_shared<Call>();
  call->request.set_client_id(client_id);
  call->request.set_from_node(options_.node_id);
  call->ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  stubs_.Get(address)->async()->Adopt(
      &call->ctx, &call->request, &call->reply,
      [this, call, address, done = std::move(done)](grpc::Status s) {
        if (s.error_code() == grpc::StatusCode::UNAVAILABLE) stubs_.Drop(address);
        done(FromGrpc(s));
      });
}

void SessionTransfer::AskToCollect(const std::string& client_id, const std::string& holder,
                                   std::function<void(absl::Status)> done) {
  const std::string address = ReachableAddress(holder);
  if (address.empty()) {
    return done(absl::UnavailableError(absl::StrCat("node ", holder, " is not alive")));
  }
  struct Call {
    grpc::ClientContext ctx;
    v1::CollectRequest request;
    v1::CollectReply reply;
  };
  auto call = std::make_shared<Call>();
  call->request.set_client_id(client_id);
  call->request.set_from_node(options_.node_id);
  call->ctx.set_deadline(absl::ToChronoTime(absl::Now() + kCollectTimeout));
  stubs_.Get(address)->async()->Collect(
      &call->ctx, &call->request, &call->reply,
      [this, call, address, done = std::move(done)](grpc::Status s) {
        if (s.error_code() == grpc::StatusCode::UNAVAILABLE) stubs_.Drop(address);
        done(FromGrpc(s));
      });
}

void SessionTransfer::Finish(const std::string& client_id, uint64_t epoch,
                             const std::string& from_node) {
  PendingFinish pending;
  pending.request.set_client_id(client_id);
  pending.request.set_epoch(epoch);
  pending.request.set_to_node(options_.node_id);
  pending.node_id = from_node;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    finishes_.push_back(std::move(pending));
  }
  wake_.notify_all();
}

// One call at a time, synchronously: Finish calls are few (one per session moved) and small.
void SessionTransfer::RunFinishes() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !finishes_.empty(); });
    if (stopping_) return;
    PendingFinish pending = std::move(finishes_.front());
    finishes_.pop_front();
    lock.unlock();
    const std::string address = ReachableAddress(pending.node_id);
    grpc::Status status(grpc::StatusCode::UNAVAILABLE, "not alive");
    if (!address.empty()) {
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.take_timeout));
      v1::FinishReply reply;
      status = stubs_.Get(address)->Finish(&ctx, pending.request, &reply);
      if (status.error_code() == grpc::StatusCode::UNAVAILABLE) stubs_.Drop(address);
      stubs_.ReleaseRetired();
    }
    lock.lock();
    if (status.ok() || stopping_) continue;
    if (++pending.attempts >= options_.finish_attempts) {
      MQTT_LOG_WARN("client %s: node %s was not told that its session moved here: %s",
                    pending.request.client_id(), pending.node_id, status.error_message());
      continue;
    }
    wake_.wait_for(lock, absl::ToChronoNanoseconds(options_.finish_retry),
                   [this] { return stopping_; });
    finishes_.push_back(std::move(pending));
  }
}

void SessionTransfer::Relay(SessionStorage& from, const std::string& to_node,
                            const std::string& client_id, const MessagePtr& message,
                            const std::vector<uint32_t>& subscription_ids, const AckTokenPtr& ack) {
  SharedTarget target;
  target.client_id = client_id;
  target.subscription_ids = &subscription_ids;
  forwarder_->Forward(from, routes_->NodeIndex(to_node), /*durable=*/true, message, ack, &target);
}

}  // namespace mqtt::cluster
