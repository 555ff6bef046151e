// SPDX-License-Identifier: Apache-2.0
// Registry: the cluster's client-id registry (issue 12, docs/cluster-sessions.md), a
// RegistryState (registry_state.h) replicated by Raft: Debian's libraft on its libuv transport
// (raft_uv_tcp, a port of its own; with `tls`, the same over mutual TLS: raft_tls_transport.h).
// Every node applies every committed entry, in log order, so
// every node's Holder() converges on the same answer; only the leader appends.
//
// Proposals: only the leader can append. Elsewhere Propose fails at once with FailedPrecondition
// "not the leader (leader is X at ADDR)" (RegistryClient, registry_client.h, forwards to the
// leader). The leader batches: proposals that arrive while one entry is in flight all go into the
// next entry (one RegistryBatch: group commit), and each caller gets the changes of its own
// commands. Outcomes: OK (committed and applied, with the changes), FailedPrecondition (not
// appended: not the leader), Unavailable (leadership lost or Stop(): the entry may or may not
// commit later), DeadlineExceeded (proposal_timeout passed: same), InvalidArgument (the batch did
// not parse).
//
// Bootstrap: a node whose raft directory is pristine and whose `bootstrap` list is not empty
// bootstraps that list as the initial voters (every node of the initial set passes the same list;
// libraft allows each to bootstrap the identical configuration). A directory that holds state
// never bootstraps again. An empty list means "join": wait until a leader adds this node.
//
// Log format: each command entry is one v1::RegistryBatch, padded to a multiple of 8 bytes (as
// libraft requires) by an unknown length-delimited field 15 that parsers skip; snapshots are
// v1::RegistrySnapshot.
//
// Ids: the raft id of a node is RaftId(node_id) (a 64-bit hash, never 0). Raft itself only knows
// ids and addresses; node ids come from the bootstrap list, AddMember and NoteMember.
//
// Lifecycle: construct, Start(), use, Stop() (or destroy). A stopped Registry cannot start again;
// a restart is a new Registry on the same data_dir. The process must ignore SIGPIPE (mqttd does):
// libuv writes to peer sockets that may have closed.
//
// Threading: Start() runs one thread with a libuv loop that owns everything raft; the public
// methods hand it work through a mutex-protected inbox and a uv_async_t. Every callback (proposal,
// member change, listener) runs on that thread, except that a Propose/AddMember/RemoveMember on a
// Registry that is not running calls its callback inline with Unavailable. Callbacks must not block
// and must not call Stop(); they may call the other methods. Every public method may be called
// from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cluster/cluster_tls.h"
#include "cluster/registry_state.h"
#include "proto/registry.pb.h"

namespace mqtt::cluster {

struct RegistryPeer {
  std::string node_id;
  std::string raft_address;  // HOST:PORT
};

struct RegistryOptions {
  std::string node_id;
  std::string raft_address;  // HOST:PORT peers connect to (this node's address in the config)
  std::string raft_listen;   // IPv4 HOST:PORT to bind, same port; empty: raft_address
  std::string data_dir;      // raft's log, metadata and snapshots; created if missing
  std::vector<RegistryPeer> bootstrap;  // see above; must name this node if not empty
  absl::Duration election_timeout = absl::Seconds(1);  // libraft randomizes it to [1x, 2x)
  absl::Duration heartbeat_timeout = absl::Milliseconds(100);
  absl::Duration connect_retry_delay = absl::Milliseconds(500);  // to a peer that is down
  absl::Duration proposal_timeout = absl::Seconds(5);
  absl::Duration member_change_timeout = absl::Seconds(30);  // a promotion waits for catch-up
  unsigned snapshot_threshold = 1024;  // entries between snapshots, at least (see below)
  unsigned snapshot_trailing = 128;    // entries kept behind a snapshot for slow followers
  int max_batch_commands = 4096;       // per log entry (a proposal is never split)
  // Cluster TLS files: set, the Raft port speaks mutual TLS with them (raft_tls_transport.h);
  // empty, plaintext raft_uv_tcp.
  ClusterTlsFiles tls;
};

// Entries between two snapshots with `clients` in the registry: `configured`, or a quarter of
// `clients` when that is more, so that the cost of snapshots per entry stays flat as the
// registry grows (registry.cc, ScaleSnapshotThreshold).
unsigned SnapshotThresholdFor(unsigned configured, size_t clients);

struct RegistryMember {
  std::string node_id;  // empty if this node has not been told it
  uint64_t raft_id = 0;
  std::string raft_address;
  enum class Role { kVoter, kStandby, kSpare } role = Role::kSpare;
};

struct RegistryStats {
  uint64_t entries_applied = 0;     // command entries applied to the state here
  uint64_t entries_proposed = 0;    // raft_apply calls made here as leader (one per batch)
  uint64_t snapshots_taken = 0;     // by this node's state machine
  uint64_t snapshots_restored = 0;  // at start or installed from the leader
};

class Registry {
 public:
  using ProposeCallback = std::function<void(absl::StatusOr<std::vector<RegistryChange>>)>;
  using DoneCallback = std::function<void(absl::Status)>;
  // Every change of every applied entry, in log order, on the raft thread. After a restart the
  // entries after the last snapshot are applied (and reported) again; a snapshot installed from
  // the leader replaces the state without reporting anything.
  using Listener = std::function<void(const RegistryChange&)>;

