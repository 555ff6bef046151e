// SPDX-License-Identifier: Apache-2.0
// Bridge: a connection from this node to another MQTT broker (Mosquitto, another cluster, a
// cloud broker) that shares topics as Mosquitto's bridges do (topic_line.h, docs/bridges.md).
//
// Contract:
// - Two MQTT client links, relayed packet by packet: the remote one (TCP or TLS, MQTT 3.1.1 or
//   5.0) and a local one into this node's broker over an in-process socket pair, as the
//   persistent MQTT 5.0 session `$bridge/<name>` (clean start 0, no expiry). The local link
//   exists only while the remote one is up, so while the remote is down or unreachable that
//   session is offline and the broker queues the outgoing QoS 1/2 messages for it in RocksDB,
//   in order, bounded by limits.max_queued_messages, as for any persistent client.
// - Acknowledgements are end to end: a message from this node is acknowledged to the broker
//   (PUBACK/PUBCOMP) only after the remote acknowledged it; a message from the remote is
//   acknowledged to the remote only after this broker acknowledged it, i.e. once durable
//   (node/router/ack_token.h). Either link dropping drops both; unacknowledged messages are
//   sent again after the reconnect (at least once; a QoS 2 message relayed when a link broke
//   may arrive twice).
// - Loops: the local subscriptions use No Local; the remote ones too on 5.0; on 3.1.1 the
//   CONNECT carries try_private (protocol level 0x84) so that a Mosquitto remote does not echo.
// - Reconnect: the remote addresses are tried in turn (failover), after restart_min seconds,
//   doubled per failure up to restart_max; a successful CONNACK resets the delay.
// - Flow control: at most min(limits.max_inflight, the remote's 5.0 Receive Maximum) outgoing
//   QoS 1/2 exchanges are open at the remote [MQTT-3.3.4-7]: the local session's CONNECT asks
//   the broker for that window, and the relay holds back what the broker re-sends beyond it
//   when the session resumes. Incoming likewise within this node's Receive Maximum.
// - QoS 2 exactly once across a reconnect (and a kill of mqttd) when the remote session is
//   persistent (clean_session false): packet ids are relayed unchanged, so the ids and stages
//   the local session keeps on disk are those the remote knows; on resuming, the broker re-sends
//   PUBREL for the exchanges the remote had PUBREC'd and PUBLISH (DUP) for the others, in order,
//   and the remote recognises both [MQTT-4.3.3-10]. Incoming the same holds with the remote's
//   ids and this node's inbound QoS 2 records.
// - State: `$SYS/broker/connection/<name>/state`, retained, "1" connected / "0" not (local to
//   this node, as every $SYS topic), the counters of BridgeStats, and Status() (`mqttctl
//   bridges`). A failure is logged once per change of reason (the remote's refusal with its
//   reason code and name, or the socket or TLS error), not once per retry.
//
// Threading: a bridge lives on one worker (its io_context); Start, Stop and SetOwner may be
// called from any thread but a worker's (one at a time); stats() and Status() from any thread:
// the counters are relaxed atomics, the rest of Status() a copy taken under a mutex that the
// worker holds only to update it at a change of state (connect, failure, address tried), never
// per message.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "node/bridge/bridge_status.h"
#include "node/bridge/topic_line.h"
#include "node/net/io_worker.h"
#include "node/protocol/packets.h"
#include "node/session/broker.h"

namespace mqtt::bridge {

struct BridgeOptions {
  std::string name;
  std::vector<std::string> addresses;  // HOST:PORT
  Version version = Version::kV311;
  std::string client_id;  // remote client id
  std::string username;   // empty: none
  std::string password;   // empty: none
  bool tls = false;
  std::string ca_file;  // empty: the system's CAs
  std::string cert_file;
  std::string key_file;
  bool verify = true;
  std::string server_name;  // empty: the host of the address
  bool clean_session = false;
  uint32_t session_expiry = 3600;  // 5.0
  uint16_t keepalive = 60;
  uint32_t restart_min = 5;
  uint32_t restart_max = 30;
  bool try_private = true;
  std::vector<TopicLine> topics;
};

// Counters, relaxed atomics written on the bridge's worker.
struct BridgeStats {
  std::atomic<bool> connected{false};
  std::atomic<uint64_t> connects{0};  // successful remote connections
  std::atomic<uint64_t> sent{0};      // PUBLISH sent to the remote
  std::atomic<uint64_t> received{0};  // PUBLISH received from the remote
};

class Bridge {
 public:
  Bridge(Broker* broker, net::IoWorker* worker, BridgeOptions options);
  ~Bridge();
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  // Start connects (and keeps reconnecting); Stop closes both links and waits until the worker
  // did. Both idempotent; a stopped bridge may start again (a cluster moves bridges between
  // nodes: placement.h). Call from one thread.
  void Start();
  void Stop();
  bool running() const { return running_.load(std::memory_order_relaxed); }

  const std::string& name() const;
  const BridgeStats& stats() const;
  // A copy of the bridge's state and counters; any thread.
  BridgeStatus Status() const;
  // The node that placement picked for this bridge (node/bridge/placement.h), shown by Status().
  void SetOwner(std::string node_id);

  struct State;  // bridge.cc

 private:
  std::shared_ptr<State> state_;
  std::atomic<bool> running_{false};  // between Start() and Stop(); read by Status()
};

}  // namespace mqtt::bridge
