// SPDX-License-Identifier: Apache-2.0
// AdminService: the node's admin gRPC service (proto/admin.proto) on the cluster port, read by
// `mqttctl`: the members as this node sees them, the route table (this node's routes and those
// it holds of every other member), this node's status (clients, store, forwarding outboxes) and
// its replicated retained messages, this node's sessions, kicking a client off the cluster, and
// this node's view of the configured bridges.
//
// Threading: gRPC calls it on its own threads; it only reads thread-safe objects (Membership,
// RouteTable, Forwarder, RetainedSync, RegistryNode, and the callbacks, which must be
// thread-safe). All must outlive the server. Sessions and Kick wait (at most 2 s) for the
// broker's workers, and Kick for the other members' Admin services (3 s each).
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cluster/forward.h"
#include "cluster/membership.h"
#include "cluster/registry_node.h"
#include "cluster/retained_sync.h"
#include "cluster/routes.h"
#include "node/bridge/bridge_status.h"
#include "node/session/session_info.h"
#include "proto/admin.grpc.pb.h"

namespace mqtt::cluster {

// What the node outside the cluster layer reports about itself.
struct LocalStatus {
  uint64_t clients = 0;
  uint64_t subscriptions = 0;
  uint64_t retained = 0;
  uint64_t queued_messages = 0;
  uint64_t stored_messages = 0;
};

// Every source may be null (then its part of an answer is empty).
struct AdminSources {
  Membership* membership = nullptr;
  RouteTable* routes = nullptr;
  Forwarder* forwarder = nullptr;
  RetainedSync* retained = nullptr;
  std::function<LocalStatus()> local;
  RegistryNode* registry = nullptr;  // Kick asks it who holds a client id
  // This node's sessions (Broker::ListSessions) and the closing of a client's connection with
  // 5.0 reason 0x98 Administrative action (Broker::Kick).
  std::function<std::future<std::vector<SessionInfo>>(SessionFilter)> sessions;
  std::function<std::future<bool>(std::string client_id)> kick;
  // Starts the node's drain (or joins the one under way); ready with its report.
  std::function<std::shared_future<admin::v1::DrainResponse>()> drain;
  // Closes up to N connections (Broker::Shed).
  std::function<std::future<size_t>(size_t)> shed;
  // The configured bridges (Bridge::Status), by name; thread-safe.
  std::function<std::vector<bridge::BridgeStatus>()> bridges;
};

class AdminService final : public admin::v1::Admin::Service {
 public:
  explicit AdminService(AdminSources sources);

  grpc::Status Members(grpc::ServerContext* context, const admin::v1::MembersRequest* request,
                       admin::v1::MembersResponse* response) override;
  grpc::Status Routes(grpc::ServerContext* context, const admin::v1::RoutesRequest* request,
                      admin::v1::RoutesResponse* response) override;
  grpc::Status Status(grpc::ServerContext* context, const admin::v1::StatusRequest* request,
                      admin::v1::StatusResponse* response) override;
  grpc::Status Retained(grpc::ServerContext* context, const admin::v1::RetainedRequest* request,
                        admin::v1::RetainedResponse* response) override;
  grpc::Status Sessions(grpc::ServerContext* context, const admin::v1::SessionsRequest* request,
                        admin::v1::SessionsResponse* response) override;
  grpc::Status Kick(grpc::ServerContext* context, const admin::v1::KickRequest* request,
                    admin::v1::KickResponse* response) override;
  grpc::Status Drain(grpc::ServerContext* context, const admin::v1::DrainRequest* request,
                     admin::v1::DrainResponse* response) override;
  grpc::Status Shed(grpc::ServerContext* context, const admin::v1::ShedRequest* request,
                    admin::v1::ShedResponse* response) override;
  grpc::Status Bridges(grpc::ServerContext* context, const admin::v1::BridgesRequest* request,
                       admin::v1::BridgesResponse* response) override;

 private:
  std::string SelfId() const;
  // In flight and queued of the session `client_id` on this node; nullopt if it has none.
  std::optional<uint64_t> QueuedOf(const std::string& client_id);
  // Kicks `client_id` here (true) or on the member `node_id` (through its Admin service);
  // false if it was not connected there, an error if the node did not answer.
  absl::StatusOr<bool> KickOn(const std::string& node_id, const std::string& client_id);

  const AdminSources sources_;
  const int64_t started_at_unix_ms_;
};

}  // namespace mqtt::cluster
