// SPDX-License-Identifier: Apache-2.0
#include "cluster/registry_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "node/base/log.h"

namespace mqtt::cluster {
namespace {

using Result = absl::StatusOr<std::vector<RegistryChange>>;
using Record = v1::RegistryChangeRecord;

// absl and gRPC status codes share their numbering (both are google.rpc.Code): casts convert.
grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

// The cases in which nothing was appended or the leader went away: try again, maybe elsewhere.
bool Retriable(const absl::Status& s) {
  return absl::IsFailedPrecondition(s) || absl::IsUnavailable(s);
}

void ToRecord(const RegistryHolder& holder, v1::RegistryHolderRecord* record) {
  record->set_node_id(holder.node_id);
  record->set_epoch(holder.epoch);
}

RegistryHolder FromRecord(const v1::RegistryHolderRecord& record) {
  return RegistryHolder{record.node_id(), record.epoch()};
}

void ToRecord(const RegistryChange& change, Record* record) {
  switch (change.kind) {
    case RegistryChange::Kind::kRegistered:
      record->set_kind(Record::KIND_REGISTERED);
      break;
    case RegistryChange::Kind::kReleased:
      record->set_kind(Record::KIND_RELEASED);
      break;
    case RegistryChange::Kind::kIgnored:
      record->set_kind(Record::KIND_IGNORED);
      break;
  }
  record->set_client_id(change.client_id);
  ToRecord(change.holder, record->mutable_holder());
  if (change.previous.has_value()) ToRecord(*change.previous, record->mutable_previous());
}

Result FromResponse(const v1::ProposeResponse& response) {
  std::vector<RegistryChange> changes;
  changes.reserve(response.changes_size());
  for (const Record& record : response.changes()) {
    RegistryChange& change = changes.emplace_back();
    switch (record.kind()) {
      case Record::KIND_REGISTERED:
        change.kind = RegistryChange::Kind::kRegistered;
        break;
      case Record::KIND_RELEASED:
        change.kind = RegistryChange::Kind::kReleased;
        break;
      case Record::KIND_IGNORED:
        change.kind = RegistryChange::Kind::kIgnored;
        break;
      default:
        return absl::InternalError(
            absl::StrCat("registry: unknown change kind ", record.kind(), " from the leader"));
    }
    change.client_id = record.client_id();
    change.holder = FromRecord(record.holder());
    if (record.has_previous()) change.previous = FromRecord(record.previous());
  }
  return changes;
}

}  // namespace

struct RegistryClient::Pending {
  v1::ProposeRequest request;
  Registry::ProposeCallback done;
  absl::Time deadline;  // of the whole proposal
  absl::Duration backoff;
  absl::Status last;  // the latest retriable failure, for the final error
  int attempts = 0;
  bool may_relay = true;  // false for a proposal relayed here: it goes to the leader or fails
};

// Runs forwarded proposals on the local Registry: on a follower, Registry::Propose answers
// FailedPrecondition at once, so a proposal is never forwarded further.
class RegistryClient::Handler final : public v1::RegistryService::CallbackService {
 public:
  Handler(Registry* registry, RegistryClient* client) : registry_(registry), client_(client) {}

  grpc::ServerUnaryReactor* Propose(grpc::CallbackServerContext* ctx,
                                    const v1::ProposeRequest* request,
                                    v1::ProposeResponse* response) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    // The reactor and response live until Finish; the Registry (or the client, for a relayed
    // proposal) calls back exactly once, within its timeout (or at Stop()).
    auto answer = [reactor, response](Result result) {
      if (!result.ok()) {
        reactor->Finish(ToGrpc(result.status()));
        return;
      }
      for (const RegistryChange& change : *result) ToRecord(change, response->add_changes());
      reactor->Finish(grpc::Status::OK);
    };
    if (request->relay()) {
      client_->AcceptRelayed(*request, std::move(answer));
    } else {
      registry_->Propose({request->commands().begin(), request->commands().end()},
                         std::move(answer));
    }
    return reactor;
  }

 private:
  Registry* const registry_;
  RegistryClient* const client_;
};

RegistryClient::RegistryClient(Registry* registry, AddressOf address_of,
                               RegistryClientOptions options)
    : registry_(registry),
      address_of_(std::move(address_of)),
      options_(std::move(options)),
      handler_(std::make_unique<Handler>(registry, this)),
      stubs_(options_.reconnect_backoff_ms) {
  thread_ = std::thread([this] { Loop(); });
}

RegistryClient::~RegistryClient() { Stop(); }

grpc::Service* RegistryClient::service() { return handler_.get(); }

void RegistryClient::Stop() {
  absl::MutexLock join_lock(&join_mu_);
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();  // it fails the queued retries on its way out
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* n) { return *n == 0; }, &pending_));
  }
  stubs_.ReleaseRetired();  // on the caller's thread: not one of gRPC's
}

