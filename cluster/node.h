// SPDX-License-Identifier: Apache-2.0
// ClusterNode: this node's presence in the cluster. It owns the gRPC server on --cluster-listen,
// which hosts every cluster service (membership, routes, forwarding, retained, admin, so
// that one port serves peers and mqttctl), and the Membership. mqttd starts one when
// --cluster-listen is given; without it nothing of this runs and the node is alone.
//
// Threading: Start and Shutdown from the main thread; the accessors from any thread. Shutdown
// must be called before destruction.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cluster/admin.h"
#include "cluster/cluster_tls.h"
#include "cluster/drain.h"
#include "cluster/forward.h"
#include "cluster/membership.h"
#include "cluster/registry_node.h"
#include "cluster/retained_sync.h"
#include "cluster/router_link.h"
#include "cluster/routes.h"
#include "cluster/session_transfer.h"
#include "grpcpp/server.h"

namespace mqtt::cluster {

struct ClusterOptions {
  std::string node_id;
  std::string cluster_name = "mqttd";  // membership refuses peers of another (membership.h)
  std::string listen;                  // HOST:PORT; port 0 picks a free port
  std::string advertise;  // HOST:PORT peers dial; empty: the listen address (its host must then
                          // be concrete, or the host name is used for 0.0.0.0 / ::)
  std::vector<std::string> seeds;  // HOST:PORT
  ClusterTlsFiles tls;             // mutual TLS on the cluster port (cluster_tls.h); empty: none
  std::string join_dns;            // NAME:PORT: every address NAME resolves to is a seed
  uint64_t start_incarnation = 1;  // the stored incarnation + 1
  absl::Duration remove_after = absl::Hours(1);
  absl::Duration probe_interval = absl::Seconds(1);
  absl::Duration suspect_timeout = absl::Seconds(5);
  ForwarderOptions forward;  // node_id is filled in from above
  // The client-id registry (issue 12, registry_node.h); without raft_listen there is none (and
  // no one-session-per-client-id guarantee: tests of the other parts only).
  std::string raft_listen;     // HOST:PORT to bind; the port must be concrete
  std::string raft_advertise;  // HOST:PORT peers dial; empty: this node's advertised host
  std::string registry_dir;    // the registry's raft directory
  std::vector<std::string> bootstrap_members;
  bool allow_register_during_netsplit = false;
  RegistryOptions registry;  // timing; the fields above are filled in
};

// What of the node the cluster works with. All may be null (membership only, for tests);
// forwarding needs `router` and `local`. They must outlive the ClusterNode.
struct NodeParts {
  Router* router = nullptr;
  storage::Store* store = nullptr;
  ForwardedDelivery* local = nullptr;
  std::function<LocalStatus()> status;  // for `mqttctl status`; thread-safe
  // The registry gave a client id this node held to another node (Broker::ClaimedElsewhere).
  std::function<void(const std::string& client_id, uint64_t epoch)> claimed_elsewhere;
  // For `mqttctl sessions` and `mqttctl kick` (AdminSources); thread-safe.
  std::function<std::future<std::vector<SessionInfo>>(SessionFilter)> sessions;
  std::function<std::future<bool>(std::string client_id)> kick;
  // Serves the sessions other nodes take from this one (the broker); with the registry and
  // forwarding, sessions move between nodes (session_mover()).
  SessionSource* session_source = nullptr;
  // `mqttctl drain` (AdminSources::drain); thread-safe.
  std::function<std::shared_future<admin::v1::DrainResponse>()> drain;
  std::function<std::future<size_t>(size_t)> shed;             // `mqttctl rebalance`; thread-safe
  std::function<std::vector<bridge::BridgeStatus>()> bridges;  // `mqttctl bridges`; thread-safe
};

class ClusterNode {
 public:
  // Binds the server, starts it, with a router the route table linked to it, and with `local`
  // too the forwarder (which reads its durable outboxes back from the store first). The other
  // members do not see this node until Join().
  // Errors: a bad or busy listen address (Unavailable, naming it), bad options, a storage error.
  static absl::StatusOr<std::unique_ptr<ClusterNode>> Start(const ClusterOptions& options,
                                                            NodeParts parts = {});
  // Starts the membership (which joins the seeds in the background) and the registry. Call once
  // the node's own routes are complete (after the broker recovered its persistent sessions): the
  // members take the route set they fetch when they see this node alive for the whole of it,
  // and a restarted node that joined before its recovery made them drop the routes of its
  // persistent sessions, losing what was published meanwhile (found by bench/mqtt-chaos).
  // Errors: as the registry's start; the node is then shut down.
  absl::Status Join();
  ~ClusterNode();

