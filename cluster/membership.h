// SPDX-License-Identifier: Apache-2.0
// Membership: which nodes form the cluster and which of them are up. SWIM-style gossip over
// gRPC (proto/cluster.proto, service mqtt.cluster.v1.Membership); the rules are in
// member_table.h. Cluster-wide view, eventually consistent: each node holds its own.
//
// Lifecycle: construct; register service() on the node's grpc::ServerBuilder (the node owns the
// server, which also hosts other cluster services); BuildAndStart; Start(); ...; Leave() for a
// graceful exit; Stop(). The server must be shut down before the Membership is destroyed.
//
// Threading: Start() runs two threads of its own. The protocol thread probes one member per
// probe_interval (blocking gRPC calls with deadlines; indirect probes in parallel through the
// callback API), expires suspicions, syncs, and retries the seeds until one answers (then it has
// synced with every seed that answered). The event thread calls listeners, one event at a time,
// in the order the changes were made. gRPC handlers and the public methods only take the
// table's mutex for short copies; no RPC is made under it. Every public method may be called
// from any thread.
//
// Transport: one cached channel per peer address (stub_cache.h), mutual TLS with cluster TLS on
// (cluster_tls.h), else plaintext.
//
// Identity: every request carries options.cluster_name; a handler refuses (FAILED_PRECONDITION,
// nothing applied) a request of another non-empty name, so that two clusters never merge through
// a wrong seed or a reused address. A peer that refuses us so is a failed probe, not a join.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cluster/member_table.h"
#include "cluster/stub_cache.h"
#include "node/base/log_limiter.h"
#include "proto/cluster.grpc.pb.h"

namespace mqtt::cluster {

struct MembershipOptions {
  std::string node_id;  // stable across restarts
  // The same on every node of the cluster; never empty. An empty name in a request is accepted
  // (a node of an older version: proto/cluster.proto, "Cluster identity").
  std::string cluster_name = "mqttd";
  std::string advertise_address;   // host:port peers dial; may be given to Start() instead
  std::vector<std::string> seeds;  // host:port; this node's own address is skipped
  uint64_t start_incarnation = 1;  // stored incarnation + 1, so a restart refutes old news
  absl::Duration probe_interval = absl::Seconds(1);
  absl::Duration probe_timeout = absl::Milliseconds(500);  // direct Ping; <= probe_interval
  int indirect_probes = 3;                                 // SWIM's k
  absl::Duration suspect_timeout = absl::Seconds(5);       // then DEAD
  absl::Duration sync_interval = absl::Seconds(30);        // full state with one random peer
  // Full state with one random DEAD member: members dead to each other (both sides of a healed
  // partition) never probe each other, so this is what brings them back together. Zero: 10
  // probe intervals.
  absl::Duration reconnect_interval = absl::ZeroDuration();
  absl::Duration remove_after = absl::Hours(1);  // DEAD/LEFT members then forgotten
  absl::Duration join_backoff_initial = absl::Milliseconds(200);
  absl::Duration join_backoff_max = absl::Seconds(5);
  int max_updates_per_message = 8;
  int retransmit_mult = 4;  // SWIM's lambda
  std::map<std::string, std::string> metadata;
  // Tests only: called on the protocol thread before probing `target_node_id`; true makes the
  // probe fail without sending anything (direct and indirect), as if the target never answered.
  std::function<bool(const std::string& target_node_id)> drop_probe_for_test;
};

class Membership {
 public:
  // Called on the event thread. Must not block and must not call Leave/Stop; it may call
  // Members().
  using Listener = std::function<void(const MemberInfo& member, MemberChange change)>;

  explicit Membership(MembershipOptions options);
  ~Membership();  // Stop()
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  // The gRPC service to register before the server starts. Until Start() and after Stop() it
  // answers UNAVAILABLE.
  grpc::Service* service();

  // Listeners added before Start() see every change; later ones see later changes.
  void Subscribe(Listener listener);

  // Starts the threads. A non-empty `advertise_address` replaces the option (a server bound to
  // port 0 knows its port only after BuildAndStart). InvalidArgument for bad options (an empty
  // cluster name among them), FailedPrecondition if already started.
  absl::Status Start(std::string_view advertise_address = {});

  // Marks this node LEFT and tells every reachable member directly, waiting at most `timeout`.
  // The node then never refutes again; call Stop() next. DeadlineExceeded if some member did
  // not confirm in time (the others will learn it by gossip).
  absl::Status Leave(absl::Duration timeout);

  // Stops the threads and waits for calls in flight (each bounded by its deadline). No
  // announcement: peers see a crash. Idempotent.
  void Stop();

  std::vector<MemberInfo> Members() const;  // this node first
  uint64_t incarnation() const;
  bool joined() const;  // a seed of our cluster answered (always true without seeds)

 private:
  class Handler;  // the gRPC service, membership.cc

  void ProtocolLoop();
  void EventLoop();
  void TryJoin();
  void ProbeOne();
  bool ProbeIndirect(const std::string& target_id, const std::string& target_address);
  void SyncWithRandomMember(bool dead) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status SyncWith(const std::string& address);
  // Applies records from a peer (and its own record, if given); publishes the changes.
  void Merge(const google::protobuf::RepeatedPtrField<v1::Member>& records,
             const v1::Member* sender = nullptr) ABSL_LOCKS_EXCLUDED(mu_);
  void Publish(std::vector<MemberEvent> events) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddUpdates(google::protobuf::RepeatedPtrField<v1::Member>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Running() const ABSL_LOCKS_EXCLUDED(mu_);
  void CallStarted() ABSL_LOCKS_EXCLUDED(mu_);
  void CallDone() ABSL_LOCKS_EXCLUDED(mu_);

  // gRPC handlers (Handler forwards here); they never wait on a peer under mu_.
  grpc::Status HandlePing(const v1::PingRequest& request, v1::PingResponse* response);
  void HandlePingReq(const v1::PingReqRequest& request, v1::PingReqResponse* response,
                     std::function<void(grpc::Status)> done);
  grpc::Status HandleSync(const v1::SyncRequest& request, v1::SyncResponse* response);
  grpc::Status HandleLeave(const v1::LeaveRequest& request);
  // OK for our cluster name or an empty one; otherwise the refusal every handler returns before
  // it applies anything of the request.
  grpc::Status CheckClusterName(const std::string& name, const v1::Member& sender);
  // Logs (error, rate-limited) a refusal by `address` for a cluster name mismatch; other errors
  // are not logged here.
  void LogIfRefusedByName(const std::string& address, const grpc::Status& status);

  MembershipOptions options_;
  std::unique_ptr<Handler> handler_;

  mutable absl::Mutex mu_;
  MemberTable table_ ABSL_GUARDED_BY(mu_);
  enum class Phase { kNew, kRunning, kStopping, kStopped };
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kNew;
  bool joined_ ABSL_GUARDED_BY(mu_) = false;
  int calls_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<MemberEvent> events_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> probe_order_ ABSL_GUARDED_BY(mu_);  // this round, shuffled
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  std::vector<Listener> listeners_ ABSL_GUARDED_BY(mu_);

  StubCache<v1::Membership> stubs_;

  // The name-mismatch lines, once a minute per peer address and direction: a peer of another
  // cluster keeps trying (joins retry with backoff, probes every period), and one line a minute
  // is enough to see it. Used by gRPC threads and the protocol thread; its lock is its own.
  KeyedLogLimiter name_mismatch_log_;

  std::thread protocol_thread_;
  std::thread event_thread_;
};

}  // namespace mqtt::cluster
