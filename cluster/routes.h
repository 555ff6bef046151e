// SPDX-License-Identifier: Apache-2.0
// RouteTable: the cluster's replicated route table (issue 11, "Route table"). Each node is the
// only writer of its own routes; every node holds every other live node's routes and hands
// them to its Router as routes of kind "node" through a RouteSink. The rules (aggregation,
// versions, delta application, gaps, dead and gone origins) are in route_state.h; this file
// adds the transport: gRPC service mqtt.cluster.v1.Routes (proto/cluster.proto).
//
// Protocol: a change of the local route set is pushed as a delta to every live peer (one call
// in flight per peer, later deltas queued behind it, so a peer sees them in order). A receiver
// that does not hold the delta's from_version fetches the origin's full state (from the origin
// itself when it knows its address) and replays the deltas that arrived meanwhile. Every
// `digest_interval`, and at once when a peer becomes alive, the node exchanges a digest
// (origin -> version) with one peer; each side then fetches what the other holds newer.
// Unary RPCs with one call in flight per peer (ordered; route changes are rare and small), not
// a stream per peer as the issue sketched: see cluster/README.md.
//
// Lifecycle: construct; register service() on the node's grpc::ServerBuilder; BuildAndStart;
// Start(); feed it local routes and membership changes; Stop(). The server must be shut down
// before the RouteTable is destroyed.
//
// Threading: Start() runs one background thread. It calls the RouteSink, one event at a time,
// in the order the changes were applied, and issues every RPC through the gRPC callback API:
// it never waits on a peer. gRPC handlers and the public methods only take the table's mutex
// for short in-memory work; no RPC is made and no sink is called under it. Every public method
// may be called from any thread, the sink included.
//
// Transport: one cached channel per peer address (stub_cache.h), mutual TLS with cluster TLS on
// (cluster_tls.h), else plaintext.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cluster/member_table.h"
#include "cluster/route_state.h"
#include "cluster/stub_cache.h"
#include "proto/cluster.grpc.pb.h"

namespace mqtt::cluster {

struct RouteTableOptions {
  std::string node_id;
  std::string advertise_address;  // host:port peers fetch from; may be given to Start() instead
  // Must be greater than any epoch an earlier process of this node id used, or peers take the
  // new process's versions for old news and ignore its routes. 0 (the default): microseconds
  // since the Unix epoch at construction, which only a backward clock step longer than the
  // restart breaks. A node may pass a persisted counter instead (the membership's
  // start_incarnation), but must then never mix the two schemes.
  uint64_t epoch = 0;
  absl::Duration digest_interval = absl::Seconds(10);
  absl::Duration rpc_timeout = absl::Seconds(5);  // each Push, Digest and Fetch
  int max_routes_per_delta = 4096;                // keeps a Push well under gRPC's 4 MB
  // Deltas waiting behind a slow peer's call in flight; beyond this they are dropped and the
  // peer repairs by a full fetch when the next delta shows the gap (or at the next digest).
  int max_queued_deltas_per_peer = 1024;
};

// Receives remote routes. Called on the RouteTable's thread, in order, never under its lock;
// may call back into the RouteTable (but not Stop). Should be quick: pushes to peers wait
// behind it. `origin_index` is NodeIndex(origin). One origin may hold several routes with the
// same filter (persistent and not, several shared groups): a node that gives the Router one
// entry per (filter, node) counts them.
class RouteSink {
 public:
  virtual void Added(const std::string& origin, uint32_t origin_index, const Route& route) = 0;
  virtual void Removed(const std::string& origin, uint32_t origin_index, const Route& route) = 0;

 protected:
  ~RouteSink() = default;
};

class RouteTable {
 public:
  // `sink` outlives the RouteTable.
  RouteTable(RouteTableOptions options, RouteSink* sink);
  ~RouteTable();  // Stop()
  RouteTable(const RouteTable&) = delete;
  RouteTable& operator=(const RouteTable&) = delete;

  // The gRPC service to register before the server starts. Until Start() and after Stop() it
  // answers UNAVAILABLE.
  grpc::Service* service();

  // Starts the thread. A non-empty `advertise_address` replaces the option. InvalidArgument for
  // bad options, FailedPrecondition if already started.
  absl::Status Start(std::string_view advertise_address = {});
  // Stops the thread and waits for calls in flight (each bounded by rpc_timeout). Idempotent.
  void Stop();

  // Once per local subscriber (plain filter and its shared group split by the caller). The
  // route exists while its count is > 0; only set changes are replicated. AddLocal:
  // InvalidArgument for an empty filter. RemoveLocal: NotFound if no subscriber holds it.
  absl::Status AddLocal(const Route& route);
  absl::Status RemoveLocal(const Route& route);

