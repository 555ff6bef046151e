// SPDX-License-Identifier: Apache-2.0
// The seams between a node's broker and the cluster (implemented on either side by cluster/):
// - RemoteDelivery: messages from this node's publishers to other nodes;
// - ForwardedDelivery: messages other nodes forwarded here, delivered to local sessions;
// - RetainedReplication: retained publishes made here, replicated to every node;
// - ClientRegistry: who holds each client id cluster-wide (one connected session per id).
//
// Threading: stated per method. Worker-thread methods must not block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "node/base/executor.h"
#include "node/protocol/message.h"
#include "node/router/ack_token.h"
#include "node/session/session_host.h"
#include "storage/store.h"

namespace mqtt {

// The shared group a forwarded copy is for: the receiving node gives it to one member of that
// group there and to nobody else. `hops`: how many nodes passed it on already (0 from the
// publisher's node; a node only passes on a copy with 0, so a copy crosses at most two links).
// The views are valid during the call only.
struct SharedTarget {
  std::string_view group;   // "$queue" for $queue/ filters
  std::string_view filter;  // without the $share/{group}/ prefix
  uint32_t hops = 0;
  // Set instead of group and filter: a copy for this client's session only, which moved to the
  // receiving node (SessionMover::Relay); the message's qos and retain are the session's.
  std::string_view client_id;
  const std::vector<uint32_t>* subscription_ids = nullptr;  // 5.0; may be null
};

// The delivery path to other nodes (the cluster's forwarder). Called on the publishing worker's
// thread with that worker's storage, once per remote node with a matching plain route (`shared`
// null: a copy for its plain subscribers) and once per shared group that picked that node
// (`shared` set), each a copy of its own: what the implementation puts in the batch is
// committed at the end of the turn, before the publisher is acknowledged. `durable`: a
// persistent session there is a target, so a QoS 1/2 message must survive the loss of either
// node. `ack` (null for QoS 0) is the publisher's acknowledgement token: hold it for as long as
// the publisher must wait.
class RemoteDelivery {
 public:
  virtual void Forward(SessionStorage& from, uint32_t node, bool durable, const MessagePtr& message,
                       const AckTokenPtr& ack, const SharedTarget* shared) = 0;

 protected:
  ~RemoteDelivery() = default;
};

// What the forwarder needs of this node to deliver the messages other nodes forward to it
// (implemented by Broker).
class ForwardedDelivery {
 public:
  virtual size_t worker_count() const = 0;
  // Any thread.
  virtual Executor& executor_of(uint32_t worker) = 0;
  // On `worker`'s thread: its storage (batch committed at the end of the turn).
  virtual SessionStorage& storage_of(uint32_t worker) = 0;
  // On `worker`'s thread: delivers a forwarded copy. `shared` null: to this node's plain
  // subscribers only; else to one member of that group only, a session here, or, when none is
  // left here and hops is 0, passed on to another node that has one (through RemoteDelivery,
  // with `worker`'s storage). Otherwise a copy is never forwarded again, and the retained store
  // is not touched (retained messages replicate on their own). `ack`, if not null, is held by
  // every batch that persists the message for a session or a node.
  virtual void DeliverForwarded(uint32_t worker, const MessagePtr& message, const AckTokenPtr& ack,
                                const SharedTarget* shared) = 0;

 protected:
  ~ForwardedDelivery() = default;
};

// Retained messages across the cluster: when set, it replaces the broker's own router and store
// update for every retained publish made on this node (a set, or a delete with an empty
// payload), and must apply it to the router before returning. Called on the publishing worker's
// thread with that worker's storage (what goes in its batch holds `ack` with
// SessionStorage::HoldUntilCommitted). Returns what Router::SetRetained returned.
class RetainedReplication {
 public:
  virtual uint64_t PublishRetained(SessionStorage& storage, const MessagePtr& message,
                                   const AckTokenPtr& ack) = 0;

 protected:
  ~RetainedReplication() = default;
};

// The cluster's client-id registry (issue 12): at most one connected session per client id in the
// cluster. Every CONNECT claims its client id before its CONNACK; the latest claim (highest epoch)
// wins everywhere, and the node that held the id before is told (Broker::ClaimedElsewhere).
struct Claimed {
  uint64_t epoch = 0;         // 0: not registered (allowed without a registry majority)
  std::string previous_node;  // the node that held the client id before, if another one
};

class ClientRegistry {
 public:
  using ClaimDone = std::function<void(absl::StatusOr<Claimed> claim)>;
  // Any thread. `done` runs once, on any thread, with the epoch of this claim (epochs grow
  // cluster-wide) and the node that held the id before, or an error when it could not be made
  // (no registry majority reachable): the CONNECT is then refused.
  virtual void Claim(const std::string& client_id, ClaimDone done) = 0;
  // Any thread, non-blocking: false if this node knows of a claim newer than `epoch` (the claim
  // at `epoch` lost a race and must not connect).
  virtual bool StillHolds(const std::string& client_id, uint64_t epoch) const = 0;
  // Any thread: the session claimed at `epoch` ended on this node (a clean session closed, or an
  // expired one).
  virtual void Release(const std::string& client_id, uint64_t epoch) = 0;
  // Any thread: as Claim, but only while `holder` holds the client id (or nobody does): a
  // drain hands a session over without taking it from a client that reconnected elsewhere
  // meanwhile. FailedPrecondition when another node holds it; never claims without a majority.
  virtual void ClaimFrom(const std::string& client_id, const std::string& holder,
                         ClaimDone done) = 0;
  // Any thread, non-blocking: who holds `client_id` in this node's copy of the registry, which
  // may lag the leader's by what this node has not applied yet (so a decision taken on it is
  // checked again by the node it names); nullopt when nobody does.
  struct Holder {
    std::string node_id;
    uint64_t epoch = 0;
    bool here = false;  // node_id is this node
  };
  virtual std::optional<Holder> HolderOf(const std::string& client_id) const = 0;
  // Any thread: as Claim, for a connection that was let in without registering (epoch 0,
  // `allow_register_during_netsplit` on a side without a majority), once a majority may be
  // back; never succeeds without one. The node that registered the id meanwhile closes its
  // connection (ClaimedElsewhere) and its session is collected here.
  virtual void Reclaim(const std::string& client_id, ClaimDone done) = 0;

