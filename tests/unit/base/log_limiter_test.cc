// SPDX-License-Identifier: Apache-2.0
// LogLimiter and KeyedLogLimiter on an injected clock (`now` passed in): no sleeps.
#include "node/base/log_limiter.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace mqtt {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);

// Runs `body` on `n` threads released together, so that they overlap.
template <typename Body>
void RunTogether(int n, Body body) {
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      ready.fetch_add(1);
      while (ready.load() < n) std::this_thread::yield();
      body(i);
    });
  }
  for (std::thread& t : threads) t.join();
}

TEST(LogLimiterTest, FirstEventIsAllowedWithNothingSuppressed) {
  LogLimiter limiter(absl::Seconds(1));
  const LogPermit permit = limiter.Allow(kT0);
  EXPECT_TRUE(permit);
  EXPECT_EQ(permit.suppressed, 0u);
}

TEST(LogLimiterTest, EventsInsideThePeriodAreRefusedAndCountedInTheNextAllowedOne) {
  LogLimiter limiter(absl::Seconds(1));
  ASSERT_TRUE(limiter.Allow(kT0));
  EXPECT_FALSE(limiter.Allow(kT0));
  EXPECT_FALSE(limiter.Allow(kT0 + absl::Milliseconds(500)));
  EXPECT_FALSE(limiter.Allow(kT0 + absl::Milliseconds(999)));
  const LogPermit permit = limiter.Allow(kT0 + absl::Seconds(1));
  EXPECT_TRUE(permit);
  EXPECT_EQ(permit.suppressed, 3u);
  // The count starts again, and the period from the last allowed event.
  EXPECT_FALSE(limiter.Allow(kT0 + absl::Milliseconds(1500)));
  const LogPermit later = limiter.Allow(kT0 + absl::Seconds(5));
  EXPECT_TRUE(later);
  EXPECT_EQ(later.suppressed, 1u);
}

TEST(LogLimiterTest, AnEarlierTimeThanTheLastAllowedIsRefused) {
  LogLimiter limiter(absl::Seconds(1));
  ASSERT_TRUE(limiter.Allow(kT0));
  EXPECT_FALSE(limiter.Allow(kT0 - absl::Seconds(10)));  // a thread that read the clock earlier
}

TEST(LogLimiterTest, DeferRefusesUntilAPeriodAfterIt) {
  LogLimiter limiter(absl::Seconds(10));
  limiter.Defer(kT0);
  EXPECT_FALSE(limiter.Allow(kT0 + absl::Seconds(9)));
  const LogPermit permit = limiter.Allow(kT0 + absl::Seconds(10));
  EXPECT_TRUE(permit);
  EXPECT_EQ(permit.suppressed, 1u);
  // Never moves the next allowed time back.
  limiter.Defer(kT0);
  EXPECT_FALSE(limiter.Allow(kT0 + absl::Seconds(19)));
}

TEST(LogLimiterTest, DefaultClockAllowsTheFirstAndRefusesTheNextInsideThePeriod) {
  LogLimiter limiter(absl::Hours(1));
  EXPECT_TRUE(limiter.Allow());
  EXPECT_FALSE(limiter.Allow());
  const absl::Time first = LogLimiterNow();
  EXPECT_LE(first, LogLimiterNow());  // steady
}

// Four threads, 1,000 periods of 1 ms each, every thread calling 10 times per period: one
// allowed per period, and every refusal counted once.
TEST(LogLimiterTest, ConcurrentCallersGetOneAllowedEventPerPeriodAndEveryRefusalCounted) {
  constexpr int kThreads = 4, kPeriods = 1000, kCallsPerPeriod = 10;
  LogLimiter limiter(absl::Milliseconds(1));
  std::atomic<uint64_t> allowed{0}, suppressed{0};
  RunTogether(kThreads, [&](int) {
    for (int p = 0; p < kPeriods; ++p) {
      for (int c = 0; c < kCallsPerPeriod; ++c) {
        const LogPermit permit = limiter.Allow(kT0 + absl::Milliseconds(p));
        if (permit) {
          allowed.fetch_add(1);
          suppressed.fetch_add(permit.suppressed);
        }
      }
    }
  });
  // Threads run at different speeds: a slow one's period p may come after a fast one's p + 1,
  // and is then refused. So at most one per period, and at least one for the fastest thread's.
  EXPECT_LE(allowed.load(), static_cast<uint64_t>(kPeriods));
  EXPECT_GE(allowed.load(), 1u);
  // The events refused after the last allowed one are still pending: one more allowed event,
  // later than all, collects them.
  const LogPermit last = limiter.Allow(kT0 + absl::Hours(1));
  ASSERT_TRUE(last);
  EXPECT_EQ(allowed.load() + suppressed.load() + last.suppressed,
            static_cast<uint64_t>(kThreads) * kPeriods * kCallsPerPeriod);
}

