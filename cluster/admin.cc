// SPDX-License-Identifier: Apache-2.0
#include "cluster/admin.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cluster/cluster_tls.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "node/base/log.h"
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

// The broker's workers answer within this (they run every turn in microseconds; a stopped one
// never answers).
constexpr auto kWorkerTimeout = std::chrono::seconds(2);
// A member's Admin service, asked by Kick (its own wait for its workers included).
constexpr auto kPeerTimeout = std::chrono::seconds(3);

const char* ProtocolVersionName(uint8_t level) {
  switch (level) {
    case 3:
      return "3.1";
    case 4:
      return "3.1.1";
    case 5:
      return "5.0";
    default:
      return "?";
  }
}

void AddSession(const std::string& node_id, const SessionInfo& info, admin::v1::Session* out) {
  out->set_client_id(info.client_id);
  out->set_node_id(node_id);
  out->set_connected(info.connected);
  out->set_protocol_version(ProtocolVersionName(info.protocol_level));
  out->set_persistent(info.persistent);
  out->set_subscriptions(info.subscriptions);
  out->set_queued_messages(info.inflight + info.queued);
  out->set_inflight(info.inflight);
  const bool never = info.expiry_interval == 0xFFFFFFFF;
  out->set_expiry_interval(never ? 0 : info.expiry_interval);
  out->set_never_expires(never);
  out->set_registry_epoch(info.claim_epoch);
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

grpc::Status AdminService::Sessions(grpc::ServerContext*, const admin::v1::SessionsRequest* request,
                                    admin::v1::SessionsResponse* response) {
  if (!sources_.sessions) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "this node lists no sessions");
  }
  SessionFilter filter{request->client_id(), request->limit() == 0 ? 1000 : request->limit()};
  std::future<std::vector<SessionInfo>> sessions = sources_.sessions(std::move(filter));
  if (sessions.wait_for(kWorkerTimeout) != std::future_status::ready) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        "the broker's workers did not answer within 2 s");
  }
  const std::string self = SelfId();
  response->set_node_id(self);
  for (const SessionInfo& info : sessions.get()) AddSession(self, info, response->add_sessions());
  return grpc::Status::OK;
}

grpc::Status AdminService::Drain(grpc::ServerContext* context, const admin::v1::DrainRequest*,
                                 admin::v1::DrainResponse* response) {
  if (!sources_.drain) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no drain here");
  std::shared_future<admin::v1::DrainResponse> report = sources_.drain();
  // A call without a deadline has the far future as its deadline: cap it.
  const auto until =
      std::min(context->deadline(), std::chrono::system_clock::now() + std::chrono::hours(1));
  if (report.wait_until(until) != std::future_status::ready) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        "the drain goes on; the node exits when it is done");
  }
  *response = report.get();
  return grpc::Status::OK;
}

