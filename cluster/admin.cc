// SPDX-License-Identifier: Apache-2.0
#include "cluster/admin.h"

#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "node/router/topic.h"

#ifndef MQTTD_VERSION
#define MQTTD_VERSION "unknown"
#endif

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

AdminService::AdminService(AdminSources sources)
    : sources_(std::move(sources)), started_at_unix_ms_(absl::ToUnixMillis(absl::Now())) {}

std::string AdminService::SelfId() const {
  if (sources_.membership == nullptr) return {};
  return sources_.membership->Members().front().node_id;
}

grpc::Status AdminService::Members(grpc::ServerContext*, const admin::v1::MembersRequest*,
                                   admin::v1::MembersResponse* response) {
  if (sources_.membership == nullptr) return grpc::Status::OK;
  std::vector<MemberInfo> members = sources_.membership->Members();
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
  RouteTable* routes = sources_.routes;
  if (sources_.membership == nullptr || routes == nullptr) return grpc::Status::OK;
  std::vector<MemberInfo> members = sources_.membership->Members();
  const std::string& self = members.front().node_id;
  response->set_node_id(self);
  AddRoutes(self, routes->LocalRouteSet(), *request, response);
  for (size_t i = 1; i < members.size(); ++i) {
    AddRoutes(members[i].node_id, routes->RemoteRouteSet(members[i].node_id), *request, response);
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::Status(grpc::ServerContext*, const admin::v1::StatusRequest*,
                                  admin::v1::StatusResponse* response) {
  response->set_node_id(SelfId());
  response->set_version(MQTTD_VERSION);
  response->set_started_at_unix_ms(started_at_unix_ms_);
  if (sources_.local) {
    const LocalStatus local = sources_.local();
    response->set_clients(local.clients);
    response->set_subscriptions(local.subscriptions);
    response->set_retained(local.retained);
    response->set_queued_messages(local.queued_messages);
    response->set_stored_messages(local.stored_messages);
  }
  if (sources_.forwarder != nullptr) {
    for (const ForwardPeerStats& peer : sources_.forwarder->Stats()) {
      admin::v1::PeerOutbox* out = response->add_outboxes();
      out->set_node_id(peer.node_id);
      out->set_address(peer.address);
      out->set_connected(peer.connected);
      out->set_queued(peer.queued);
      out->set_queued_bytes(peer.queued_bytes);
      out->set_durable_queued(peer.durable_queued);
      out->set_forwarded(peer.forwarded);
      out->set_dropped(peer.dropped);
      out->set_held_acks(peer.held_acks);
    }
    response->set_forward_duplicates_dropped(sources_.forwarder->duplicates_dropped());
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::Retained(grpc::ServerContext*, const admin::v1::RetainedRequest* request,
                                    admin::v1::RetainedResponse* response) {
  if (sources_.retained == nullptr) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                        "this node does not replicate retained messages");
  }
  if (!request->topic().empty() && !IsValidTopicFilter(request->topic())) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "not a valid topic filter: " + request->topic());
  }
  response->set_node_id(SelfId());
  for (const RetainedEntryInfo& entry : sources_.retained->Snapshot()) {
    if (!request->topic().empty() && !TopicMatches(request->topic(), entry.topic)) continue;
    admin::v1::RetainedEntry* out = response->add_entries();
    out->set_topic(entry.topic);
    out->set_hlc(entry.hlc);
    out->set_origin(entry.origin);
    out->set_tombstone(entry.tombstone);
    out->set_payload_bytes(entry.payload_bytes);
  }
  return grpc::Status::OK;
}

}  // namespace mqtt::cluster
