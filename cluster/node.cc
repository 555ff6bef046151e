// SPDX-License-Identifier: Apache-2.0
#include "cluster/node.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "node/base/log.h"

namespace mqtt::cluster {
namespace {

std::string HostOf(const std::string& host_port) {
  return host_port.substr(0, host_port.rfind(':'));
}

constexpr std::string_view kMembersKey = "cluster/members";

std::vector<std::string> RememberedMembers(storage::Store* store) {
  if (store == nullptr) return {};
  absl::StatusOr<std::string> value = store->GetNodeValue(kMembersKey);
  if (!value.ok()) {
    MQTT_LOG_WARN("cluster: cannot read the members known before: %s", value.status().message());
    return {};
  }
  return absl::StrSplit(*value, '\n', absl::SkipEmpty());
}

// Keeps the addresses of the members seen alive (and not gone) in the store. On the membership's
// event thread: changes arrive one at a time.
void RememberMember(storage::Store* store, std::set<std::string>* known, const MemberInfo& member,
                    MemberChange change) {
  bool changed = false;
  if (change == MemberChange::kJoined || change == MemberChange::kAlive) {
    changed = known->insert(member.address).second;
  } else if (change == MemberChange::kLeft || change == MemberChange::kRemoved) {
    changed = known->erase(member.address) > 0;
  }
  if (!changed) return;
  storage::Batch batch;
  batch.PutNodeValue(kMembersKey, absl::StrJoin(*known, "\n"));
  if (absl::Status s = store->Write(std::move(batch)); !s.ok()) {
    MQTT_LOG_WARN("cluster: cannot remember the members: %s", s.message());
  }
}

}  // namespace

std::vector<std::string> ResolveSeeds(const std::string& name_port) {
  std::vector<std::string> seeds;
  const size_t colon = name_port.rfind(':');
  if (colon == std::string::npos) return seeds;
  const std::string name = name_port.substr(0, colon);
  const std::string port = name_port.substr(colon + 1);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(name.c_str(), port.c_str(), &hints, &found) != 0) return seeds;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    char host[NI_MAXHOST];
    if (getnameinfo(a->ai_addr, a->ai_addrlen, host, sizeof(host), nullptr, 0, NI_NUMERICHOST) !=
        0) {
      continue;
    }
    std::string seed = a->ai_family == AF_INET6 ? absl::StrCat("[", host, "]:", port)
                                                : absl::StrCat(host, ":", port);
    if (std::find(seeds.begin(), seeds.end(), seed) == seeds.end()) seeds.push_back(seed);
  }
  freeaddrinfo(found);
  return seeds;
}