// In steps of a tenth of a second, so that a thousand reconnections do not arrive at once.
grpc::Status AdminService::Shed(grpc::ServerContext* context, const admin::v1::ShedRequest* request,
                                admin::v1::ShedResponse* response) {
  if (!sources_.shed) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no shed here");
  response->set_node_id(SelfId());
  const uint64_t rate = request->rate_per_second() == 0 ? 100 : request->rate_per_second();
  const uint64_t step = std::max<uint64_t>(1, rate / 10);
  uint64_t shed = 0;
  while (shed < request->count() && !context->IsCancelled()) {
    std::future<size_t> closed = sources_.shed(std::min(step, request->count() - shed));
    if (closed.wait_for(std::chrono::seconds(2)) != std::future_status::ready) break;
    const size_t n = closed.get();
    if (n == 0) break;  // nobody left to close
    shed += n;
    if (shed < request->count()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  response->set_shed(shed);
  return grpc::Status::OK;
}

std::optional<uint64_t> AdminService::QueuedOf(const std::string& client_id) {
  if (!sources_.sessions) return std::nullopt;
  std::future<std::vector<SessionInfo>> sessions = sources_.sessions({client_id, 1});
  if (sessions.wait_for(kWorkerTimeout) != std::future_status::ready) return std::nullopt;
  for (const SessionInfo& info : sessions.get()) {
    if (info.client_id == client_id) return info.inflight + info.queued;
  }
  return std::nullopt;
}

grpc::Status AdminService::Bridges(grpc::ServerContext*, const admin::v1::BridgesRequest* request,
                                   admin::v1::BridgesResponse* response) {
  const std::string self = SelfId();
  response->set_node_id(self);
  std::vector<bridge::BridgeStatus> bridges;
  if (sources_.bridges) bridges = sources_.bridges();
  for (const bridge::BridgeStatus& b : bridges) {
    if (!request->name().empty() && request->name() != b.name) continue;
    admin::v1::Bridge* out = response->add_bridges();
    out->set_name(b.name);
    out->set_node_id(self);
    out->set_running(b.running);
    out->set_owner_node_id(b.owner);
    out->set_connected(b.connected);
    out->set_remote_address(b.remote_address);
    out->set_protocol_version(b.protocol_version);
    out->set_connected_since_unix_ms(b.connected_since_unix_ms);
    out->set_last_error(b.last_error);
    out->set_last_error_unix_ms(b.last_error_unix_ms);
    out->set_connects(b.connects);
    out->set_failed_attempts(b.failed_attempts);
    out->set_retry_delay_seconds(b.retry_delay_seconds);
    out->set_messages_out(b.messages_out);
    out->set_messages_in(b.messages_in);
    out->set_send_window(b.send_window);
    out->set_inflight_out(b.inflight_out);
    if (std::optional<uint64_t> queued = QueuedOf("$bridge/" + b.name)) {
      out->set_queued_messages(*queued);
    }
  }
  if (!request->name().empty() && response->bridges().empty()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no bridge named " + request->name());
  }
  return grpc::Status::OK;
}

absl::StatusOr<bool> AdminService::KickOn(const std::string& node_id,
                                          const std::string& client_id) {
  if (node_id == SelfId()) {
    if (!sources_.kick) return false;
    std::future<bool> kicked = sources_.kick(client_id);
    if (kicked.wait_for(kWorkerTimeout) != std::future_status::ready) {
      return absl::DeadlineExceededError("the broker's workers did not answer within 2 s");
    }
    return kicked.get();
  }
  std::optional<MemberInfo> member;
  for (MemberInfo& m : sources_.membership->Members()) {
    if (m.node_id == node_id) member = std::move(m);
  }
  if (!member || member->state != MemberState::kAlive) {
    return absl::UnavailableError(absl::StrCat(node_id, " is not an alive member"));
  }
  auto stub = admin::v1::Admin::NewStub(PeerChannel(member->address));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kPeerTimeout);
  admin::v1::KickRequest request;
  request.set_client_id(client_id);
  request.set_local_only(true);
  admin::v1::KickResponse response;
  grpc::Status status = stub->Kick(&ctx, request, &response);
  if (!status.ok()) return absl::UnavailableError(status.error_message());
  return !response.kicked_on().empty();
}

// The registry's holder first (the one node with the client connected, but for a
// --cluster-allow-register-during-netsplit connection or a lagging follower); then, if it did
// not have it, or without a registry, every other alive member.
grpc::Status AdminService::Kick(grpc::ServerContext*, const admin::v1::KickRequest* request,
                                admin::v1::KickResponse* response) {
  const std::string& client_id = request->client_id();
  if (client_id.empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no client id given");
  }
  const std::string self = SelfId();
  response->set_node_id(self);
  std::vector<std::string> asked;
  auto ask = [&](const std::string& node_id) {
    asked.push_back(node_id);
    absl::StatusOr<bool> kicked = KickOn(node_id, client_id);
    if (!kicked.ok()) {
      MQTT_LOG_WARN("admin: kick %s: %s: %s", client_id, node_id, kicked.status().message());
      response->add_unanswered_nodes(node_id);
    } else if (*kicked) {
      response->add_kicked_on(node_id);
    }
  };
  if (request->local_only() || sources_.membership == nullptr) {
    ask(self);
  } else {
    if (sources_.registry != nullptr) {
      if (std::optional<RegistryHolder> holder = sources_.registry->registry().Holder(client_id)) {
        ask(holder->node_id);
      }
    }
    if (response->kicked_on().empty()) {
      for (const MemberInfo& m : sources_.membership->Members()) {
        if (m.state != MemberState::kAlive) continue;
        if (std::find(asked.begin(), asked.end(), m.node_id) == asked.end()) ask(m.node_id);
      }
    }
  }
  if (request->local_only() && !response->unanswered_nodes().empty()) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        "the broker's workers did not answer within 2 s");
  }
  return grpc::Status::OK;
}

}  // namespace mqtt::cluster
