// SPDX-License-Identifier: Apache-2.0
// RegistryNode: this node's part in the cluster's client-id registry (issue 12,
// docs/cluster-sessions.md): its Registry (the Raft member, cluster/registry.h), its
// RegistryClient (proposals from this node, wherever the leader is, and the RegistryService
// other nodes call), and the two decisions Raft leaves to its user:
//
// - Bootstrap, once in the life of a cluster, by a set of nodes named in advance
//   (`bootstrap_members`; the Helm chart names the first pods of the StatefulSet). A node whose
//   raft directory holds state just starts. A pristine node in the set waits until every member
//   of the set is alive in the membership, advertising its raft address, and then bootstraps
//   the set as the voters, even if others of the set did so already: every member of the set
//   writes the identical first entry, which libraft allows (a member that lost its data and
//   bootstraps again rejoins the same log). Joining instead when a peer is configured already
//   was tried and is wrong: a set member that joins holds no configuration and cannot vote, so
//   the set's bootstrapped members wait for votes that never come. A pristine node outside the
//   set joins: it starts without bootstrapping and waits for the leader to add it (below).
//   Without a set, a node without seeds bootstraps alone and a node with seeds joins.
//   Why a named set rather than "the N smallest ids among those I see": nodes that start
//   together see different members first, and two different sets would make two registries.
// - Configuration, on the leader, from the membership, every `tick`: an alive member that is
//   not in the configuration is added as a standby (replicates, does not vote), standbys are
//   promoted until there are 1, 3 or 5 voters (the largest odd number <= 5 the alive members
//   allow: an even count adds round trips and no fault tolerance), a voter the membership
//   declares dead is demoted while an alive standby can take its vote, a member that left is
//   removed from the configuration, and one the membership forgot (dead longer than
//   remove_after) is removed and its registry entries dropped (DropNode). One change at a time,
//   decided by PlanRegistryConfigChange (registry_plan.h, which gives the precedence and rules).
//
// Lifecycle: construct, register service() on the cluster's gRPC server, start the server and
// the membership, Start(), use, Stop() (before the server and the membership stop).
//
// Threading: Start() runs one thread of its own (the decisions above); Propose and the
// accessors may be called from any thread. `listener` runs on the registry's raft thread
// (Registry::Listener's rules).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cluster/membership.h"
#include "cluster/registry.h"
#include "cluster/registry_client.h"
#include "cluster/registry_plan.h"
#include "node/base/log_limiter.h"
#include "node/session/remote.h"

namespace mqtt::cluster {

struct RegistryNodeOptions {
  // node_id, raft_address, raft_listen and data_dir are required; the rest tunes Raft.
  RegistryOptions registry;
  std::vector<std::string> bootstrap_members;  // node ids; see above
  bool has_seeds = false;
  absl::Duration tick = absl::Milliseconds(200);
  RegistryClientOptions client;  // node_id is filled in
};

class RegistryNode {
 public:
  RegistryNode(RegistryNodeOptions options, Membership* membership,
               Registry::Listener listener = nullptr);
  ~RegistryNode();  // Stop()
  RegistryNode(const RegistryNode&) = delete;
  RegistryNode& operator=(const RegistryNode&) = delete;

  grpc::Service* service() { return client_->service(); }

  // Starts the thread; a node whose raft directory holds state opens its Registry at once (its
  // errors, e.g. a busy raft port, are returned). InvalidArgument for bad options.
  absl::Status Start();
  void Stop();  // idempotent; not from a callback

  // Through the leader, from any node (RegistryClient::Propose). Until this node's registry has
  // started, proposals are retried (they fail with Unavailable after the client's timeout).
  void Propose(std::vector<v1::RegistryCommand> commands, Registry::ProposeCallback done) {
    client_->Propose(std::move(commands), std::move(done));
  }

  // True once this node is in a configuration and knows a leader: proposals can succeed.
  bool ready() const;
  Registry& registry() { return *registry_; }

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // Pristine node: returns the bootstrap list to start with (empty: join), or nullopt to wait.
  std::optional<std::vector<RegistryPeer>> DecideBootstrap();
  void Reconcile() ABSL_LOCKS_EXCLUDED(mu_);
  bool StartRegistry(std::vector<RegistryPeer> bootstrap);  // logs failures
  void Change(const char* what, const std::string& node_id,
              const std::function<void(Registry::DoneCallback)>& start) ABSL_LOCKS_EXCLUDED(mu_);
  void ChangeDone(const char* what, const std::string& node_id, absl::Status status)
      ABSL_LOCKS_EXCLUDED(mu_);

  const RegistryNodeOptions options_;
  Membership* const membership_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<RegistryClient> client_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool change_in_flight_ ABSL_GUARDED_BY(mu_) = false;  // one configuration change at a time
  bool started_registry_ = false;                       // the thread's (and Start's) own
  LogLimiter wait_log_{absl::Seconds(10)};              // DecideBootstrap's; deferred by Run()
  LogLimiter start_error_log_{absl::Seconds(30)};       // StartRegistry's
  std::thread thread_;
};

// The broker's view of the registry (node/session/remote.h): a claim is a Register of the client
// id on this node, through the leader; a release is a Release of that exact epoch.
// `allow_without_majority`: a claim that cannot commit (no leader reachable, e.g. on the minority
// side of a partition) succeeds with epoch 0 instead of failing: the connection is then not
// registered anywhere, and two sessions with one client id may live until it reconnects.
class ClientClaims final : public ClientRegistry {
 public:
  ClientClaims(RegistryNode* node, std::string node_id, bool allow_without_majority)
      : node_(node),
        node_id_(std::move(node_id)),
        allow_without_majority_(allow_without_majority) {}

  void Claim(const std::string& client_id, ClaimDone done) override;
  bool StillHolds(const std::string& client_id, uint64_t epoch) const override;
  void Release(const std::string& client_id, uint64_t epoch) override;
  void ClaimFrom(const std::string& client_id, const std::string& holder, ClaimDone done) override;
  std::optional<Holder> HolderOf(const std::string& client_id) const override;
  void Reclaim(const std::string& client_id, ClaimDone done) override;

 private:
  void Propose(v1::RegistryCommand command, const std::string& client_id,
               bool allow_without_majority, ClaimDone done);

  RegistryNode* const node_;
  const std::string node_id_;
  const bool allow_without_majority_;
};

}  // namespace mqtt::cluster