absl::StatusOr<std::unique_ptr<ClusterNode>> ClusterNode::Start(const ClusterOptions& options,
                                                                NodeParts parts) {
  Router* const router = parts.router;
  std::unique_ptr<ClusterNode> node(new ClusterNode());
  MembershipOptions m;
  m.node_id = options.node_id;
  m.seeds = options.seeds;
  if (!options.join_dns.empty()) {
    std::vector<std::string> resolved = ResolveSeeds(options.join_dns);
    if (resolved.empty()) {
      MQTT_LOG_WARN("cluster: join-dns %s resolves to nothing yet", options.join_dns);
    }
    m.seeds.insert(m.seeds.end(), resolved.begin(), resolved.end());
  }
  // The members this node knew when it last ran are seeds too: a restarted node finds its
  // cluster even when it was started without seeds (the first node) or its seeds moved.
  const std::vector<std::string> remembered = RememberedMembers(parts.store);
  for (const std::string& address : remembered) {
    if (std::find(m.seeds.begin(), m.seeds.end(), address) == m.seeds.end()) {
      m.seeds.push_back(address);
    }
  }
  m.start_incarnation = options.start_incarnation;
  m.remove_after = options.remove_after;
  m.probe_interval = options.probe_interval;
  m.probe_timeout = std::min(options.probe_interval / 2, absl::Milliseconds(500));
  m.suspect_timeout = options.suspect_timeout;
  node->membership_ = std::make_unique<Membership>(std::move(m));
  if (parts.store != nullptr) {
    auto known = std::make_shared<std::set<std::string>>(remembered.begin(), remembered.end());
    storage::Store* store = parts.store;
    node->membership_->Subscribe(
        [known, store, self = options.node_id](const MemberInfo& member, MemberChange change) {
          if (member.node_id != self) RememberMember(store, known.get(), member, change);
        });
  }
  if (router != nullptr) {
    node->link_ = std::make_unique<RouterLink>(router);
    RouteTableOptions r;
    r.node_id = options.node_id;
    node->routes_ = std::make_unique<RouteTable>(std::move(r), node->link_.get());
    RouteTable* table = node->routes_.get();
    RouterLink* link = node->link_.get();
    node->membership_->Subscribe([table, link](const MemberInfo& member, MemberChange change) {
      table->OnMemberChange(member, change);
      if (change != MemberChange::kSuspect) {
        link->SetOriginAlive(table->NodeIndex(member.node_id),
                             change == MemberChange::kJoined || change == MemberChange::kAlive);
      }
    });
    RetainedSyncOptions rs;
    rs.node_id = options.node_id;
    node->retained_ = std::make_unique<RetainedSync>(std::move(rs), router, parts.store);
    RetainedSync* retained = node->retained_.get();
    node->membership_->Subscribe([retained](const MemberInfo& member, MemberChange change) {
      retained->OnMemberChange(member, change);
    });
    if (parts.local != nullptr) {
      ForwarderOptions f = options.forward;
      f.node_id = options.node_id;
      node->forwarder_ = std::make_unique<Forwarder>(std::move(f), parts.store, table);
      Forwarder* forwarder = node->forwarder_.get();
      node->membership_->Subscribe([forwarder](const MemberInfo& member, MemberChange change) {
        forwarder->OnMemberChange(member, change);
      });
    }
  }

  grpc::ServerBuilder builder;
  // gRPC binds with SO_REUSEPORT by default: a second node started on the same address would
  // bind too and take part of the peers' connections. One node per port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int port = 0;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(node->membership_->service());
  if (node->routes_ != nullptr) builder.RegisterService(node->routes_->service());
  if (node->forwarder_ != nullptr) builder.RegisterService(node->forwarder_->service());
  if (node->retained_ != nullptr) builder.RegisterService(node->retained_->service());
  // A retained Push or a forward batch carries whole messages; a full route state can exceed
  // gRPC's default 4 MB too.
  builder.SetMaxReceiveMessageSize(-1);
  node->admin_ = std::make_unique<AdminService>(
      AdminSources{node->membership_.get(), node->routes_.get(), node->forwarder_.get(),
                   node->retained_.get(), std::move(parts.status)});
  builder.RegisterService(node->admin_.get());
  node->server_ = builder.BuildAndStart();
  if (node->server_ == nullptr || port == 0) {
    node->shut_down_ = true;  // nothing started: nothing to stop
    return absl::UnavailableError(
        absl::StrCat("cluster: cannot listen on ", options.listen, " (address in use or invalid)"));
  }
  node->listen_address_ = absl::StrCat(HostOf(options.listen), ":", port);
  node->advertise_address_ = options.advertise;
  if (node->advertise_address_.empty()) {
    std::string host = HostOf(options.listen);
    if (host == "0.0.0.0" || host == "[::]" || host == "::") {
      char name[256] = {};
      gethostname(name, sizeof(name) - 1);
      host = name;
    }
    node->advertise_address_ = absl::StrCat(host, ":", port);
  }
  if (node->forwarder_ != nullptr) {
    if (absl::Status s = node->forwarder_->Start(parts.local); !s.ok()) {
      node->server_->Shutdown();
      node->shut_down_ = true;
      return s;
    }
  }
  if (node->routes_ != nullptr) {
    if (absl::Status s = node->routes_->Start(node->advertise_address_); !s.ok()) {
      node->server_->Shutdown();
      node->shut_down_ = true;
      return s;
    }
    node->link_->Attach(node->routes_.get());
  }
  if (absl::Status s = node->membership_->Start(node->advertise_address_); !s.ok()) {
    if (node->link_ != nullptr) node->link_->Detach();
    node->server_->Shutdown();
    if (node->routes_ != nullptr) node->routes_->Stop();
    node->shut_down_ = true;
    return s;
  }
  return node;
}

void ClusterNode::Shutdown(absl::Duration leave_timeout) {
  if (shut_down_) return;
  shut_down_ = true;
  if (link_ != nullptr) link_->Detach();  // the router stops calling the table
  if (absl::Status s = membership_->Leave(leave_timeout); !s.ok()) {
    MQTT_LOG_INFO("cluster: leave not confirmed by every member: %s", s.message());
  }
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  if (forwarder_ != nullptr) forwarder_->Stop();
  if (retained_ != nullptr) retained_->Stop();
  if (routes_ != nullptr) routes_->Stop();
  membership_->Stop();
}

absl::Status ClusterNode::StartRetained() {
  return retained_ == nullptr ? absl::OkStatus() : retained_->Start(advertise_address_);
}

bool ClusterNode::WaitUntilSynced(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    bool synced = membership_->joined();
    if (synced && routes_ != nullptr) {
      const std::vector<MemberInfo> members = membership_->Members();  // this node first
      for (size_t i = 1; i < members.size() && synced; ++i) {
        synced =
            members[i].state != MemberState::kAlive || routes_->HoldsRoutesOf(members[i].node_id);
      }
    }
    if (synced) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));  // start-up only: polling is simpler than events
  }
}

ClusterNode::~ClusterNode() { Shutdown(absl::ZeroDuration()); }

}  // namespace mqtt::cluster