void RegistryClient::Propose(std::vector<v1::RegistryCommand> commands,
                             Registry::ProposeCallback done) {
  auto p = std::make_shared<Pending>();
  for (v1::RegistryCommand& command : commands) *p->request.add_commands() = std::move(command);
  p->request.set_sender_node_id(options_.node_id);
  p->done = std::move(done);
  p->deadline = absl::Now() + options_.propose_timeout;
  p->backoff = options_.initial_backoff;
  bool accepted = false;
  {
    absl::MutexLock lock(&mu_);
    accepted = !stopping_;
    if (accepted) ++pending_;
  }
  if (!accepted) {
    p->done(absl::UnavailableError("registry client: stopped"));
    return;
  }
  Attempt(p);
}

void RegistryClient::AcceptRelayed(v1::ProposeRequest request, Registry::ProposeCallback done) {
  auto p = std::make_shared<Pending>();
  p->request = std::move(request);
  p->request.set_relay(false);
  p->done = std::move(done);
  p->deadline = absl::Now() + options_.rpc_timeout;  // within the relaying node's call
  p->backoff = options_.initial_backoff;
  p->may_relay = false;
  bool accepted = false;
  {
    absl::MutexLock lock(&mu_);
    accepted = !stopping_;
    if (accepted) {
      ++pending_;
      retries_.emplace(absl::Now(), p);  // run by Loop, off the gRPC thread
      wake_ = true;
    }
  }
  if (!accepted) p->done(absl::UnavailableError("registry client: stopped"));
}

void RegistryClient::Attempt(const PendingPtr& p) {
  if (registry_->IsLeader()) return AttemptLocal(p);
  const std::string leader = registry_->LeaderId();
  // A stale view naming this node: the local Registry knows better and answers.
  if (leader == options_.node_id) return AttemptLocal(p);
  const std::string address = leader.empty() ? std::string() : address_of_(leader);
  const bool relay_turn = address.empty() || p->attempts % 2 == 1;
  ++p->attempts;
  if (relay_turn && p->may_relay && options_.relays) {
    std::vector<std::pair<std::string, std::string>> peers = options_.relays();
    peers.erase(std::remove_if(peers.begin(), peers.end(),
                               [&](const auto& peer) { return peer.first == leader; }),
                peers.end());
    if (!peers.empty()) {
      const auto& [node, relay_address] = peers[p->attempts % peers.size()];
      return AttemptRelay(p, node, relay_address);
    }
  }
  if (leader.empty()) return Retry(p, absl::UnavailableError("registry: no leader known"));
  if (address.empty()) {
    return Retry(p,
                 absl::UnavailableError(absl::StrCat("registry: no address for leader ", leader)));
  }
  QueueForLeader(p);
}

void RegistryClient::QueueForLeader(const PendingPtr& p) {
  bool stopping = false;
  bool send = false;
  {
    absl::MutexLock lock(&mu_);
    stopping = stopping_;
    if (!stopping) {
      to_leader_.push_back(p);
      send = !leader_call_in_flight_;
      leader_call_in_flight_ = true;
    }
  }
  if (stopping) return Finish(p, absl::UnavailableError("registry client: stopped"));
  if (send) SendQueued();
}

void RegistryClient::SendQueued() {
  std::vector<PendingPtr> batch;
  {
    absl::MutexLock lock(&mu_);
    batch.swap(to_leader_);
    if (batch.empty()) {
      leader_call_in_flight_ = false;
      return;
    }
  }
  const std::string leader = registry_->LeaderId();
  const std::string address = leader.empty() ? std::string() : address_of_(leader);
  if (address.empty() || leader == options_.node_id) {
    {
      absl::MutexLock lock(&mu_);
      leader_call_in_flight_ = false;
    }
    for (const PendingPtr& p : batch) Attempt(p);  // local, a relay, or a retry
    return;
  }
  struct Call {
    grpc::ClientContext ctx;
    v1::ProposeRequest request;
    v1::ProposeResponse response;
    std::vector<PendingPtr> batch;
  };
  auto call = std::make_shared<Call>();
  absl::Time deadline = absl::Now() + options_.rpc_timeout;
  call->request.set_sender_node_id(options_.node_id);
  for (const PendingPtr& p : batch) {
    deadline = std::min(deadline, p->deadline);
    for (const v1::RegistryCommand& command : p->request.commands()) {
      *call->request.add_commands() = command;
    }
  }
  call->batch = std::move(batch);
  call->ctx.set_deadline(absl::ToChronoTime(deadline));
  std::shared_ptr<v1::RegistryService::Stub> stub = stubs_.Get(address);
  stub->async()->Propose(
      &call->ctx, &call->request, &call->response, [this, call, leader, address](grpc::Status s) {
        Result whole =
            s.ok() ? FromResponse(call->response) : Result(CallFailed(s, leader, address));
        if (whole.ok() && static_cast<int>(whole->size()) != call->request.commands_size()) {
          whole = absl::InternalError("registry: the leader answered a different command count");
        }
        size_t next = 0;
        for (const PendingPtr& p : call->batch) {
          if (!whole.ok()) {
            Handle(p, whole.status());
            continue;
          }
          const size_t n = p->request.commands_size();
          Handle(p, std::vector<RegistryChange>(whole->begin() + next, whole->begin() + next + n));
          next += n;
        }
        absl::MutexLock lock(&mu_);
        if (to_leader_.empty()) {
          leader_call_in_flight_ = false;
        } else {
          wake_ = true;  // Loop sends the next batch (not from this gRPC thread: stub_cache.h)
        }
      });
}

