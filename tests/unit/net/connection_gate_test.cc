// SPDX-License-Identifier: Apache-2.0
// ConnectionGate: the open-connection limit and the accept-rate token bucket, on an injected
// clock.
#include "node/net/connection_gate.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace mqtt::net {
namespace {

using std::chrono::milliseconds;

TEST(ConnectionGateTest, RefusesBeyondMaxConnectionsUntilOneCloses) {
  ConnectionGate gate("mqtt test", /*max_connections=*/2, /*rate=*/0);
  const auto now = ConnectionGate::Clock::now();
  ASSERT_TRUE(gate.Admit(now));  // takes a place
  ASSERT_TRUE(gate.Admit(now));
  EXPECT_EQ(gate.open(), 2u);
  EXPECT_FALSE(gate.Admit(now));
  EXPECT_EQ(gate.refused_max_connections(), 1u);
  gate.Closed();
  EXPECT_TRUE(gate.Admit(now));
  EXPECT_EQ(gate.open(), 2u);
  EXPECT_FALSE(gate.Admit(now));
}

// Workers accept at the same time: together they never pass the limit.
TEST(ConnectionGateTest, ConcurrentAdmitsStayWithinMaxConnections) {
  ConnectionGate gate("mqtt test", /*max_connections=*/1000, /*rate=*/0);
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) admitted += gate.Admit() ? 1 : 0;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(admitted.load(), 1000);
  EXPECT_EQ(gate.open(), 1000u);
  EXPECT_EQ(gate.refused_max_connections(), 3000u);
}

TEST(ConnectionGateTest, RateIsATokenBucketWithABurstOfOneSecond) {
  ConnectionGate gate("mqtt test", 0, /*rate=*/10);
  auto now = ConnectionGate::Clock::now();
  int admitted = 0;
  for (int i = 0; i < 30; ++i) admitted += gate.Admit(now) ? 1 : 0;
  EXPECT_EQ(admitted, 10);
  EXPECT_EQ(gate.refused_rate(), 20u);
  EXPECT_EQ(gate.open(), 10u);  // a refusal takes no place
  now += milliseconds(500);     // five tokens back
  admitted = 0;
  for (int i = 0; i < 30; ++i) admitted += gate.Admit(now) ? 1 : 0;
  EXPECT_EQ(admitted, 5);
}

TEST(ConnectionGateTest, ZeroMeansNoLimit) {
  ConnectionGate gate("mqtt test", 0, 0);
  const auto now = ConnectionGate::Clock::now();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(gate.Admit(now));
  EXPECT_EQ(gate.open(), 1000u);
}

}  // namespace
}  // namespace mqtt::net
