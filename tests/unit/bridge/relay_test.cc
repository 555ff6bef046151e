// SPDX-License-Identifier: Apache-2.0
#include "node/bridge/relay.h"

#include <algorithm>
#include <vector>

#include "gtest/gtest.h"

namespace mqtt::bridge {
namespace {

// [MQTT-4.3.3-10]: the receiver keeps a QoS 2 id from the PUBLISH until the PUBREL, whether or
// not its PUBREC has reached the bridge; an id left out here stays taken at this node after a
// clean remote session restarts its numbering, and the message that reuses it is lost.
TEST(RelayTest, OpenQos2IncludesExchangesWhosePubrecHasNotComeBack) {
  Relay relay;
  relay.open.emplace(1, 2);  // PUBREC came back: awaiting the sender's PUBREL
  relay.open.emplace(2, 2);  // PUBLISH sent, PUBREC not yet read
  relay.open.emplace(3, 1);  // QoS 1: the receiver keeps no id
  std::vector<uint16_t> ids = relay.OpenQos2();
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<uint16_t>{1, 2}));
}

TEST(RelayTest, DroppedAndHeldExchangesAreNotOpenAtTheReceiver) {
  Relay relay;
  relay.dropped.insert(4);  // PUBREC'd by the bridge, never sent on
  Publish held;
  held.qos = 2;
  held.packet_id = 5;
  relay.held.push_back(held);  // beyond the window: never sent on
  EXPECT_TRUE(relay.OpenQos2().empty());
}

TEST(RelayTest, ClearForgetsEverythingAndResetsTheWindow) {
  Relay relay;
  relay.open.emplace(1, 2);
  relay.dropped.insert(2);
  relay.held.emplace_back();
  relay.window = 3;
  relay.Clear();
  EXPECT_TRUE(relay.open.empty());
  EXPECT_TRUE(relay.dropped.empty());
  EXPECT_TRUE(relay.held.empty());
  EXPECT_EQ(relay.window, 65535u);
}

}  // namespace
}  // namespace mqtt::bridge
