// SPDX-License-Identifier: Apache-2.0
// NodeContext: what the parts of a node's session layer (Shard, Client) need from the node as a
// whole, implemented by Broker. It keeps the include graph of node/session one way
// (session <- client <- shard <- broker) and lets tests stand in for the node.
//
// Threading: every method may be called from any worker thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "node/auth/access_control.h"
#include "node/auth/enhanced_auth.h"
#include "node/protocol/message.h"
#include "node/router/ack_token.h"
#include "node/router/router.h"
#include "node/session/session.h"
#include "storage/disk_watermark.h"
#include "storage/store.h"

namespace mqtt {

class ClientRegistry;  // remote.h
class ImportGate;      // import_gate.h
class SessionMover;    // remote.h

class Shard;

struct BrokerOptions {
  SessionLimits session_limits;
  uint32_t max_packet_size = 16 * 1024 * 1024;
  uint32_t connect_timeout_seconds = 10;
  uint16_t receive_maximum = 1024;    // inbound QoS 1/2 unacknowledged, advertised to 5.0
  uint16_t topic_alias_maximum = 64;  // inbound topic aliases per 5.0 connection
  uint16_t max_keep_alive = 65535;    // 5.0 Server Keep Alive caps the client's value
  // Persistent sessions end this long after their client left, at the latest (seconds;
  // 0xFFFFFFFF: never). Caps 5.0 Session Expiry Intervals.
  uint32_t max_session_expiry = 0xFFFFFFFF;
  // Per client, read from its socket (0: no limit): PUBLISH packets and bytes per second. Over
  // it, reading pauses until the client's token bucket has a token again (Client).
  uint32_t message_rate = 0;
  uint32_t byte_rate = 0;
  ShareStrategy share_strategy = ShareStrategy::kRoundRobin;
  // 5.0 enhanced authentication methods, by name; none by default (CONNECT with a method: 0x8C).
  std::vector<std::shared_ptr<const auth::AuthMethod>> auth_methods;
  // Password file and ACL file; null: every client and topic allowed (checked by Client only).
  std::shared_ptr<auth::AccessControl> access_control;
  // Sent to 5.0 clients that a shutdown or drain disconnects (DISCONNECT 0x9C Use another server
  // with this Server Reference); empty: 0x8B Server shutting down.
  std::string server_reference;
  // storage.min_free_disk; null: none. Above it, new persistent sessions and QoS 1/2 messages
  // that would be stored are refused (Client).
  std::shared_ptr<const storage::DiskWatermark> disk_watermark;
};

class NodeContext {
 public:
  virtual const BrokerOptions& options() const = 0;
  // Subscriptions, shared groups, retained messages and remote routes.
  virtual Router& router() = 0;
  // Routes a message published on worker `from_worker` (and stores it if retained). `ack`, if
  // not null, is held by every batch that persists the message (router/ack_token.h).
  virtual void Publish(uint32_t from_worker, MessagePtr message, AckTokenPtr ack) = 0;
  // Sends a shared-subscription message that session `from_session` did not acknowledge to
  // another member of its group. False, doing nothing, when there is no other member.
  virtual bool Redistribute(uint32_t from_worker, const OutboundMessage& message,
                            uint64_t from_session) = 0;
  // The worker that owns the session of `client_id`.
  virtual uint32_t HomeWorker(std::string_view client_id) const = 0;
  virtual Shard& shard(uint32_t worker) = 0;
  virtual size_t worker_count() const = 0;
  virtual uint64_t NewSessionId() = 0;
  // The enhanced authentication method called `name`, or null.
  virtual const auth::AuthMethod* FindAuthMethod(std::string_view name) const = 0;
  virtual bool shutting_down() const = 0;
  // Null when nothing is persisted.
  virtual storage::Store* store() const = 0;
  // A storage error: logged, and the node stops rather than acknowledge what it cannot keep.
  virtual void StorageFailed(const absl::Status& status) = 0;
  // The cluster's client-id registry; null on a single node (remote.h).
  virtual ClientRegistry* client_registry() const = 0;
  // Moves persistent sessions between nodes; null on a single node (remote.h).
  virtual SessionMover* session_mover() const = 0;
  // Claims whose session is still on its way here (import_gate.h); used with the registry only.
  virtual ImportGate& import_gate() = 0;

 protected:
  ~NodeContext() = default;
};

}  // namespace mqtt
