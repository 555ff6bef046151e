// SPDX-License-Identifier: Apache-2.0
// RegistryState: the state machine of the cluster's client-id registry (issue 12, invariant 1:
// at most one connected session per client id in the cluster). Which node holds the session of
// each client id, with an epoch that orders the holders: the state machine that a replicated
// log (Raft, cluster/registry.h) applies on every node, in the same order, so that every node
// reaches the same answer. Pure logic: no I/O, no clock, no lock.
//
// Rules:
// - Register(client, node): the client's session is now on `node`, at epoch last_epoch + 1 (one
//   counter for the whole registry: an epoch is never given twice). The change names the
//   previous holder, which closes its connection (5.0: DISCONNECT 0x8E) and hands the session
//   over. Registering again on the same node also takes a new epoch (a new connection there
//   replaces the old one: MQTT's takeover). With `only_from`, applied only if that node holds
//   the client id or nobody does (a drain's handover), else ignored.
// - Release(client, node, epoch): the holder at exactly that epoch is gone (a clean session
//   ended); a later Register is never undone by an older Release.
// - DropNode(node): the node was removed from the cluster; its entries go.
// Commands come in batches (one log entry each, so that many CONNECTs share one commit); a batch
// that does not parse is skipped whole, on every node alike (its proposers see an error).
//
// Threading: none; the owner serializes calls.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "proto/registry.pb.h"

namespace mqtt::cluster {

struct RegistryHolder {
  std::string node_id;
  uint64_t epoch = 0;
};

// What one command did.
struct RegistryChange {
  enum class Kind { kRegistered, kReleased, kIgnored };
  Kind kind = Kind::kIgnored;
  std::string client_id;
  RegistryHolder holder;                   // kRegistered: the new one; kReleased: the old one
  std::optional<RegistryHolder> previous;  // kRegistered: who held it before, if anyone
};

class RegistryState {
 public:
  // Applies one serialized RegistryBatch; returns what each command did, in order.
  // InvalidArgument (and no change) if it does not parse.
  absl::Status Apply(std::string_view batch, std::vector<RegistryChange>* changes);
  void Apply(const v1::RegistryCommand& command, std::vector<RegistryChange>* changes);

  std::optional<RegistryHolder> Holder(std::string_view client_id) const;
  size_t size() const { return holders_.size(); }
  uint64_t last_epoch() const { return last_epoch_; }

  // The whole state, serialized (v1::RegistrySnapshot), and its restoration: Restore replaces
  // everything. InvalidArgument if `snapshot` does not parse.
  std::string Snapshot() const;
  absl::Status Restore(std::string_view snapshot);

 private:
  absl::flat_hash_map<std::string, RegistryHolder> holders_;
  uint64_t last_epoch_ = 0;
};

// Helpers to build batches.
v1::RegistryCommand RegisterCommand(std::string_view client_id, std::string_view node_id,
                                    std::string_view only_from = {});
v1::RegistryCommand ReleaseCommand(std::string_view client_id, std::string_view node_id,
                                   uint64_t epoch);
v1::RegistryCommand DropNodeCommand(std::string_view node_id);

}  // namespace mqtt::cluster
