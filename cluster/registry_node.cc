// SPDX-License-Identifier: Apache-2.0
#include "cluster/registry_node.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cluster/registry_state.h"
#include "node/base/log.h"

namespace mqtt::cluster {

RegistryNode::RegistryNode(RegistryNodeOptions options, Membership* membership,
                           Registry::Listener listener)
    : options_(std::move(options)), membership_(membership) {
  registry_ = std::make_unique<Registry>(options_.registry, std::move(listener));
  RegistryClientOptions client = options_.client;
  client.node_id = options_.registry.node_id;
  client.relays = [membership, self = client.node_id] {
    std::vector<std::pair<std::string, std::string>> peers;
    for (const MemberInfo& m : membership->Members()) {
      if (m.node_id != self && m.state == MemberState::kAlive) {
        peers.emplace_back(m.node_id, m.address);
      }
    }
    return peers;
  };
  client_ = std::make_unique<RegistryClient>(
      registry_.get(),
      [membership](const std::string& node_id) {
        for (const MemberInfo& m : membership->Members()) {
          if (m.node_id == node_id) return m.address;
        }
        return std::string();
      },
      std::move(client));
  // A member the membership forgot (dead longer than remove_after) leaves the registry too, with
  // its entries; only the leader acts, and every node hears of the removal at about that time.
  membership_->Subscribe([this](const MemberInfo& member, MemberChange change) {
    if (change != MemberChange::kRemoved || !registry_->IsLeader()) return;
    const std::string node_id = member.node_id;
    registry_->RemoveMember(node_id, [node_id](absl::Status s) {
      if (!s.ok() && !absl::IsNotFound(s)) {
        MQTT_LOG_WARN("registry: removing forgotten member %s failed: %s", node_id, s.ToString());
      }
    });
    registry_->Propose({DropNodeCommand(node_id)}, [node_id](auto result) {
      if (!result.ok()) {
        MQTT_LOG_WARN("registry: dropping the entries of removed node %s failed: %s", node_id,
                      result.status().ToString());
      }
    });
  });
}

RegistryNode::~RegistryNode() { Stop(); }

absl::Status RegistryNode::Start() {
  if (options_.bootstrap_members.size() > 7) {
    return absl::InvalidArgumentError("registry: at most 7 bootstrap members");
  }
  if (!Registry::IsPristine(options_.registry.data_dir)) {
    if (absl::Status s = registry_->Start(); !s.ok()) return s;
    started_registry_ = true;
  }
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void RegistryNode::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  client_->Stop();
  registry_->Stop();
}

bool RegistryNode::ready() const {
  return !registry_->Members().empty() && !registry_->LeaderId().empty();
}

void RegistryNode::Run() {
  wait_log_.Defer();  // waiting for the bootstrap members is logged once it has lasted 10 s
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&stopping), options_.tick);
      if (stopping_) return;
    }
    for (const MemberInfo& m : membership_->Members()) registry_->NoteMember(m.node_id);
    if (!started_registry_) {
      if (std::optional<std::vector<RegistryPeer>> bootstrap = DecideBootstrap()) {
        started_registry_ = StartRegistry(std::move(*bootstrap));
      }
      continue;
    }
    if (registry_->IsLeader()) Reconcile();
  }
}

std::optional<std::vector<RegistryPeer>> RegistryNode::DecideBootstrap() {
  const std::string& self = options_.registry.node_id;
  const std::vector<std::string>& set = options_.bootstrap_members;
  if (set.empty()) {
    if (options_.has_seeds) return std::vector<RegistryPeer>();  // join
    return std::vector<RegistryPeer>{{self, options_.registry.raft_address}};
  }
  if (std::find(set.begin(), set.end(), self) == set.end()) return std::vector<RegistryPeer>();
  absl::flat_hash_map<std::string, std::string> raft_of;  // alive members of the set
  for (const MemberInfo& m : membership_->Members()) {
    if (m.state != MemberState::kAlive) continue;
    if (m.node_id == self) {
      raft_of[self] = options_.registry.raft_address;
      continue;
    }
    if (std::find(set.begin(), set.end(), m.node_id) == set.end()) continue;
    const std::string raft = RaftAddressOf(m);
    if (!raft.empty()) raft_of[m.node_id] = raft;
  }
  if (raft_of.size() == set.size()) {
    std::vector<RegistryPeer> bootstrap;
    for (const std::string& id : set) bootstrap.push_back(RegistryPeer{id, raft_of[id]});
    return bootstrap;
  }
  if (wait_log_.Allow()) {
    MQTT_LOG_WARN(
        "registry %s: waiting for the bootstrap members %s (%zu of %zu seen); CONNECTs "
        "are refused meanwhile",
        self, absl::StrJoin(set, ","), raft_of.size(), set.size());
  }
  return std::nullopt;
}