TEST(LogLimiterTest, ConcurrentCallersAtOneInstantGetExactlyOneAllowed) {
  constexpr int kThreads = 4, kCalls = 10000;
  LogLimiter limiter(absl::Seconds(1));
  std::atomic<int> allowed{0};
  RunTogether(kThreads, [&](int) {
    for (int c = 0; c < kCalls; ++c) allowed += limiter.Allow(kT0) ? 1 : 0;
  });
  EXPECT_EQ(allowed.load(), 1);
  EXPECT_EQ(limiter.Allow(kT0 + absl::Seconds(1)).suppressed,
            static_cast<uint64_t>(kThreads * kCalls - 1));
}

TEST(KeyedLogLimiterTest, KeysAreLimitedIndependently) {
  KeyedLogLimiter limiter(absl::Minutes(1), 16);
  EXPECT_TRUE(limiter.Allow("a", kT0));
  EXPECT_TRUE(limiter.Allow("b", kT0));
  EXPECT_FALSE(limiter.Allow("a", kT0 + absl::Seconds(1)));
  EXPECT_FALSE(limiter.Allow("a", kT0 + absl::Seconds(2)));
  EXPECT_FALSE(limiter.Allow("b", kT0 + absl::Seconds(59)));
  const LogPermit a = limiter.Allow("a", kT0 + absl::Minutes(1));
  EXPECT_TRUE(a);
  EXPECT_EQ(a.suppressed, 2u);
  const LogPermit b = limiter.Allow("b", kT0 + absl::Minutes(1));
  EXPECT_TRUE(b);
  EXPECT_EQ(b.suppressed, 1u);
}

TEST(KeyedLogLimiterTest, ANewKeyBeyondTheBoundIsRefusedWhileEveryKeyIsInsideItsPeriod) {
  KeyedLogLimiter limiter(absl::Minutes(1), 3);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(limiter.Allow(absl::StrCat("k", i), kT0));
  EXPECT_FALSE(limiter.Allow("k3", kT0 + absl::Seconds(30)));
  EXPECT_EQ(limiter.keys(), 3u);
  // The remembered keys are still limited.
  EXPECT_FALSE(limiter.Allow("k0", kT0 + absl::Seconds(30)));
}

TEST(KeyedLogLimiterTest, ExpiredKeysAreForgottenToMakeRoom) {
  KeyedLogLimiter limiter(absl::Minutes(1), 3);
  ASSERT_TRUE(limiter.Allow("old", kT0));
  ASSERT_TRUE(limiter.Allow("k1", kT0 + absl::Seconds(30)));
  ASSERT_TRUE(limiter.Allow("k2", kT0 + absl::Seconds(30)));
  EXPECT_FALSE(limiter.Allow("new", kT0 + absl::Seconds(59)));  // "old" not yet expired
  EXPECT_TRUE(limiter.Allow("new", kT0 + absl::Seconds(60)));   // "old" forgotten
  EXPECT_EQ(limiter.keys(), 3u);
  EXPECT_FALSE(limiter.Allow("k1", kT0 + absl::Seconds(61)));  // kept, still limited
  // "old" comes back as a new key, its earlier count gone.
  EXPECT_FALSE(limiter.Allow("old", kT0 + absl::Seconds(61)));  // no room until k1, k2 expire
  const LogPermit old = limiter.Allow("old", kT0 + absl::Seconds(90));
  EXPECT_TRUE(old);
  EXPECT_EQ(old.suppressed, 0u);
  EXPECT_LE(limiter.keys(), 3u);
}

TEST(KeyedLogLimiterTest, ConcurrentCallersGetOneAllowedEventPerKey) {
  constexpr int kThreads = 4, kKeys = 50, kRounds = 200;
  KeyedLogLimiter limiter(absl::Minutes(1), kKeys);
  std::atomic<int> allowed{0};
  RunTogether(kThreads, [&](int i) {
    for (int r = 0; r < kRounds; ++r) {
      for (int k = 0; k < kKeys; ++k) {
        allowed += limiter.Allow(absl::StrCat("key", (k + i) % kKeys), kT0) ? 1 : 0;
      }
    }
  });
  EXPECT_EQ(allowed.load(), kKeys);
  EXPECT_EQ(limiter.keys(), static_cast<size_t>(kKeys));
  EXPECT_EQ(limiter.Allow("key0", kT0 + absl::Minutes(1)).suppressed,
            static_cast<uint64_t>(kThreads * kRounds - 1));
}

}  // namespace
}  // namespace mqtt
