// SPDX-License-Identifier: Apache-2.0
// SpinGate: polls only in a window that follows a busy one (by messages handled, scaled to the
// window's length) whose polls mostly found work; a window of misses closes it for one window.
#include "node/net/spin_gate.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace mqtt::net {
namespace {

using Clock = SpinGate::Clock;
using std::chrono::milliseconds;

class SpinGateTest : public ::testing::Test {
 protected:
  // Advances the clock by `elapsed`, having handled `messages` meanwhile, and asks the gate.
  bool After(Clock::duration elapsed, uint64_t messages) {
    now_ += elapsed;
    handled_ += messages;
    return gate_.ShouldPoll(now_);
  }
  static constexpr uint64_t kBusy = SpinGate::kBusyMessages;

  Clock::time_point now_ = Clock::time_point{} + std::chrono::hours(1);
  uint64_t handled_ = 0;
  SpinGate gate_{[this] { return handled_; }};
};

TEST_F(SpinGateTest, ClosedAtFirstAndWhileQuiet) {
  EXPECT_FALSE(After(milliseconds(0), 0));
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(After(SpinGate::kWindow, kBusy - 1)) << i;
}

TEST_F(SpinGateTest, OpensForTheWindowAfterABusyOneAndClosesWhenLoadDrops) {
  EXPECT_FALSE(After(milliseconds(0), 0));
  EXPECT_FALSE(After(milliseconds(5), kBusy));  // the first window is not over yet
  EXPECT_TRUE(After(milliseconds(5), 0));       // it is now: kBusy messages in 10 ms
  EXPECT_TRUE(After(milliseconds(5), kBusy));   // same window: still open
  EXPECT_TRUE(After(milliseconds(5), 0));       // kBusy in the second window too
  EXPECT_FALSE(After(SpinGate::kWindow, kBusy / 2));
}

// A worker that slept 100 ms and then handled kBusy messages was not busy: the count is
// scaled to the window's true length.
TEST_F(SpinGateTest, ALongQuietWindowIsNotBusy) {
  EXPECT_FALSE(After(milliseconds(0), 0));
  EXPECT_FALSE(After(milliseconds(100), kBusy));
  EXPECT_TRUE(After(milliseconds(100), 10 * kBusy));
}

TEST_F(SpinGateTest, AWindowOfMissedPollsClosesItForOneWindowThenItOpensAgain) {
  EXPECT_FALSE(After(milliseconds(0), 0));
  ASSERT_TRUE(After(SpinGate::kWindow, kBusy));
  for (int i = 0; i < 3; ++i) gate_.Polled(false);
  gate_.Polled(true);  // 1 of 4 found work
  EXPECT_FALSE(After(SpinGate::kWindow, kBusy)) << "polls mostly missed";
  EXPECT_TRUE(After(SpinGate::kWindow, kBusy)) << "no polls in the closed window: try again";
  gate_.Polled(false);
  gate_.Polled(true);  // half found work: enough
  EXPECT_TRUE(After(SpinGate::kWindow, kBusy));
}

TEST(SpinGateWithoutCounter, NeverOpens) {
  SpinGate gate(nullptr);
  Clock::time_point now = Clock::now();
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(gate.ShouldPoll(now += SpinGate::kWindow));
}

}  // namespace
}  // namespace mqtt::net
