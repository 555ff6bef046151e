// SPDX-License-Identifier: Apache-2.0
// One direction of a bridge's relay (bridge.cc): PUBLISHes arrive on link `from` and leave on
// link `to` with the same packet id, acknowledgements go back the other way, a PUBREL forward.
// Why the same id: the ids are the sending session's (the local `$bridge/<name>` session
// outgoing, the remote's session incoming), unique among its open exchanges, and that session
// keeps them, with the stage of each exchange, across a reconnect and a restart. So a PUBLISH it
// re-sends reaches the receiver as the duplicate of a QoS 2 message the receiver already holds
// [MQTT-4.3.3-10], and a PUBREL it re-sends finds its exchange there [MQTT-4.4.0-1]: exactly
// once end to end when both sessions are persistent. Nothing of an exchange has to be stored by
// the bridge.
//
// Bookkeeping only (no I/O); used on the bridge's worker.
#ifndef MQTT_NODE_BRIDGE_RELAY_H_
#define MQTT_NODE_BRIDGE_RELAY_H_

#include <cstdint>
#include <deque>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "node/protocol/packets.h"

namespace mqtt::bridge {

struct Relay {
  // QoS 1/2 exchanges open on `to`, by id, with their QoS: from the PUBLISH (or a PUBREL `from`
  // re-sent for an exchange an earlier connection started) to its PUBACK/PUBCOMP.
  absl::flat_hash_map<uint16_t, uint8_t> open;
  std::deque<Publish> held;               // QoS 1/2 beyond the window, in arrival order
  absl::flat_hash_set<uint16_t> dropped;  // QoS 2 not relayed (no topic line): PUBCOMP'd here
  // `to`'s Receive Maximum [MQTT-3.3.4-7]: at most this many exchanges open on `to`. 65535 for
  // a 3.1.1 peer or a 5.0 CONNACK without one.
  uint32_t window = 65535;

  // The QoS 2 ids `to` may hold as received when the connection drops: every QoS 2 exchange
  // still open, whether or not its PUBREC came back before the drop (`to` stored the id when it
  // read the PUBLISH, which may be after the bridge last heard from it). Only a PUBREL releases
  // them there.
  std::vector<uint16_t> OpenQos2() const {
    std::vector<uint16_t> ids;
    for (const auto& [id, qos] : open) {
      if (qos == 2) ids.push_back(id);
    }
    return ids;
  }

  void Clear() {
    open.clear();
    held.clear();
    dropped.clear();
    window = 65535;
  }
};

}  // namespace mqtt::bridge

#endif  // MQTT_NODE_BRIDGE_RELAY_H_