bool RegistryNode::StartRegistry(std::vector<RegistryPeer> bootstrap) {
  std::vector<std::string> names;
  for (const RegistryPeer& peer : bootstrap) names.push_back(peer.node_id);
  if (absl::Status s = registry_->Start(std::move(bootstrap)); !s.ok()) {
    // Retried every tick (the port may be freed); logged once, then every 30 s with the
    // attempts since the last line (this one and those not logged).
    if (const LogPermit permit = start_error_log_.Allow()) {
      MQTT_LOG_ERROR(
          "registry %s: cannot start (%d attempts; retrying; CONNECTs are refused "
          "meanwhile): %s",
          options_.registry.node_id, permit.suppressed + 1, s.ToString());
    }
    return false;
  }
  if (!names.empty()) {
    MQTT_LOG_INFO("registry %s: bootstrapping with %s", options_.registry.node_id,
                  absl::StrJoin(names, ", "));
  }
  return true;
}

// One configuration change per call, the most urgent first (registry_plan.h).
void RegistryNode::Reconcile() {
  {
    absl::MutexLock lock(&mu_);
    if (change_in_flight_) return;
  }
  const std::optional<RegistryConfigChange> change = PlanRegistryConfigChange(
      registry_->Members(), membership_->Members(), options_.registry.node_id);
  if (!change.has_value()) return;
  Change(RegistryConfigChangeName(change->kind), change->node_id, [&](Registry::DoneCallback done) {
    if (change->removes()) {
      registry_->RemoveMember(change->node_id, std::move(done));
    } else {
      registry_->AddMember(change->node_id, change->raft_address, change->voter, std::move(done));
    }
  });
}

void RegistryNode::Change(const char* what, const std::string& node_id,
                          const std::function<void(Registry::DoneCallback)>& start) {
  {
    absl::MutexLock lock(&mu_);
    change_in_flight_ = true;
  }
  MQTT_LOG_INFO("registry %s: %s member %s", options_.registry.node_id, what, node_id);
  start([this, what, node_id](absl::Status s) { ChangeDone(what, node_id, s); });
}

void RegistryNode::ChangeDone(const char* what, const std::string& node_id, absl::Status status) {
  if (!status.ok()) {
    MQTT_LOG_WARN("registry %s: %s member %s failed: %s", options_.registry.node_id, what, node_id,
                  status.ToString());
  }
  absl::MutexLock lock(&mu_);
  change_in_flight_ = false;
}

void ClientClaims::Claim(const std::string& client_id, ClaimDone done) {
  Propose(RegisterCommand(client_id, node_id_), client_id, allow_without_majority_,
          std::move(done));
}

void ClientClaims::ClaimFrom(const std::string& client_id, const std::string& holder,
                             ClaimDone done) {
  Propose(RegisterCommand(client_id, node_id_, holder), client_id,
          /*allow_without_majority=*/false, std::move(done));
}

void ClientClaims::Reclaim(const std::string& client_id, ClaimDone done) {
  Propose(RegisterCommand(client_id, node_id_), client_id, /*allow_without_majority=*/false,
          std::move(done));
}

void ClientClaims::Propose(v1::RegistryCommand command, const std::string& client_id,
                           bool allow_without_majority, ClaimDone done) {
  node_->Propose({std::move(command)}, [this, client_id, allow_without_majority,
                                        done = std::move(done)](
                                           absl::StatusOr<std::vector<RegistryChange>> result) {
    if (result.ok() && result->size() == 1) {
      const RegistryChange& change = (*result)[0];
      if (change.kind == RegistryChange::Kind::kIgnored) {
        return done(absl::FailedPreconditionError("another node holds the client id"));
      }
      Claimed claimed{change.holder.epoch, {}};
      if (change.previous.has_value() && change.previous->node_id != node_id_) {
        claimed.previous_node = change.previous->node_id;
      }
      return done(std::move(claimed));
    }
    absl::Status error = result.ok() ? absl::InternalError("registry: no change") : result.status();
    if (!allow_without_majority) return done(std::move(error));
    MQTT_LOG_WARN("client %s: connected without registering (%s)", client_id, error.message());
    done(Claimed{});
  });
}

bool ClientClaims::StillHolds(const std::string& client_id, uint64_t epoch) const {
  std::optional<RegistryHolder> holder = node_->registry().Holder(client_id);
  return !holder.has_value() || holder->epoch <= epoch;
}

std::optional<ClientRegistry::Holder> ClientClaims::HolderOf(const std::string& client_id) const {
  std::optional<RegistryHolder> holder = node_->registry().Holder(client_id);
  if (!holder.has_value()) return std::nullopt;
  return Holder{holder->node_id, holder->epoch, holder->node_id == node_id_};
}

void ClientClaims::Release(const std::string& client_id, uint64_t epoch) {
  node_->Propose({ReleaseCommand(client_id, node_id_, epoch)}, [client_id](auto result) {
    if (!result.ok()) {
      MQTT_LOG_DEBUG("client %s: registry release failed: %s", client_id,
                     result.status().message());
    }
  });
}

}  // namespace mqtt::cluster
