// AdminService: the node's admin gRPC service (proto/admin.proto) on the cluster port, read by
// `mqttctl`: the members as this node sees them, and the route table (this node's routes and
// those it holds of every other member).
//
// Threading: gRPC calls it on its own threads; it only reads Membership and RouteTable, whose
// methods are thread-safe. Both must outlive the server.
#pragma once

#include "cluster/membership.h"
#include "cluster/routes.h"
#include "proto/admin.grpc.pb.h"

namespace mqtt::cluster {

class AdminService final : public admin::v1::Admin::Service {
 public:
  // `routes` may be null (then Routes answers with no routes).
  AdminService(Membership* membership, RouteTable* routes)
      : membership_(membership), routes_(routes) {}

  grpc::Status Members(grpc::ServerContext* context, const admin::v1::MembersRequest* request,
                       admin::v1::MembersResponse* response) override;
  grpc::Status Routes(grpc::ServerContext* context, const admin::v1::RoutesRequest* request,
                      admin::v1::RoutesResponse* response) override;

 private:
  Membership* const membership_;
  RouteTable* const routes_;
};

}  // namespace mqtt::cluster
