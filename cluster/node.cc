// SPDX-License-Identifier: Apache-2.0
#include "cluster/node.h"

#include <arpa/inet.h>
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
#include "node/base/host_port.h"
#include "node/base/log.h"

namespace mqtt::cluster {
namespace {

constexpr std::string_view kMembersKey = "cluster/members";

// `host` (of a listen or advertise address) as peers should dial it: the host name for a
// wildcard address.
std::string AdvertisedHost(const std::string& host) {
  if (host == "0.0.0.0" || host == "::") {
    char name[256] = {};
    gethostname(name, sizeof(name) - 1);
    return name;
  }
  return host;
}

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
  absl::StatusOr<HostPort> name = ParseHostPort(name_port);
  if (!name.ok()) return seeds;
  const std::string port = absl::StrCat(name->port);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(name->host.c_str(), port.c_str(), &hints, &found) != 0) return seeds;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    char host[NI_MAXHOST];
    if (getnameinfo(a->ai_addr, a->ai_addrlen, host, sizeof(host), nullptr, 0, NI_NUMERICHOST) !=
        0) {
      continue;
    }
    std::string seed = JoinHostPort(host, name->port);
    if (std::find(seeds.begin(), seeds.end(), seed) == seeds.end()) seeds.push_back(seed);
  }
  freeaddrinfo(found);
  return seeds;
}

absl::StatusOr<std::string> RaftDialableAddress(const std::string& host_port) {
  absl::StatusOr<HostPort> parsed = ParseHostPort(host_port);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("Raft address ", parsed.status().message()));
  }
  const std::string& host = parsed->host;
  in_addr ip{};
  if (inet_pton(AF_INET, host.c_str(), &ip) == 1) return host_port;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string resolved;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &found) == 0) {
    for (addrinfo* a = found; a != nullptr && resolved.empty(); a = a->ai_next) {
      char text[INET_ADDRSTRLEN];
      const auto* sin = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
      if (inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text)) != nullptr) resolved = text;
    }
    freeaddrinfo(found);
  }
  if (resolved.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the registry's Raft address ", host_port,
                     " must be an IPv4 address (libraft dials numeric IPv4 addresses only) and ",
                     host, " resolves to none"));
  }
  return JoinHostPort(resolved, parsed->port);
}

