// SPDX-License-Identifier: Apache-2.0
// Drainer: the cluster part of draining a node (issue 12, docs/cluster-sessions.md "Drain"):
// once the node has stopped accepting and closed its connections, every persistent session it
// holds is handed to another node, and the node waits until nothing of its own is left to send.
//
// 1. Each persistent session goes to one of the alive members, chosen by rendezvous hashing of
//    its client id (an even spread, and the same choice whoever asks), through that member's
//    Adopt (SessionTransfer::Push): it claims the id only while this node holds it (a client
//    that already reconnected elsewhere took its session with it), Takes, writes, Finishes.
//    `parallel` adoptions are in flight at once; a failed one is tried on the next member. When
//    another node holds the client id (its client reconnected there), that node is asked to
//    collect what is left here (SessionTransfer::AskToCollect): nothing if it took the session
//    in a handover, the whole copy if it started its client on a new session because this node
//    seemed unreachable.
// 2. It waits until every export got its Finish, then `settle` more while the relay stubs (the
//    moved sessions' routes, still in the other nodes' tables for a moment) pass on what still
//    reaches this node, then ends them: the new holders' routes have spread by then, so what
//    reaches this node for them afterwards is a copy their new node got directly too. (Not
//    "until the relays are quiet": the stubs keep their routes announced, so under steady
//    traffic they never are; a drain under load took until its stubs expired, 60 s.)
// 3. It waits until this node's forwarding outboxes to alive members are empty (the relays and
// forwards it made
//    reached their nodes). Sessions that no other node took stay in this node's store.
//
// Threading: Run blocks its caller (the main thread); everything else is the callees'.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "cluster/forward.h"
#include "cluster/membership.h"
#include "cluster/session_transfer.h"
#include "node/session/remote.h"
#include "node/session/session_info.h"

namespace mqtt::cluster {

struct DrainOptions {
  std::string node_id;
  int parallel = 32;                                 // adoptions in flight
  absl::Duration adopt_timeout = absl::Seconds(10);  // each
  absl::Duration settle = absl::Seconds(2);          // after the last Finish, relays end
};

struct DrainReport {
  uint64_t sessions = 0;     // persistent sessions here when the drain began
  uint64_t moved = 0;        // taken by another node through Adopt
  uint64_t followed = 0;     // their client had reconnected elsewhere: moved or collected there
  uint64_t ended = 0;        // gone meanwhile (expired, or a clean start elsewhere)
  uint64_t kept = 0;         // not moved: they stay in this node's store
  std::string kept_reason;   // why, for the first one kept
  uint64_t outbox_left = 0;  // forwarding entries not acknowledged by their node at the end
  absl::Duration took;
};

class Drainer {
 public:
  using ListSessions = std::function<std::future<std::vector<SessionInfo>>(SessionFilter)>;
  // All must outlive Run.
  Drainer(DrainOptions options, Membership* membership, SessionTransfer* transfer,
          Forwarder* forwarder, SessionSource* source, ListSessions sessions,
          const ClientRegistry* registry);

  // Hands everything over (above), giving up on what is left at `deadline`.
  DrainReport Run(absl::Time deadline);

 private:
  std::vector<std::string> PersistentSessions(absl::Time deadline);
  void MoveSessions(const std::vector<std::string>& client_ids, absl::Time deadline,
                    DrainReport* report);
  // The other node this node's copy of the registry names for `client_id`, waiting up to 3 s
  // (at most until `deadline`) for it to catch up; nullopt if none.
  std::optional<ClientRegistry::Holder> HolderElsewhere(const std::string& client_id,
                                                        absl::Time deadline) const;
  void AwaitHandovers(absl::Time deadline);
  uint64_t AwaitOutboxes(absl::Time deadline);

  const DrainOptions options_;
  Membership* const membership_;
  SessionTransfer* const transfer_;
  Forwarder* const forwarder_;
  SessionSource* const source_;
  const ListSessions sessions_;
  const ClientRegistry* const registry_;
};

// The alive members other than `self` in rendezvous order for `client_id`: the first takes the
// session, the next one if it fails. Deterministic (exposed for tests).
std::vector<std::string> RendezvousOrder(const std::string& client_id,
                                         std::vector<std::string> members);

}  // namespace mqtt::cluster
