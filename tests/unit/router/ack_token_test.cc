// SPDX-License-Identifier: Apache-2.0
// AckToken: the listener hears of a token's end once, unless it was cancelled, however many
// threads held, released or cancelled it.
#include "node/router/ack_token.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace mqtt {
namespace {

class CountingListener final : public AckListener {
 public:
  void OnDurable(uint64_t seq) override {
    calls.fetch_add(1);
    last_seq = seq;
  }
  std::atomic<int> calls{0};
  uint64_t last_seq = 0;
};

// Holders on several threads drop their references; `cancellers` of them cancel first.
int RunHolders(int holders, int cancellers) {
  auto listener = std::make_shared<CountingListener>();
  std::vector<std::thread> threads;
  {
    auto token = std::make_shared<AckToken>(nullptr, listener, 7);
    for (int i = 0; i < holders; ++i) {
      threads.emplace_back([held = token, cancel = i < cancellers]() mutable {
        if (cancel) held->Cancel();
        held.reset();
      });
    }
  }
  for (auto& thread : threads) thread.join();
  EXPECT_TRUE(listener->calls.load() == 0 || listener->last_seq == 7);
  return listener->calls.load();
}

TEST(AckTokenTest, LastReleaseTellsTheListenerOnce) { EXPECT_EQ(RunHolders(8, 0), 1); }

TEST(AckTokenTest, CancelsFromSeveralThreadsAtOnceMeanNoAcknowledgement) {
  for (int round = 0; round < 200; ++round) ASSERT_EQ(RunHolders(8, 4), 0) << round;
}

TEST(AckTokenTest, AnExpiredListenerIsNotCalled) {
  auto listener = std::make_shared<CountingListener>();
  auto token = std::make_shared<AckToken>(nullptr, listener, 1);
  std::weak_ptr<CountingListener> watch = listener;
  listener.reset();
  token.reset();  // must not touch the gone listener
  EXPECT_TRUE(watch.expired());
}

}  // namespace
}  // namespace mqtt
