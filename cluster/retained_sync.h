// SPDX-License-Identifier: Apache-2.0
// RetainedSync: retained messages replicated to every node of the cluster and persisted there
// (issue 11, "Retained messages"). It replaces the broker's own retained update
// (mqtt::RetainedReplication, node/session/remote.h), so a wildcard subscribe is still answered
// from the local Router. The rules (versions, last writer wins, tombstones and their
// collection, expiry, bucket hashes) are in retained_index.h; this file adds the transport:
// gRPC service mqtt.cluster.v1.RetainedSync (proto/retained.proto), the store and the thread.
//
// Versions: a local publish is stamped (Hlc::Now(), this node id) under the mutex that also
// applies remote changes, and the clock has observed every remote version received, so a local
// publish always replaces what this node holds; then the router, and the publisher's batch.
//
// Protocol: a local change is queued for every live peer and pushed promptly (one Push in
// flight per peer, a topic queued twice is sent once, with its latest state; a failed push is
// not retried: the next sync repairs it). Every `sync_interval` with one random live peer, and
// at once with a peer that becomes alive: Digest (bucket hashes), then Reconcile for the
// buckets that differ, which brings what the peer holds newer and tells the peer what to push.
// So a node that joins late, or comes back after being down or cut off, gets every retained
// message and every delete it missed, and brings its own.
//
// Tombstones: kept (and persisted) until every member has been seen holding them, DEAD members
// included (a member that comes back with an older copy would otherwise bring the message back);
// LEFT and removed members no longer count. None is collected in the first
// `collect_after_start` after Start, while the membership is still being learnt. Known limit: a
// node that returns after being removed (down longer than --cluster-remove-after) or after
// leaving can bring back a message whose delete was collected meanwhile (as Cassandra's
// gc_grace_seconds).
//
// Store: the record always ends as the index says, whatever order writes land in. Local
// changes go into the publisher's batch (holding its acknowledgement, and a token of ours that
// tells us when the batch is written: if the topic moved on meanwhile, it is written again).
// Remote changes, expiry and collection are written by the thread, and each written topic is
// checked again afterwards (a worker's batch may have landed in between). The index is in
// memory a few ms before the record is in the WAL: a crash in that window loses the change on
// this node, which the next sync brings back from its peers (a local change was not
// acknowledged yet). Were it a tombstone that peers then collect, their collected copy still
// replaces the older message this node comes back with, if it comes back within
// tombstone_grace.
//
// Lifecycle: construct; register service() on the node's grpc::ServerBuilder; BuildAndStart;
// Start() (after Broker::Recover, before the broker takes clients: it loads the versions from
// the store); feed it membership changes; Stop(). The server must be shut down, and the broker
// must have stopped calling PublishRetained, before the RetainedSync is destroyed. Router and
// store outlive it.
//
// Threading: PublishRetained runs on the publishing worker and never waits on I/O (it takes the
// mutex for in-memory work and wakes the thread). Start() runs one background thread: pushes,
// syncs and every RPC through the gRPC callback API, store writes, expiry and collection. gRPC
// handlers and the public methods take the mutex for short in-memory work only; no RPC and no
// store write is made under it. Every public method may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cluster/hlc.h"
#include "cluster/member_table.h"
#include "cluster/retained_index.h"
#include "cluster/stub_cache.h"
#include "node/router/router.h"
#include "node/session/remote.h"
#include "proto/retained.grpc.pb.h"
#include "storage/store.h"

namespace mqtt::cluster {

struct RetainedSyncOptions {
  std::string node_id;
  std::string advertise_address;  // for logs; may be given to Start() instead
  absl::Duration sync_interval = absl::Seconds(10);
  absl::Duration rpc_timeout = absl::Seconds(5);  // each Push, Digest and Reconcile
  // A collected tombstone is remembered in memory this long (see retained_index.h).
  absl::Duration tombstone_grace = absl::Minutes(10);
  absl::Duration collect_after_start = absl::Minutes(1);
  // Per Push request, Reconcile listing and answer, and store batch (one larger message still
  // goes alone). The peer's server must accept the largest retained message plus this.
  size_t max_batch_bytes = 1 << 20;
  Hlc::WallClock wall_clock;  // tests; default: the system clock
};

// One topic as `mqttctl retained` shows it.
struct RetainedEntryInfo {
  std::string topic;
  uint64_t hlc = 0;
  std::string origin;
  bool tombstone = false;
  size_t payload_bytes = 0;
  size_t held_by = 0;  // tombstones: members seen holding it
};

struct RetainedSyncStats {
  uint64_t periods = 0;  // sync_interval periods elapsed (expiry, collection, one sync each)
  uint64_t local_changes = 0;
  uint64_t remote_applied = 0;  // remote changes that replaced what was held
  uint64_t pushes = 0;          // Push calls that succeeded
  uint64_t push_failures = 0;
  uint64_t digests = 0;     // Digest calls made that succeeded
  uint64_t reconciles = 0;  // Reconcile calls made that succeeded
  uint64_t expired = 0;     // messages turned into tombstones by their message expiry
  uint64_t tombstones_collected = 0;
  uint64_t store_writes = 0;
  uint64_t store_errors = 0;
  size_t entries = 0;     // topics held, tombstones included, collected ones not
  size_t tombstones = 0;  // not collected
};

class RetainedSync final : public RetainedReplication {
 public:
  // `router` outlives this object; `store` may be null (nothing persisted) or outlives it.
  RetainedSync(RetainedSyncOptions options, Router* router, storage::Store* store);
  ~RetainedSync();  // Stop()
  RetainedSync(const RetainedSync&) = delete;
  RetainedSync& operator=(const RetainedSync&) = delete;

