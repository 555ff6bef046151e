// SPDX-License-Identifier: Apache-2.0
// What the broker tells the admin service about its sessions (`mqttctl sessions`, `mqttctl
// kick`; Broker::ListSessions and Broker::Kick): a seam like remote.h, so that cluster/ reads
// sessions without a broker header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mqtt {

struct SessionFilter {
  std::string client_id;  // exactly this client id; empty: every session
  size_t limit = 1000;    // the first `limit` sessions by client id; 0: no limit
};

// One session of this node, as its home worker saw it.
struct SessionInfo {
  std::string client_id;
  bool connected = false;
  uint8_t protocol_level = 4;  // CONNECT's: 3 (3.1), 4 (3.1.1), 5 (5.0)
  bool persistent = false;     // outlives its connection (3.x clean session 0, 5.0 expiry > 0)
  uint32_t subscriptions = 0;
  uint64_t inflight = 0;         // sent, not acknowledged yet
  uint64_t queued = 0;           // behind the inflight window, in memory and on disk
  uint32_t expiry_interval = 0;  // seconds; 0: ends with its connection; 0xFFFFFFFF: never
  uint64_t claim_epoch = 0;      // the registry epoch of its last connection; 0: none
};

}  // namespace mqtt