  explicit Registry(RegistryOptions options, Listener listener = nullptr);
  ~Registry();  // Stop()
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Opens the raft directory (bootstrapping if asked and pristine), binds the raft port and
  // starts the thread. InvalidArgument for bad options, FailedPrecondition if already started,
  // else libraft's error (e.g. a port in use); after such an error the Registry is as before
  // Start and Start may be called again.
  absl::Status Start();
  // The same with `bootstrap` in place of the options' list: for a node that decides whom to
  // bootstrap with only once it has met its peers (cluster/registry_node.h).
  absl::Status Start(std::vector<RegistryPeer> bootstrap);
  // True if `data_dir` holds no raft state yet: a Start there would bootstrap (given a list) or
  // wait to be added; false once a configuration was ever stored there.
  static bool IsPristine(const std::string& data_dir);
  // Closes raft and the loop and joins the thread. Queued proposals and changes get Unavailable
  // at once; the entry in flight either commits or gets Unavailable. Waits (up to 2 s) for the
  // log writes in flight first. Idempotent. Not from a callback.
  void Stop();

  // Applies `commands` in one entry with others' (see above); `done` is called exactly once.
  // An empty list succeeds at once with no changes.
  void Propose(std::vector<v1::RegistryCommand> commands, ProposeCallback done);

  // Leader only (else FailedPrecondition). AddMember makes `node_id` a member at `raft_address`
  // with the given role (voter, or standby: replicates, does not vote), adding it first if it is
  // not one (raft_add, then raft_assign); OK if it already has that role. AlreadyExists if it is a
  // member at another address. RemoveMember: raft_remove; NotFound if it is no member. Changes run
  // one at a time, in order; each `done` is called once, DeadlineExceeded after
  // member_change_timeout.
  void AddMember(std::string node_id, std::string raft_address, bool voter, DoneCallback done);
  void RemoveMember(std::string node_id, DoneCallback done);
  // Tells the registry a node id, so that LeaderId() and Members() can name its raft id.
  void NoteMember(std::string_view node_id);

  // As last seen by the raft thread (it may lag by one loop iteration).
  bool IsLeader() const;
  std::string LeaderId() const;                 // empty if no leader is known or its id is not
  std::string LeaderAddress() const;            // raft address; empty if no leader is known
  std::vector<RegistryMember> Members() const;  // the latest configuration (maybe uncommitted)

  // The local state (applied entries only; a follower may lag the leader).
  std::optional<RegistryHolder> Holder(std::string_view client_id) const;
  size_t size() const;
  RegistryStats stats() const;

  static uint64_t RaftId(std::string_view node_id);

 private:
  struct Loop;  // libuv and libraft objects and the raft thread's queues (registry.cc)
  struct Proposal;
  struct MemberOp;
  friend struct Loop;

  std::string NodeName(uint64_t raft_id) const;

  RegistryOptions options_;  // const but for `bootstrap`, which Start(bootstrap) may replace
  const Listener listener_;
  std::unique_ptr<Loop> loop_;

  // The inbox: work for the raft thread, and what it publishes for other threads.
  mutable absl::Mutex mu_;
  enum class Phase { kNew, kRunning, kStopping, kStopped };
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kNew;
  std::vector<std::unique_ptr<Proposal>> inbox_proposals_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<MemberOp>> inbox_ops_ ABSL_GUARDED_BY(mu_);
  bool leader_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t leader_raft_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::string leader_address_ ABSL_GUARDED_BY(mu_);
  std::vector<RegistryMember> members_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::string> names_ ABSL_GUARDED_BY(mu_);  // raft id -> node id

  // Written on the raft thread (state machine callbacks), read anywhere.
  mutable absl::Mutex state_mu_ ABSL_ACQUIRED_AFTER(mu_);
  RegistryState state_ ABSL_GUARDED_BY(state_mu_);
  std::atomic<uint64_t> entries_applied_{0};
  std::atomic<uint64_t> entries_proposed_{0};
  std::atomic<uint64_t> snapshots_taken_{0};
  std::atomic<uint64_t> snapshots_restored_{0};

  absl::Mutex join_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // serializes Stop()'s join
  std::thread thread_;
};

}  // namespace mqtt::cluster
