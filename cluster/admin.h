// SPDX-License-Identifier: Apache-2.0
// AdminService: the node's admin gRPC service (proto/admin.proto) on the cluster port, read by
// `mqttctl`: the members as this node sees them, the route table (this node's routes and those
// it holds of every other member), this node's status (clients, store, forwarding outboxes) and
// its replicated retained messages.
//
// Threading: gRPC calls it on its own threads; it only reads thread-safe objects (Membership,
// RouteTable, Forwarder, RetainedSync, and the status callback, which must be thread-safe). All
// must outlive the server.
#pragma once

#include <cstdint>
#include <functional>

#include "cluster/forward.h"
#include "cluster/membership.h"
#include "cluster/retained_sync.h"
#include "cluster/routes.h"
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

 private:
  std::string SelfId() const;

  const AdminSources sources_;
  const int64_t started_at_unix_ms_;
};

}  // namespace mqtt::cluster