  // Membership hooks (OnMemberChange maps a Membership listener's events onto them).
  // PeerAlive: push to it from now on, digest with it at once, and fetch its routes if what is
  // held is partial or absent. PeerDead: its non-persistent routes are removed at once, the
  // persistent ones stay. PeerGone (removed): all its routes are removed; a LEFT member counts as
  // dead.
  void PeerAlive(const std::string& node_id, const std::string& address);
  void PeerDead(const std::string& node_id);
  void PeerGone(const std::string& node_id);
  void OnMemberChange(const MemberInfo& member, MemberChange change);

  // A small stable index for Router::AddNodeRoute: 1, 2, ... in order of first sight, never
  // reused within the process. This node's own id gets one too if asked.
  uint32_t NodeIndex(std::string_view node_id);
  // The node id of an index NodeIndex handed out; empty for any other.
  std::string NodeIdOf(uint32_t index) const;

  // Introspection (tests, admin).
  RouteVersion local_version() const;
  std::vector<Route> LocalRouteSet() const;                            // sorted
  std::vector<Route> RemoteRouteSet(const std::string& origin) const;  // sorted
  size_t remote_route_count() const;
  // Whether the whole route set of `origin` (alive) is held: a node that has just joined
  // should not take publishes before it holds its peers' routes, or it would not forward them.
  bool HoldsRoutesOf(const std::string& origin) const;
  uint64_t fetches() const;  // full states fetched and applied so far

 private:
  class Handler;  // the gRPC service, routes.cc

  struct Peer {
    std::string address;
    bool alive = true;
    bool in_flight = false;
    std::deque<std::shared_ptr<const v1::RouteDelta>> queue;  // not sent yet, oldest first
  };
  struct PendingFetch {
    std::string origin;
    std::string address;
  };
  struct PendingPush {
    std::string peer;
    std::string address;
    std::shared_ptr<v1::RoutePushRequest> request;
  };

  void Loop();
  // Moves the local changes not taken yet into every live peer's queue.
  void FlushLocal() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues a fetch of `origin` unless one is running; later gap deltas wait in fetching_.
  void QueueFetch(const std::string& origin, const std::string& address)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyDeltaLocked(const v1::RouteDelta& delta, const std::string& sender_address)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Emit(std::vector<RouteEvent> events) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendPush(PendingPush push) ABSL_LOCKS_EXCLUDED(mu_);
  void SendFetch(PendingFetch fetch) ABSL_LOCKS_EXCLUDED(mu_);
  void SendDigest(std::string peer, std::string address) ABSL_LOCKS_EXCLUDED(mu_);
  std::string AddressOf(const std::string& node_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // gRPC handlers (Handler forwards here); in-memory work only.
  grpc::Status HandlePush(const v1::RoutePushRequest& request);
  grpc::Status HandleDigest(const v1::RouteDigestRequest& request,
                            v1::RouteDigestResponse* response);
  grpc::Status HandleFetch(const v1::RouteFetchRequest& request, v1::RouteFetchResponse* response);

  RouteTableOptions options_;
  RouteSink* const sink_;
  std::unique_ptr<Handler> handler_;

  mutable absl::Mutex mu_;
  enum class Phase { kNew, kRunning, kStopping, kStopped };
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kNew;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;  // the thread has work (set with every queue change)
  int calls_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  LocalRoutes local_ ABSL_GUARDED_BY(mu_);
  RemoteRoutes remote_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Peer> peers_ ABSL_GUARDED_BY(mu_);
  std::vector<RouteEvent> events_ ABSL_GUARDED_BY(mu_);  // for the sink, in order
  std::vector<PendingFetch> fetch_queue_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> digest_queue_ ABSL_GUARDED_BY(mu_);  // peers to digest with now
  // Origins with a fetch queued or in flight, and the deltas that arrived meanwhile.
  absl::flat_hash_map<std::string, std::vector<v1::RouteDelta>> fetching_ ABSL_GUARDED_BY(mu_);
  uint64_t fetches_ ABSL_GUARDED_BY(mu_) = 0;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);

  mutable absl::Mutex index_mu_ ABSL_ACQUIRED_AFTER(mu_);
  absl::flat_hash_map<std::string, uint32_t> index_ ABSL_GUARDED_BY(index_mu_);
  std::vector<std::string> ids_ ABSL_GUARDED_BY(index_mu_);  // [index - 1]

  StubCache<v1::Routes> stubs_{/*reconnect_backoff_ms=*/100};

  std::thread thread_;
};

}  // namespace mqtt::cluster