  // Tells the other members this node leaves (waiting at most `leave_timeout`), then stops the
  // membership and the server. Idempotent.
  void Shutdown(absl::Duration leave_timeout);

  // Waits (at most `timeout`) until this node has joined through a seed, holds the full route
  // set of every member it sees alive (so that the publishes it takes next reach every
  // subscriber) and is in the registry with a leader known (so that CONNECTs can register).
  // True if it got there in time.
  bool WaitUntilSynced(absl::Duration timeout);
  // WaitUntilSynced's conditions, checked once without waiting (for /readyz). Any thread.
  // `reason` (may be null) gets why not: "not joined", "no routes of N yet", "registry not ready".
  bool ready(std::string* reason = nullptr);

  const std::string& listen_address() const { return listen_address_; }  // with the real port
  const std::string& advertise_address() const { return advertise_address_; }
  Membership& membership() { return *membership_; }
  RouteTable* routes() { return routes_.get(); }       // null without a router
  Forwarder* forwarder() { return forwarder_.get(); }  // null without a router and `local`
  // Null without a router. Set it as the broker's RetainedReplication before Broker::Recover
  // and call StartRetained after it (it loads the versions the router's recovered copies have).
  RetainedSync* retained() { return retained_.get(); }
  absl::Status StartRetained();
  // Null without a registry. Set it as the broker's ClientRegistry before accepting clients.
  ClientRegistry* client_registry() { return claims_.get(); }
  RegistryNode* registry() { return registry_.get(); }
  // Null without a registry, forwarding or a session source. Set it as the broker's SessionMover
  // before accepting clients.
  SessionMover* session_mover() { return transfer_.get(); }

  // The cluster part of a drain (cluster/drain.h): call after the node stopped accepting and
  // closed its connections, before Shutdown. Blocks until done or `deadline`.
  DrainReport Drain(absl::Time deadline);

 private:
  ClusterNode() = default;

  std::unique_ptr<Membership> membership_;
  std::unique_ptr<RouterLink> link_;
  std::unique_ptr<RouteTable> routes_;
  std::unique_ptr<Forwarder> forwarder_;
  std::unique_ptr<RetainedSync> retained_;
  std::unique_ptr<RegistryNode> registry_;
  std::unique_ptr<ClientClaims> claims_;
  std::unique_ptr<SessionTransfer> transfer_;
  std::unique_ptr<AdminService> admin_;
  SessionSource* session_source_ = nullptr;
  Drainer::ListSessions sessions_;
  std::unique_ptr<grpc::Server> server_;
  std::string listen_address_;
  std::string advertise_address_;
  bool shut_down_ = false;
  bool joined_ = false;
};

// Every address `name_port` (NAME:PORT) resolves to, as HOST:PORT (IPv6 in brackets); empty if
// it does not resolve (yet).
std::vector<std::string> ResolveSeeds(const std::string& name_port);

// The registry's Raft address as libraft can dial it: libraft 0.15's TCP transport (Debian 12)
// parses addresses with uv_ip4_addr, numeric IPv4 only, so HOST:PORT with a host name (the Helm
// chart advertises `<pod>.<headless service>...`) becomes the first IPv4 address the name
// resolves to, port kept; a numeric IPv4 HOST:PORT is returned as is. InvalidArgument when it
// is not HOST:PORT (node/base/host_port.h); FailedPrecondition when the name has no IPv4 address
// (an IPv6 literal included).
absl::StatusOr<std::string> RaftDialableAddress(const std::string& host_port);

}  // namespace mqtt::cluster