absl::StatusOr<std::unique_ptr<ClusterNode>> ClusterNode::Start(const ClusterOptions& options,
                                                                NodeParts parts) {
  Router* const router = parts.router;
  // The config checked these; a caller that did not gets InvalidArgument.
  absl::StatusOr<HostPort> listen = ParseHostPort(options.listen, {.allow_port_zero = true});
  if (!listen.ok()) return listen.status();
  absl::StatusOr<HostPort> advertise = listen;
  if (!options.advertise.empty()) advertise = ParseHostPort(options.advertise);
  if (!advertise.ok()) return advertise.status();
  absl::StatusOr<HostPort> raft_listen;
  if (!options.raft_listen.empty()) {
    raft_listen = ParseHostPort(options.raft_listen, {.allow_port_zero = true});
    if (!raft_listen.ok()) return raft_listen.status();
  }
  // Before anything dials a peer: every channel and the server take their credentials from it.
  if (absl::Status s = UseClusterTls(options.tls); !s.ok()) return s;
  std::unique_ptr<ClusterNode> node(new ClusterNode());
  MembershipOptions m;
  m.node_id = options.node_id;
  m.cluster_name = options.cluster_name;
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
  std::string raft_advertise = options.raft_advertise;
  if (!options.raft_listen.empty()) {
    if (raft_advertise.empty()) {
      raft_advertise = JoinHostPort(AdvertisedHost(advertise->host), raft_listen->port);
    }
    // Peers dial it through libraft, which takes numeric IPv4 only: a name (the chart's
    // advertised pod name) is resolved once, here, to this node's address.
    // A name without an IPv4 address stays as it was: a single node never dials itself.
    absl::StatusOr<std::string> dialable = RaftDialableAddress(raft_advertise);
    if (!dialable.ok()) {
      MQTT_LOG_WARN("cluster: %s: peers cannot reach this node's registry",
                    dialable.status().message());
    } else if (*dialable != raft_advertise) {
      MQTT_LOG_INFO("cluster: registry Raft address %s is %s (libraft dials IPv4 addresses only)",
                    raft_advertise, *dialable);
      raft_advertise = *std::move(dialable);
    }
    m.metadata[kRaftAddressKey] = raft_advertise;
  }
  const bool has_seeds = !m.seeds.empty();
  node->membership_ = std::make_unique<Membership>(std::move(m));
  if (!options.raft_listen.empty()) {
    RegistryNodeOptions r;
    r.registry = options.registry;
    r.registry.node_id = options.node_id;
    r.registry.raft_address = raft_advertise;
    r.registry.raft_listen = options.raft_listen;
    r.registry.tls = options.tls;  // the Raft port speaks mutual TLS too (raft_tls_transport.h)
    r.registry.data_dir = options.registry_dir;
    r.bootstrap_members = options.bootstrap_members;
    r.has_seeds = has_seeds || !options.join_dns.empty();
    r.client.propose_timeout = absl::Seconds(5);  // a CONNECT waits this long at most
    r.client.rpc_timeout = absl::Seconds(3);
    auto claimed_elsewhere = parts.claimed_elsewhere;
    node->registry_ = std::make_unique<RegistryNode>(
        std::move(r), node->membership_.get(),
        [self = options.node_id, claimed_elsewhere](const RegistryChange& change) {
          if (change.kind == RegistryChange::Kind::kRegistered && change.previous.has_value() &&
              change.previous->node_id == self && change.holder.node_id != self &&
              claimed_elsewhere) {
            claimed_elsewhere(change.client_id, change.holder.epoch);
          }
        });
    node->claims_ = std::make_unique<ClientClaims>(node->registry_.get(), options.node_id,
                                                   options.allow_register_during_netsplit);
  }
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

  if (node->registry_ != nullptr && node->forwarder_ != nullptr &&
      parts.session_source != nullptr) {
    SessionTransferOptions t;
    t.node_id = options.node_id;
    node->transfer_ = std::make_unique<SessionTransfer>(std::move(t), node->membership_.get(),
                                                        node->forwarder_.get(), node->routes_.get(),
                                                        parts.session_source);
  }

  grpc::ServerBuilder builder;
  // gRPC binds with SO_REUSEPORT by default: a second node started on the same address would
  // bind too and take part of the peers' connections. One node per port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int port = 0;
  builder.AddListeningPort(options.listen, ClusterServerCredentials(), &port);
  builder.RegisterService(node->membership_->service());
  if (node->routes_ != nullptr) builder.RegisterService(node->routes_->service());
  if (node->forwarder_ != nullptr) builder.RegisterService(node->forwarder_->service());
  if (node->retained_ != nullptr) builder.RegisterService(node->retained_->service());
  if (node->registry_ != nullptr) builder.RegisterService(node->registry_->service());
  if (node->transfer_ != nullptr) builder.RegisterService(node->transfer_->service());
  // A retained Push or a forward batch carries whole messages; a full route state can exceed
  // gRPC's default 4 MB too.
  builder.SetMaxReceiveMessageSize(-1);
  node->admin_ = std::make_unique<AdminService>(AdminSources{
      node->membership_.get(), node->routes_.get(), node->forwarder_.get(), node->retained_.get(),
      std::move(parts.status), node->registry_.get(), parts.sessions, std::move(parts.kick),
      std::move(parts.drain), std::move(parts.shed), std::move(parts.bridges)});
  node->session_source_ = parts.session_source;
  node->sessions_ = std::move(parts.sessions);
  builder.RegisterService(node->admin_.get());
  node->server_ = builder.BuildAndStart();
  if (node->server_ == nullptr || port == 0) {
    node->shut_down_ = true;  // nothing started: nothing to stop
    return absl::UnavailableError(
        absl::StrCat("cluster: cannot listen on ", options.listen, " (address in use or invalid)"));
  }
  node->listen_address_ = JoinHostPort(listen->host, static_cast<uint16_t>(port));
  node->advertise_address_ = options.advertise;
  if (node->advertise_address_.empty()) {
    node->advertise_address_ =
        JoinHostPort(AdvertisedHost(listen->host), static_cast<uint16_t>(port));
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
  return node;
}

absl::Status ClusterNode::Join() {
  absl::Status s = membership_->Start(advertise_address_);
  if (s.ok() && registry_ != nullptr) {
    s = registry_->Start();
    if (!s.ok()) membership_->Stop();
  }
  if (!s.ok()) {
    if (link_ != nullptr) link_->Detach();
    server_->Shutdown();
    if (routes_ != nullptr) routes_->Stop();
    shut_down_ = true;
    return s;
  }
  joined_ = true;
  return absl::OkStatus();
}

void ClusterNode::Shutdown(absl::Duration leave_timeout) {
  if (shut_down_) return;
  shut_down_ = true;
  if (link_ != nullptr) link_->Detach();  // the router stops calling the table
  if (joined_) {                          // else nobody knows this process: no one to tell
    if (absl::Status s = membership_->Leave(leave_timeout); !s.ok()) {
      MQTT_LOG_INFO("cluster: leave not confirmed by every member: %s", s.message());
    }
  }
  if (registry_ != nullptr) registry_->Stop();  // its service answers Unavailable from now on
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  if (transfer_ != nullptr) transfer_->Stop();
  if (forwarder_ != nullptr) forwarder_->Stop();
  if (retained_ != nullptr) retained_->Stop();
  if (routes_ != nullptr) routes_->Stop();
  membership_->Stop();
}

DrainReport ClusterNode::Drain(absl::Time deadline) {
  DrainOptions options;
  options.node_id = membership_->Members().front().node_id;  // this node first
  if (session_source_ == nullptr || !sessions_) return {};
  Drainer drainer(std::move(options), membership_.get(), transfer_.get(), forwarder_.get(),
                  session_source_, sessions_, claims_.get());
  return drainer.Run(deadline);
}

absl::Status ClusterNode::StartRetained() {
  return retained_ == nullptr ? absl::OkStatus() : retained_->Start(advertise_address_);
}

bool ClusterNode::ready(std::string* reason) {
  auto fail = [reason](std::string why) {
    if (reason != nullptr) *reason = std::move(why);
    return false;
  };
  if (!membership_->joined()) return fail("not joined");
  if (routes_ != nullptr) {
    const std::vector<MemberInfo> members = membership_->Members();  // this node first
    for (size_t i = 1; i < members.size(); ++i) {
      if (members[i].state == MemberState::kAlive && !routes_->HoldsRoutesOf(members[i].node_id)) {
        return fail("no routes of " + members[i].node_id + " yet");
      }
    }
  }
  if (registry_ != nullptr && !registry_->ready()) return fail("registry not ready");
  return true;
}

bool ClusterNode::WaitUntilSynced(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (ready()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));  // start-up only: polling is simpler than events
  }
}

ClusterNode::~ClusterNode() { Shutdown(absl::ZeroDuration()); }

}  // namespace mqtt::cluster
