// SPDX-License-Identifier: Apache-2.0
// IoWorker: work posted from other threads runs on the worker's thread, all of it, in the order
// each thread posted it; with idle polling off, or on with a worker that is always busy; and
// Stop returns.
#include "node/net/io_worker.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "boost/asio/steady_timer.hpp"
#include "gtest/gtest.h"

namespace mqtt::net {
namespace {

class IoWorkerTest : public ::testing::TestWithParam<int> {
 protected:
  // With polling on, the worker counts as busy all the time (the messages handled grow by a
  // million per call), so its gate opens and the loop polls.
  void SetUp() override {
    worker_.set_idle_poll(std::chrono::microseconds(GetParam()),
                          [n = uint64_t{0}]() mutable { return n += 1'000'000; });
    worker_.Start();
  }
  IoWorker worker_{0};
};

TEST_P(IoWorkerTest, PostsFromOtherThreadsRunOnTheWorkerInEachThreadsOrder) {
  constexpr int kThreads = 4;
  constexpr int kPosts = 20000;
  absl::Mutex mutex;
  std::vector<std::vector<int>> seen(kThreads);
  std::atomic<int> wrong_thread{0};
  absl::Notification done;
  std::atomic<int> left{kThreads * kPosts};
  std::vector<std::thread> posters;
  for (int t = 0; t < kThreads; ++t) {
    posters.emplace_back([&, t] {
      for (int i = 0; i < kPosts; ++i) {
        worker_.Post([&, t, i] {
          if (!worker_.InThisThread()) wrong_thread.fetch_add(1);
          seen[t].push_back(i);  // only the worker's thread touches seen
          if (left.fetch_sub(1) == 1) done.Notify();
        });
      }
    });
  }
  for (auto& poster : posters) poster.join();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(wrong_thread.load(), 0);
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(seen[t].size(), size_t{kPosts});
    for (int i = 0; i < kPosts; ++i) ASSERT_EQ(seen[t][i], i) << "thread " << t;
  }
}

// A post that arrives while the worker sleeps wakes it: one at a time, with pauses longer than
// any idle polling, so every post finds the worker asleep.
TEST_P(IoWorkerTest, APostWakesASleepingWorker) {
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    absl::Notification ran;
    worker_.Post([&] { ran.Notify(); });
    ASSERT_TRUE(ran.WaitForNotificationWithTimeout(absl::Seconds(5))) << "post " << i;
  }
}

TEST_P(IoWorkerTest, TimersFireAndStopReturns) {
  absl::Notification fired;
  boost::asio::steady_timer timer(worker_.io());
  worker_.Post([&] {
    timer.expires_after(std::chrono::milliseconds(5));
    timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) fired.Notify();
    });
  });
  ASSERT_TRUE(fired.WaitForNotificationWithTimeout(absl::Seconds(5)));
  worker_.Stop();  // joins the thread
  SUCCEED();
}

INSTANTIATE_TEST_SUITE_P(IdlePoll, IoWorkerTest, ::testing::Values(0, 50), [](const auto& info) {
  return info.param == 0 ? std::string("Off") : std::string("On");
});

}  // namespace
}  // namespace mqtt::net

namespace mqtt::net {
namespace {

// Work posted to a worker that has stopped never runs; Stop destroys it, while every worker
// still exists (main stops them all before destroying any). Found by ASan in 11_process: a $SYS
// round posted to worker 1 at shutdown held the last reference to a timer on worker 0, and was
// destroyed with worker 1 after worker 0's io_context was gone (heap-use-after-free).
TEST(IoWorkerStopTest, WorkPostedAfterStopIsDestroyedByStopWhileOtherWorkersLive) {
  auto first = std::make_unique<IoWorker>(0);
  auto second = std::make_unique<IoWorker>(1);
  first->Start();
  second->Start();
  second->Stop();
  auto timer = std::make_shared<boost::asio::steady_timer>(first->io());
  std::weak_ptr<boost::asio::steady_timer> watch = timer;
  second->Post([timer = std::move(timer)] {});  // never runs: the last reference to the timer
  first->Stop();
  second->Stop();
  EXPECT_TRUE(watch.expired()) << "the never-run post still holds the other worker's timer";
  first.reset();  // without the drop, destroying `second` next destroyed the timer after this
  second.reset();
}

}  // namespace
}  // namespace mqtt::net
