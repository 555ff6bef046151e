// SPDX-License-Identifier: Apache-2.0
#include "cluster/registry_state.h"

#include <algorithm>
#include <utility>

namespace mqtt::cluster {

absl::Status RegistryState::Apply(std::string_view batch, std::vector<RegistryChange>* changes) {
  v1::RegistryBatch parsed;
  if (!parsed.ParseFromArray(batch.data(), static_cast<int>(batch.size()))) {
    return absl::InvalidArgumentError("registry: a log entry that is not a RegistryBatch");
  }
  for (const v1::RegistryCommand& command : parsed.commands()) Apply(command, changes);
  return absl::OkStatus();
}

void RegistryState::Apply(const v1::RegistryCommand& command,
                          std::vector<RegistryChange>* changes) {
  RegistryChange change;
  switch (command.command_case()) {
    case v1::RegistryCommand::kRegister: {
      const v1::Register& r = command.register_();
      change.client_id = r.client_id();
      if (!r.only_from().empty()) {
        auto held = holders_.find(r.client_id());
        if (held != holders_.end() && held->second.node_id != r.only_from()) break;  // ignored
      }
      RegistryHolder& holder = holders_[r.client_id()];
      if (!holder.node_id.empty()) change.previous = holder;
      holder = {r.node_id(), ++last_epoch_};
      change.kind = RegistryChange::Kind::kRegistered;
      change.holder = holder;
      break;
    }
    case v1::RegistryCommand::kRelease: {
      const v1::Release& r = command.release();
      change.client_id = r.client_id();
      auto it = holders_.find(r.client_id());
      if (it != holders_.end() && it->second.node_id == r.node_id() &&
          it->second.epoch == r.epoch()) {
        change.kind = RegistryChange::Kind::kReleased;
        change.holder = it->second;
        holders_.erase(it);
      }
      break;
    }
    case v1::RegistryCommand::kDropNode: {
      const std::string& node = command.drop_node().node_id();
      absl::erase_if(holders_, [&](const auto& entry) {
        if (entry.second.node_id != node) return false;
        RegistryChange dropped;
        dropped.kind = RegistryChange::Kind::kReleased;
        dropped.client_id = entry.first;
        dropped.holder = entry.second;
        changes->push_back(std::move(dropped));
        return true;
      });
      return;
    }
    case v1::RegistryCommand::COMMAND_NOT_SET:
      break;
  }
  changes->push_back(std::move(change));
}

std::optional<RegistryHolder> RegistryState::Holder(std::string_view client_id) const {
  auto it = holders_.find(absl::string_view(client_id.data(), client_id.size()));
  if (it == holders_.end()) return std::nullopt;
  return it->second;
}

std::string RegistryState::Snapshot() const {
  v1::RegistrySnapshot snapshot;
  snapshot.set_last_epoch(last_epoch_);
  std::vector<const std::pair<const std::string, RegistryHolder>*> sorted;
  sorted.reserve(holders_.size());
  for (const auto& entry : holders_) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
  for (const auto* entry : sorted) {
    v1::RegistryEntry* out = snapshot.add_entries();
    out->set_client_id(entry->first);
    out->set_node_id(entry->second.node_id);
    out->set_epoch(entry->second.epoch);
  }
  return snapshot.SerializeAsString();
}

absl::Status RegistryState::Restore(std::string_view data) {
  v1::RegistrySnapshot snapshot;
  if (!snapshot.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
    return absl::InvalidArgumentError("registry: a snapshot that is not a RegistrySnapshot");
  }
  holders_.clear();
  for (const v1::RegistryEntry& entry : snapshot.entries()) {
    holders_[entry.client_id()] = {entry.node_id(), entry.epoch()};
  }
  last_epoch_ = snapshot.last_epoch();
  return absl::OkStatus();
}

v1::RegistryCommand RegisterCommand(std::string_view client_id, std::string_view node_id,
                                    std::string_view only_from) {
  v1::RegistryCommand command;
  command.mutable_register_()->set_client_id(std::string(client_id));
  command.mutable_register_()->set_node_id(std::string(node_id));
  if (!only_from.empty()) command.mutable_register_()->set_only_from(std::string(only_from));
  return command;
}

v1::RegistryCommand ReleaseCommand(std::string_view client_id, std::string_view node_id,
                                   uint64_t epoch) {
  v1::RegistryCommand command;
  v1::Release* release = command.mutable_release();
  release->set_client_id(std::string(client_id));
  release->set_node_id(std::string(node_id));
  release->set_epoch(epoch);
  return command;
}

v1::RegistryCommand DropNodeCommand(std::string_view node_id) {
  v1::RegistryCommand command;
  command.mutable_drop_node()->set_node_id(std::string(node_id));
  return command;
}

}  // namespace mqtt::cluster