  // The gRPC service to register before the server starts. Until Start() and after Stop() it
  // answers UNAVAILABLE.
  grpc::Service* service();

  // Loads the versions and tombstones from the store (the broker's Recover has put the live
  // messages in the router; any it did not put there are set now) and starts the thread. A
  // non-empty `advertise_address` replaces the option. InvalidArgument for bad options,
  // FailedPrecondition if already started, the store's error if the load fails.
  absl::Status Start(std::string_view advertise_address = {});
  // Stops the thread and waits for calls in flight (each bounded by rpc_timeout). Idempotent.
  // Later local publishes are still applied and persisted, not replicated.
  void Stop();

  // RetainedReplication: on the publishing worker; see the file comment.
  uint64_t PublishRetained(SessionStorage& storage, const MessagePtr& message,
                           const AckTokenPtr& ack) override;

  // Membership hooks (OnMemberChange maps a Membership listener's events onto them).
  // PeerAlive: push to it from now on and sync with it at once. PeerDead: stop pushing; it still
  // counts for tombstones. PeerGone (left or removed): forgotten.
  void PeerAlive(const std::string& node_id, const std::string& address);
  void PeerDead(const std::string& node_id);
  void PeerGone(const std::string& node_id);
  void OnMemberChange(const MemberInfo& member, MemberChange change);

  // Introspection (tests, admin): every topic held, sorted, collected tombstones left out.
  std::vector<RetainedEntryInfo> Snapshot() const;
  RetainedSyncStats stats() const;

 private:
  class Handler;  // the gRPC service, retained_sync.cc
  using Item = RetainedIndex::Item;

  struct Peer {
    std::string address;
    bool alive = true;
    bool in_flight = false;                    // a Push
    absl::flat_hash_set<std::string> pending;  // topics to push, latest state at send time
  };
  struct PendingPush {
    std::string peer;
    std::string address;
    std::vector<Item> items;
  };
  struct PendingReconcile {
    std::string peer;
    std::vector<uint32_t> buckets;
  };
  struct Work {  // what one turn of the thread does outside the mutex
    std::vector<Item> writes;
    std::vector<PendingPush> pushes;
    std::vector<std::pair<std::string, std::string>> digests;  // (peer, address)
    std::vector<PendingReconcile> reconciles;
  };

  void Loop();
  void Tick(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TakeWork(Work* work) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status LoadFromStore() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LoadRecord(const std::string& topic, const storage::v1::RetainedRecord& record)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies remote changes (already converted outside the lock); updates router and store.
  void ApplyRemote(std::vector<Item> changes, const std::string& from)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void QueueForPeers(const std::string& topic) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string AddressOf(const std::string& node_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteStore(std::vector<Item> items) ABSL_LOCKS_EXCLUDED(mu_);
  void SendPush(PendingPush push) ABSL_LOCKS_EXCLUDED(mu_);
  void SendDigest(std::string peer, std::string address) ABSL_LOCKS_EXCLUDED(mu_);
  void SendReconcile(PendingReconcile reconcile) ABSL_LOCKS_EXCLUDED(mu_);
  // Applies what the peer held newer, queues what it wants, notes what it holds.
  void ReconcileDone(const std::string& peer, const v1::RetainedReconcileRequest& request,
                     const v1::RetainedReconcileResponse& response, std::vector<Item> newer)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CallDone() ABSL_LOCKS_EXCLUDED(mu_);
  // A worker's batch holding local change `seq` is written: if the topic moved on meanwhile,
  // that batch may have put an older record over a newer one, so the topic is written again.
  void LocalCommitted(uint64_t seq) ABSL_LOCKS_EXCLUDED(mu_);

  // gRPC handlers (Handler forwards here); in-memory work only.
  grpc::Status HandlePush(const v1::RetainedPushRequest& request);
  grpc::Status HandleDigest(const v1::RetainedDigestRequest& request,
                            v1::RetainedDigestResponse* response);
  grpc::Status HandleReconcile(const v1::RetainedReconcileRequest& request,
                               v1::RetainedReconcileResponse* response);

  RetainedSyncOptions options_;
  Router* const router_;
  storage::Store* const store_;
  std::unique_ptr<Handler> handler_;
  class CommitListener;  // an AckListener forwarding to LocalCommitted
  std::shared_ptr<CommitListener> commit_listener_;
  Hlc hlc_;

  mutable absl::Mutex mu_;
  enum class Phase { kNew, kRunning, kStopping, kStopped };
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kNew;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  int calls_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time started_at_ ABSL_GUARDED_BY(mu_);
  RetainedIndex index_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Peer> peers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> dirty_ ABSL_GUARDED_BY(mu_);  // topics to write to the store
  std::vector<std::string> digest_queue_ ABSL_GUARDED_BY(mu_);   // peers to sync with now
  std::vector<PendingReconcile> reconcile_queue_ ABSL_GUARDED_BY(mu_);
  // Local changes whose worker batch is not written yet: seq -> (topic, version).
  absl::flat_hash_map<uint64_t, std::pair<std::string, RetainedVersion>> uncommitted_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_commit_seq_ ABSL_GUARDED_BY(mu_) = 1;
  RetainedSyncStats stats_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);

  StubCache<v1::RetainedSync> stubs_{/*reconnect_backoff_ms=*/100};

  std::thread thread_;
};

}  // namespace mqtt::cluster
