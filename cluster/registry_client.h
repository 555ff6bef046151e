// SPDX-License-Identifier: Apache-2.0
// RegistryClient: the registry's entry point on every node (issue 12, step 2b; the registry's
// "frontend"). Propose() works on any node: on the Raft leader it proposes to the local Registry
// (cluster/registry.h); elsewhere it sends the commands to the leader's RegistryService
// (proto/registry_service.proto) on the cluster port. service() is that service: it runs what
// other nodes send on the local Registry, which answers FailedPrecondition if this node is not the
// leader (so a proposal is never forwarded twice). Batching stays in Registry: the leader puts the
// proposals of every caller, local or forwarded, into shared entries.
//
// Relaying: see RegistryClientOptions::relays.
//
// Retries: while no leader is known, or the one tried answers FailedPrecondition (not the leader:
// nothing was appended) or Unavailable (down, stopping, or it lost leadership), the proposal is
// tried again after a short backoff (doubling from initial_backoff up to max_backoff) until
// propose_timeout has passed since Propose; then it fails with Unavailable "no registry leader
// reachable". Any other outcome is final, e.g. DeadlineExceeded (the leader could not commit
// within its proposal timeout, or the call to it timed out: rpc_timeout, or what was left of
// propose_timeout). Unavailable from a leader may mean the entry commits anyway, so a retried
// command may be applied twice: a second Register takes a newer epoch (its "previous" then names
// the same node at the first epoch; the real previous holder saw the first one applied), a second
// Release of the same epoch is ignored.
//
// Lifecycle: construct (starts one thread), register service() on the node's grpc::ServerBuilder,
// use, Stop() (or destroy). The gRPC server must be shut down before the RegistryClient is
// destroyed, and `registry` must outlive it.
//
// Threading: the service and every method may be used from any thread, except Propose from gRPC's
// callback threads: its first attempt runs on the caller's thread and may hold the last reference
// to a retired stub, which must not be freed there (stub_cache.h). The client's own thread runs
// the retry timers and frees the stubs that failed calls retired. `done` runs on the Registry's
// raft thread, a gRPC callback thread or this client's thread, or inline in Propose after Stop();
// it must not block and must not call Stop().
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cluster/registry.h"
#include "cluster/stub_cache.h"
#include "proto/registry_service.grpc.pb.h"

namespace mqtt::cluster {

struct RegistryClientOptions {
  std::string node_id;                                 // this node, for logs
  absl::Duration rpc_timeout = absl::Seconds(6);       // each call to the leader
  absl::Duration propose_timeout = absl::Seconds(10);  // from Propose, retries included
  absl::Duration initial_backoff = absl::Milliseconds(10);
  absl::Duration max_backoff = absl::Milliseconds(200);
  int reconnect_backoff_ms = 100;  // StubCache: a restarted leader is reachable again soon
  // The other alive members, as (node id, cluster address): a proposal that could not reach the
  // leader (or knows none) is tried through one of them every other attempt, which passes it on
  // to the leader (a node cut off from the leader but not from the others can still register).
  // Null: no relaying.
  std::function<std::vector<std::pair<std::string, std::string>>()> relays;
};

class RegistryClient {
 public:
  // Maps a node id to its cluster (gRPC) address, HOST:PORT; empty if unknown. Called from any
  // thread.
  using AddressOf = std::function<std::string(const std::string& node_id)>;

  RegistryClient(Registry* registry, AddressOf address_of, RegistryClientOptions options);
  ~RegistryClient();  // Stop()
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  grpc::Service* service();

  // Fails the proposals waiting for a retry with Unavailable, waits for those in flight (each
  // bounded by rpc_timeout or the Registry's proposal_timeout) and joins the thread. Later
  // proposals fail at once with Unavailable. Idempotent. Not from a callback.
  void Stop();

  // Applies `commands` through the leader; `done` is called exactly once, with the changes of
  // these commands (as Registry::Propose) or the error (see the retry rules above). It comes
  // within about propose_timeout, except that a call or local proposal in flight at that time is
  // awaited (bounded by rpc_timeout or the Registry's proposal_timeout).
  void Propose(std::vector<v1::RegistryCommand> commands, Registry::ProposeCallback done);

 private:
  class Handler;
  struct Pending;  // one Propose across its attempts
  using PendingPtr = std::shared_ptr<Pending>;

  void Attempt(const PendingPtr& p) ABSL_LOCKS_EXCLUDED(mu_);
  void AttemptLocal(const PendingPtr& p) ABSL_LOCKS_EXCLUDED(mu_);
  // Through `node`, which passes it on to the leader (RegistryClientOptions::relays).
  void AttemptRelay(const PendingPtr& p, const std::string& node, const std::string& address)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Batches `p` for the leader (see to_leader_); sends now if no call is in flight.
  void QueueForLeader(const PendingPtr& p) ABSL_LOCKS_EXCLUDED(mu_);
  // Sends what waits in to_leader_ to the current leader in one call (or retries it all when
  // no leader is known). Only with leader_call_in_flight_ taken by the caller.
  void SendQueued() ABSL_LOCKS_EXCLUDED(mu_);
  // Queues a proposal relayed here by another node for the client's thread (not a gRPC one).
  void AcceptRelayed(v1::ProposeRequest request, Registry::ProposeCallback done)
      ABSL_LOCKS_EXCLUDED(mu_);
  // A failed call's status as the proposer sees it; retires the stub if the transport may be
  // at fault.
  absl::Status CallFailed(const grpc::Status& s, const std::string& leader,
                          const std::string& address) ABSL_LOCKS_EXCLUDED(mu_);
  void Handle(const PendingPtr& p, absl::StatusOr<std::vector<RegistryChange>> result)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Retry(const PendingPtr& p, absl::Status why) ABSL_LOCKS_EXCLUDED(mu_);
  void Finish(const PendingPtr& p, absl::StatusOr<std::vector<RegistryChange>> result)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);

  Registry* const registry_;
  const AddressOf address_of_;
  const RegistryClientOptions options_;
  std::unique_ptr<Handler> handler_;
  StubCache<v1::RegistryService> stubs_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;  // stubs retired, or a retry queued
  // Every Propose not yet finished: its callbacks use `this` until Finish returns.
  int pending_ ABSL_GUARDED_BY(mu_) = 0;
  std::multimap<absl::Time, PendingPtr> retries_ ABSL_GUARDED_BY(mu_);  // by due time
  // Group commit at the sender: proposals for the leader wait here while one call to it is in
  // flight and then go together in the next call (one RPC per batch, not per CONNECT).
  std::vector<PendingPtr> to_leader_ ABSL_GUARDED_BY(mu_);
  bool leader_call_in_flight_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex join_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // serializes Stop()
  std::thread thread_;
};

}  // namespace mqtt::cluster