void RegistryClient::AttemptLocal(const PendingPtr& p) {
  std::vector<v1::RegistryCommand> commands(p->request.commands().begin(),
                                            p->request.commands().end());
  registry_->Propose(std::move(commands),
                     [this, p](Result result) { Handle(p, std::move(result)); });
}

void RegistryClient::AttemptRelay(const PendingPtr& p, const std::string& node,
                                  const std::string& address) {
  struct Call {
    grpc::ClientContext ctx;
    v1::ProposeRequest relayed;  // the request with `relay` set
    v1::ProposeResponse response;
  };
  auto call = std::make_shared<Call>();
  call->relayed = p->request;
  call->relayed.set_relay(true);
  call->ctx.set_deadline(
      absl::ToChronoTime(std::min(absl::Now() + options_.rpc_timeout, p->deadline)));
  std::shared_ptr<v1::RegistryService::Stub> stub = stubs_.Get(address);
  stub->async()->Propose(
      &call->ctx, &call->relayed, &call->response, [this, p, call, node, address](grpc::Status s) {
        Handle(p, s.ok() ? FromResponse(call->response) : Result(CallFailed(s, node, address)));
      });
}

absl::Status RegistryClient::CallFailed(const grpc::Status& s, const std::string& leader,
                                        const std::string& address) {
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE ||
      s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    // Maybe the transport: the next call dials afresh rather than wait out a reconnect backoff.
    // The stub is only retired here, on a gRPC callback thread; Loop frees it (stub_cache.h).
    stubs_.Drop(address);
    absl::MutexLock lock(&mu_);
    wake_ = true;
  }
  return absl::Status(
      static_cast<absl::StatusCode>(s.error_code()),
      absl::StrCat("registry leader ", leader, " at ", address, ": ", s.error_message()));
}

void RegistryClient::Handle(const PendingPtr& p, Result result) {
  if (result.ok() || !Retriable(result.status())) return Finish(p, std::move(result));
  Retry(p, result.status());
}

void RegistryClient::Retry(const PendingPtr& p, absl::Status why) {
  MQTT_LOG_DEBUG("registry client %s: retrying a proposal: %s", options_.node_id, why.ToString());
  p->last = std::move(why);
  const absl::Time due = absl::Now() + p->backoff;
  bool stopping = false;
  {
    absl::MutexLock lock(&mu_);
    stopping = stopping_;
    if (!stopping && due < p->deadline) {
      p->backoff = std::min(2 * p->backoff, options_.max_backoff);
      retries_.emplace(due, p);
      wake_ = true;
      return;
    }
  }
  Finish(p, absl::UnavailableError(absl::StrCat(
                stopping ? "registry client: stopped"
                         : absl::StrCat("no registry leader reachable within ",
                                        absl::FormatDuration(options_.propose_timeout)),
                "; last: ", p->last.message())));
}

void RegistryClient::Finish(const PendingPtr& p, Result result) {
  p->done(std::move(result));
  absl::MutexLock lock(&mu_);
  --pending_;  // the last use of `this` by this proposal
}

void RegistryClient::Loop() {
  for (;;) {
    stubs_.ReleaseRetired();
    std::vector<PendingPtr> due;
    bool stopping = false;
    bool send_queued = false;
    {
      absl::MutexLock lock(&mu_);
      const absl::Time next = retries_.empty() ? absl::InfiniteFuture() : retries_.begin()->first;
      mu_.AwaitWithDeadline(absl::Condition(
                                +[](RegistryClient* c) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                  return c->wake_ || c->stopping_;
                                },
                                this),
                            next);
      wake_ = false;
      stopping = stopping_;
      if (!to_leader_.empty() && leader_call_in_flight_ && !stopping) send_queued = true;
      if (stopping) {  // not sent yet: fail them below with the retries
        due.insert(due.end(), to_leader_.begin(), to_leader_.end());
        to_leader_.clear();
      }
      const absl::Time now = absl::Now();
      while (!retries_.empty() && (stopping || retries_.begin()->first <= now)) {
        due.push_back(std::move(retries_.begin()->second));
        retries_.erase(retries_.begin());
      }
    }
    for (const PendingPtr& p : due) {
      if (stopping) {
        Finish(p, absl::UnavailableError(
                      absl::StrCat("registry client: stopped; last: ", p->last.message())));
      } else {
        Attempt(p);
      }
    }
    if (send_queued) SendQueued();
    if (stopping) return;
  }
}

}  // namespace mqtt::cluster
