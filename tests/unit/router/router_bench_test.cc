// SPDX-License-Identifier: Apache-2.0
// Micro benchmarks of the router's hot paths. Labelled `bench`: CI skips them (ctest -LE bench).
// Figures are printed and recorded as test properties; run them from an optimized build.
#include <time.h>

#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "node/router/retained_store.h"
#include "node/router/topic.h"
#include "node/router/topic_tree.h"

namespace mqtt {
namespace {

// Thread CPU time rather than wall time: the figures stay comparable on a shared, loaded host.
double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double SecondsSince(double start) { return CpuSeconds() - start; }

// Topic space "b<0..19>/f<0..49>/r<0..99>/s<0..9>": 1M distinct topics, 4 levels.
struct TopicSpace {
  std::mt19937 rng{42};
  std::string B() { return "b" + std::to_string(Pick(20)); }
  std::string F() { return "f" + std::to_string(Pick(50)); }
  std::string R() { return "r" + std::to_string(Pick(100)); }
  std::string S() { return "s" + std::to_string(Pick(10)); }
  std::string Topic() { return B() + "/" + F() + "/" + R() + "/" + S(); }
  int Pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); }

  // Mostly exact subscriptions, with '+' at various levels and '#' at various depths.
  std::string Filter() {
    const int p = Pick(100);
    if (p < 60) return Topic();
    if (p < 75) return B() + "/" + F() + "/+/" + S();
    if (p < 85) return B() + "/" + F() + "/" + R() + "/#";
    if (p < 90) return "+/" + F() + "/" + R() + "/" + S();
    if (p < 95) return "+/+/" + R() + "/" + S();
    if (p < 99) return B() + "/+/" + R() + "/#";
    return B() + "/" + F() + "/#";
  }
};

TEST(RouterBench, TopicTreeMatchesPerSecond100kSubscriptions) {
  TopicSpace space;
  TopicTree tree;
  constexpr int kSubscriptions = 100'000;
  while (tree.size() < kSubscriptions) {
    Subscriber s;
    s.session_id = static_cast<uint64_t>(space.Pick(50'000)) + 1;
    const std::string filter = space.Filter();
    ASSERT_TRUE(IsValidTopicFilter(filter));
    tree.Subscribe(filter, s);
  }
  std::vector<std::string> topics;
  for (int i = 0; i < 100'000; ++i) topics.push_back(space.Topic());

  size_t matches = 0;
  size_t visits = 0;
  const std::function<void(const Subscriber&)> visit = [&visits](const Subscriber&) { ++visits; };
  const double start = CpuSeconds();
  double elapsed = 0;
  while (elapsed < 2.0) {
    for (const std::string& topic : topics) tree.Match(topic, visit);
    matches += topics.size();
    elapsed = SecondsSince(start);
  }
  const double per_second = static_cast<double>(matches) / elapsed;
  std::printf("TopicTree: %d subscriptions, %zu nodes: %.2f M matches/s, %.1f visits/match\n",
              kSubscriptions, tree.NodeCountForTesting(), per_second / 1e6,
              static_cast<double>(visits) / static_cast<double>(matches));
  RecordProperty("matches_per_second", std::to_string(static_cast<int64_t>(per_second)));
}

MessagePtr Retained(std::string topic) {
  auto m = std::make_shared<Message>();
  m->topic = std::move(topic);
  m->payload = "v";
  m->retain = true;
  return m;
}

TEST(RouterBench, RetainedMatchSubtreeAmongMillionTopics) {
  RetainedStore store;
  constexpr int kSubtree = 10'000;
  constexpr int kTotal = 1'000'000;
  const double fill_start = CpuSeconds();
  for (int i = 0; i < kSubtree; ++i) {
    store.Set(Retained("sub/" + std::to_string(i % 100) + "/" + std::to_string(i / 100)));
  }
  for (int i = kSubtree; i < kTotal; ++i) {
    store.Set(Retained("t" + std::to_string(i % 1000) + "/" + std::to_string(i / 1000)));
  }
  const double fill_seconds = SecondsSince(fill_start);
  ASSERT_EQ(store.size(), static_cast<size_t>(kTotal));

  constexpr int kRuns = 50;
  size_t matched = 0;
  const std::function<void(const MessagePtr&)> visit = [&matched](const MessagePtr&) { ++matched; };
  const double start = CpuSeconds();
  for (int run = 0; run < kRuns; ++run) store.Match("sub/#", visit);
  const double per_match = SecondsSince(start) / kRuns;
  EXPECT_EQ(matched, static_cast<size_t>(kSubtree) * kRuns);
  std::printf(
      "RetainedStore: Set of %d topics %.2f s; Match(\"sub/#\") over %d-topic subtree: "
      "%.3f ms (%.0f ns/message)\n",
      kTotal, fill_seconds, kSubtree, per_match * 1e3, per_match * 1e9 / kSubtree);
  RecordProperty("sub_match_microseconds", std::to_string(static_cast<int64_t>(per_match * 1e6)));
}

}  // namespace
}  // namespace mqtt
