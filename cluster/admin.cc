#include "cluster/admin.h"

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace mqtt::cluster {
namespace {

void AddRoutes(const std::string& origin, const std::vector<Route>& routes,
               const admin::v1::RoutesRequest& request, admin::v1::RoutesResponse* response) {
  if (!request.node_id().empty() && request.node_id() != origin) return;
  for (const Route& route : routes) {
    if (!request.filter().empty() && request.filter() != route.filter) continue;
    admin::v1::Route* out = response->add_routes();
    out->set_node_id(origin);
    out->set_filter(route.filter);
    out->set_shared_group(route.shared_group);
    out->set_persistent(route.persistent);
  }
}

}  // namespace

grpc::Status AdminService::Members(grpc::ServerContext*, const admin::v1::MembersRequest*,
                                   admin::v1::MembersResponse* response) {
  std::vector<MemberInfo> members = membership_->Members();
  if (!members.empty()) response->set_node_id(members.front().node_id);
  for (const MemberInfo& m : members) {
    admin::v1::Member* out = response->add_members();
    out->set_node_id(m.node_id);
    out->set_address(m.address);
    out->set_state(MemberStateName(m.state));
    out->set_incarnation(m.incarnation);
    out->set_started_at_unix_ms(absl::ToUnixMillis(m.started_at));
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::Routes(grpc::ServerContext*, const admin::v1::RoutesRequest* request,
                                  admin::v1::RoutesResponse* response) {
  std::vector<MemberInfo> members = membership_->Members();
  if (members.empty() || routes_ == nullptr) return grpc::Status::OK;
  const std::string& self = members.front().node_id;
  response->set_node_id(self);
  AddRoutes(self, routes_->LocalRouteSet(), *request, response);
  for (size_t i = 1; i < members.size(); ++i) {
    AddRoutes(members[i].node_id, routes_->RemoteRouteSet(members[i].node_id), *request, response);
  }
  return grpc::Status::OK;
}

}  // namespace mqtt::cluster
