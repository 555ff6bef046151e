// The seams between a node's broker and the cluster (implemented on either side by cluster/):
// - RemoteDelivery: messages from this node's publishers to other nodes;
// - ForwardedDelivery: messages other nodes forwarded here, delivered to local sessions;
// - RetainedReplication: retained publishes made here, replicated to every node.
//
// Threading: stated per method. Worker-thread methods must not block.
#pragma once

#include <cstddef>
#include <cstdint>

#include "node/base/executor.h"
#include "node/protocol/message.h"
#include "node/router/ack_token.h"
#include "node/session/session_host.h"

namespace mqtt {

// The delivery path to other nodes (the cluster's forwarder). Called on the publishing worker's
// thread, once per remote node with a matching route, with that worker's storage: what the
// implementation puts in its batch is committed at the end of the turn, before the publisher is
// acknowledged. `durable`: a persistent session there matches, so a QoS 1/2 message must
// survive the loss of either node. `ack` (null for QoS 0) is the publisher's acknowledgement
// token: hold it for as long as the publisher must wait.
class RemoteDelivery {
 public:
  virtual void Forward(SessionStorage& from, uint32_t node, bool durable, const MessagePtr& message,
                       const AckTokenPtr& ack) = 0;

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
  // On `worker`'s thread: routes `message` to this node's sessions only (it is never forwarded
  // again, and the retained store is not touched: retained messages replicate on their own).
  // `ack`, if not null, is held by every batch that persists the message for a session.
  virtual void DeliverForwarded(uint32_t worker, const MessagePtr& message,
                                const AckTokenPtr& ack) = 0;

 protected:
  ~ForwardedDelivery() = default;
};

// Retained messages across the cluster: when set, it replaces the broker's own router and store
// update for every retained publish made on this node (a set, or a delete with an empty
// payload), and must apply it to the router before returning. Called on the publishing worker's
// thread with that worker's storage (what goes in its batch holds `ack` with
// SessionStorage::HoldUntilCommitted).
class RetainedReplication {
 public:
  virtual void PublishRetained(SessionStorage& storage, const MessagePtr& message,
                               const AckTokenPtr& ack) = 0;

 protected:
  ~RetainedReplication() = default;
};

}  // namespace mqtt