 protected:
  ~ClientRegistry() = default;
};

// A persistent session as it moves between nodes: what the store holds of it.
struct TransferredSession {
  storage::SessionState state;  // record, in-flight window with messages, inbound QoS 2, next_seq
  std::vector<storage::QueuedMessage> queue;  // in queue order
};

// Moving sessions between nodes (issue 12, docs/cluster-sessions.md "Handover"), implemented by
// the cluster (cluster/session_transfer.h). The node that won a client id (B) fetches the session
// from the node that held it (A), writes it, and tells A it is done; A then passes on what still
// reaches it for that client (Relay) for a while, and forgets the session.
class SessionMover {
 public:
  using Fetched = std::function<void(absl::StatusOr<std::optional<TransferredSession>>)>;
  // Any thread; `done` on any thread: the session A held (nullopt: none, or `discard`: a clean
  // start, A deleted it), or an error when A cannot be asked (down, unreachable): the connection
  // then starts a new session (A's queued messages follow when it is back, see the doc).
  virtual void Fetch(const std::string& client_id, uint64_t epoch, const std::string& from_node,
                     bool discard, Fetched done) = 0;
  // Any thread: B holds the session (written and committed). Retried in the background.
  virtual void Finish(const std::string& client_id, uint64_t epoch,
                      const std::string& from_node) = 0;
  // On a worker, with its storage: a message for the session of `client_id` on `to_node`, durable
  // as RemoteDelivery::Forward with `durable` (the batch holds `ack`). `message` carries the qos
  // and retain flag the session gets.
  virtual void Relay(SessionStorage& from, const std::string& to_node, const std::string& client_id,
                     const MessagePtr& message, const std::vector<uint32_t>& subscription_ids,
                     const AckTokenPtr& ack) = 0;
  // Owner node down, the returning node's side (docs/cluster-sessions.md "Owner node down"):
  // asks `holder`, which the registry names for `client_id`, to collect this node's stale copy
  // of the session (SessionSource::CollectSession there). Any thread; `done` on any thread.
  virtual void AskToCollect(const std::string& client_id, const std::string& holder,
                            std::function<void(absl::Status)> done) = 0;

 protected:
  ~SessionMover() = default;
};

// The other side of SessionMover: what the cluster asks of this node's broker when another node
// takes a session from it (implemented by Broker).
class SessionSource {
 public:
  using Exported = SessionMover::Fetched;
  // Any thread; `done` on a worker. Closes the client's connection here if any (it moved),
  // and gives the persistent session as stored, keeping it until FinishExport; with `discard`
  // deletes it and gives nullopt. nullopt too when there is no session (or only a clean one).
  // While a claim made here is still fetching the session from another node, the export waits
  // for it (import_gate.h), so that the session goes on instead of being reported missing.
  virtual void ExportSession(const std::string& client_id, uint64_t epoch,
                             const std::string& to_node, bool discard, Exported done) = 0;
  // Any thread: the session taken at `epoch` is held by `to_node` now: what was queued here after
  // the export goes there, the stored copy is deleted.
  virtual void FinishExport(const std::string& client_id, uint64_t epoch) = 0;

  // Draining (docs/cluster-sessions.md "Drain"). On the node that takes a session: any thread,
  // `done` on any thread. Takes over the persistent session `from_node` holds for `client_id`
  // without a connection: claims the id only while `from_node` holds it (ClaimFrom), fetches,
  // writes and restores the session (offline), and finishes the move. NotFound: `from_node`
  // had no such session; FailedPrecondition: another node holds the id now (its client
  // reconnected there, and the session followed it); others: as Claim and Fetch. A claim made
  // elsewhere after this one's still lets the session be written here: that node takes it on.
  using Adopted = std::function<void(absl::Status)>;
  virtual void AdoptSession(const std::string& client_id, const std::string& from_node,
                            Adopted done) = 0;
  // Owner node down, on the node holding the client id: any thread, `done` on any thread.
  // `from_node` kept a copy of the session while its client came here (it was down or cut off):
  // fetches that copy and delivers the messages its client never got (queued, and in flight
  // before PUBREC) into the session here, then finishes the move so that `from_node` deletes
  // the copy. NotFound when this node does not hold the id or has no session for it (the copy
  // then stays on `from_node`); others as Fetch.
  virtual void CollectSession(const std::string& client_id, const std::string& from_node,
                              Adopted done) = 0;
  // On the draining node, any thread: how far its handovers are (summed over the workers).
  struct Handovers {
    size_t exporting = 0;  // exported, waiting for the taker's Finish
    size_t relaying = 0;   // moved sessions whose routes still lead here (relay stubs)
    // MonotonicMs of the last Finish. Not of the last relayed message: the stubs keep their
    // routes announced, so under steady traffic relays never go quiet before the stubs end.
    int64_t last_finish_ms = 0;
  };
  virtual std::future<Handovers> HandoverState() = 0;
  // Any thread: ends every relay stub now (their routes leave with them).
  virtual void EndRelays() = 0;

 protected:
  ~SessionSource() = default;
};

}  // namespace mqtt
