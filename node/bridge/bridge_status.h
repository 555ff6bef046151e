// SPDX-License-Identifier: Apache-2.0
// BridgeStatus: what `mqttctl bridges` shows of one configured bridge on one node
// (proto/admin.proto `Bridge`), a copy taken by Bridge::Status() (bridge.h). Plain data with no
// dependency, so that cluster/admin.h takes it without linking the bridge.
#pragma once

#include <cstdint>
#include <string>

namespace mqtt::bridge {

struct BridgeStatus {
  std::string name;
  bool running = false;          // started on this node (clustered: this node is its owner)
  std::string owner;             // the node that placement picked in this node's view; empty alone
  bool connected = false;        // both links up: the remote's CONNACK and the local session's
  std::string remote_address;    // HOST:PORT in use, or of the last attempt
  std::string protocol_version;  // to the remote: "3.1.1" or "5.0"
  int64_t connected_since_unix_ms = 0;  // 0 while not connected
  // The reason of the last failure: the remote's refusal (CONNACK or DISCONNECT reason code and
  // name) or the socket, TLS or protocol error; empty if none since the bridge started.
  std::string last_error;
  int64_t last_error_unix_ms = 0;
  uint64_t connects = 0;             // successful connections since start
  uint64_t failed_attempts = 0;      // attempts failed since the last successful one
  uint32_t retry_delay_seconds = 0;  // the backoff before the next attempt (0 while connected)
  uint64_t messages_out = 0;         // PUBLISH sent to the remote
  uint64_t messages_in = 0;          // PUBLISH received from the remote
  // Outgoing QoS 1/2 window: the remote's Receive Maximum (5.0 CONNACK; 65535 without one, as
  // for 3.1.1), applied on top of the local session's limits.max_inflight; and how many
  // outgoing QoS 1/2 exchanges are open at the remote now.
  uint32_t send_window = 0;
  uint32_t inflight_out = 0;
};

}  // namespace mqtt::bridge
