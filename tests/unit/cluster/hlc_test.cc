// SPDX-License-Identifier: Apache-2.0
// The hybrid logical clock: strictly increasing whatever the wall clock does, above every value
// observed, close to the wall clock otherwise, and unique across threads.
#include "cluster/hlc.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

namespace mqtt::cluster {
namespace {

struct FakeWall {
  std::atomic<uint64_t> ms{1'000};
  Hlc::WallClock clock() {
    return [this] { return ms.load(); };
  }
};

TEST(HlcTest, CountsWithinOneMillisecondThenFollowsTheWallClock) {
  FakeWall wall;
  Hlc hlc(wall.clock());
  EXPECT_EQ(hlc.Now(), Hlc::FromWallMs(1'000));
  EXPECT_EQ(hlc.Now(), Hlc::FromWallMs(1'000) + 1);
  EXPECT_EQ(hlc.Now(), Hlc::FromWallMs(1'000) + 2);
  wall.ms = 2'000;
  const uint64_t later = hlc.Now();
  EXPECT_EQ(later, Hlc::FromWallMs(2'000));
  EXPECT_EQ(Hlc::WallMs(later), 2'000u);
  EXPECT_EQ(Hlc::Logical(later), 0u);
}

TEST(HlcTest, StaysMonotonicWhenTheWallClockStepsBack) {
  FakeWall wall;
  wall.ms = 5'000;
  Hlc hlc(wall.clock());
  const uint64_t before = hlc.Now();
  wall.ms = 4'000;
  const uint64_t after = hlc.Now();
  EXPECT_GT(after, before);
  EXPECT_EQ(Hlc::WallMs(after), 5'000u);  // the counter goes on in the latest millisecond
}

TEST(HlcTest, NowIsAboveEveryObservedValue) {
  FakeWall wall;
  Hlc hlc(wall.clock());
  const uint64_t remote = Hlc::FromWallMs(9'000) + 7;
  hlc.Observe(remote);
  EXPECT_EQ(hlc.last(), remote);
  EXPECT_EQ(hlc.Now(), remote + 1);
  hlc.Observe(Hlc::FromWallMs(10));  // older: changes nothing
  EXPECT_EQ(hlc.Now(), remote + 2);
  wall.ms = 9'500;  // the wall clock overtakes the observed value
  EXPECT_EQ(hlc.Now(), Hlc::FromWallMs(9'500));
}

TEST(HlcTest, CounterOverflowSpillsIntoTheMillisecondsMonotonically) {
  FakeWall wall;
  Hlc hlc(wall.clock());
  hlc.Observe(Hlc::FromWallMs(1'000) + 0xFFFF);
  EXPECT_EQ(hlc.Now(), Hlc::FromWallMs(1'001));
}

TEST(HlcTest, ConcurrentCallersGetDistinctValues) {
  FakeWall wall;
  Hlc hlc(wall.clock());
  constexpr int kThreads = 4;
  constexpr int kEach = 20'000;
  std::vector<std::vector<uint64_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        if (i % 100 == 0) hlc.Observe(hlc.last() + 3);
        got[t].push_back(hlc.Now());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<uint64_t> all;
  for (const auto& values : got) {
    for (size_t i = 1; i < values.size(); ++i) ASSERT_GT(values[i], values[i - 1]);
    all.insert(values.begin(), values.end());
  }
  EXPECT_EQ(all.size(), size_t{kThreads} * kEach);
}

TEST(HlcTest, DefaultClockIsTheSystemClock) {
  Hlc hlc;
  const uint64_t ms = Hlc::WallMs(hlc.Now());
  EXPECT_GT(ms, 1'600'000'000'000u);  // after 2020
}

}  // namespace
}  // namespace mqtt::cluster
