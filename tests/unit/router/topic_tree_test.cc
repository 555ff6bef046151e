// SPDX-License-Identifier: Apache-2.0
// TopicTree: subscribe/unsubscribe/replace, matching per section 4.7, pruning, and a randomized
// comparison against the reference matcher TopicMatches.
#include "node/router/topic_tree.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <new>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "node/router/topic.h"

// Counts heap allocations so that a test can check that Match does not allocate. Not inlined:
// GCC would otherwise pair the inlined malloc/free with new/delete expressions and warn
// (-Wmismatched-new-delete).
namespace {
std::atomic<size_t> g_allocations{0};
}  // namespace

[[gnu::noinline]] void* operator new(size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace mqtt {
namespace {

Subscriber Sub(uint64_t session_id, uint8_t qos = 0, uint32_t subscription_id = 0) {
  Subscriber s;
  s.session_id = session_id;
  s.qos = qos;
  s.subscription_id = subscription_id;
  return s;
}

// Session ids visited by Match, sorted (visit order is unspecified).
std::vector<uint64_t> Sessions(const TopicTree& tree, std::string_view topic) {
  std::vector<uint64_t> out;
  tree.Match(topic, [&](const Subscriber& s) { out.push_back(s.session_id); });
  std::sort(out.begin(), out.end());
  return out;
}

using Ids = std::vector<uint64_t>;

TEST(TopicTreeTest, EmptyTreeMatchesNothing) {
  TopicTree tree;
  EXPECT_EQ(tree.size(), 0u);
  EXPECT_EQ(Sessions(tree, "a/b"), Ids{});
  EXPECT_EQ(Sessions(tree, "$SYS/x"), Ids{});
}

TEST(TopicTreeTest, SubscribeReturnsTrueOnlyWhenNew) {
  TopicTree tree;
  EXPECT_TRUE(tree.Subscribe("a/b", Sub(1)));
  EXPECT_TRUE(tree.Subscribe("a/b", Sub(2)));
  EXPECT_TRUE(tree.Subscribe("a/+", Sub(1)));
  EXPECT_FALSE(tree.Subscribe("a/b", Sub(1)));
  EXPECT_EQ(tree.size(), 3u);
}

// Re-subscribing the same (filter, session) replaces the options [MQTT-3.8.4-3].
TEST(TopicTreeTest, ResubscribeReplacesOptions_MQTT_3_8_4_3) {
  TopicTree tree;
  tree.Subscribe("a/#", Sub(7, 0, 11));
  Subscriber updated = Sub(7, 2, 12);
  updated.no_local = true;
  updated.retain_as_published = true;
  updated.worker = 3;
  EXPECT_FALSE(tree.Subscribe("a/#", updated));
  EXPECT_EQ(tree.size(), 1u);
  std::vector<Subscriber> seen;
  tree.Match("a/x", [&](const Subscriber& s) { seen.push_back(s); });
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].qos, 2);
  EXPECT_EQ(seen[0].subscription_id, 12u);
  EXPECT_EQ(seen[0].worker, 3u);
  EXPECT_TRUE(seen[0].no_local);
  EXPECT_TRUE(seen[0].retain_as_published);
}

TEST(TopicTreeTest, ExactAndWildcardFilters) {
  TopicTree tree;
  tree.Subscribe("sport/tennis/player1", Sub(1));
  tree.Subscribe("sport/tennis/+", Sub(2));
  tree.Subscribe("sport/#", Sub(3));
  tree.Subscribe("+/tennis/#", Sub(4));
  tree.Subscribe("#", Sub(5));
  tree.Subscribe("sport/tennis/player1/#", Sub(6));
  tree.Subscribe("sport/+", Sub(7));
  EXPECT_EQ(Sessions(tree, "sport/tennis/player1"), (Ids{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(Sessions(tree, "sport/tennis/player1/ranking"), (Ids{3, 4, 5, 6}));
  EXPECT_EQ(Sessions(tree, "sport/tennis"), (Ids{3, 4, 5, 7}));  // '#' matches the parent
  EXPECT_EQ(Sessions(tree, "sport"), (Ids{3, 5}));               // "sport/+" needs a level
  EXPECT_EQ(Sessions(tree, "sport/"), (Ids{3, 5, 7}));           // '+' matches empty level
  EXPECT_EQ(Sessions(tree, "golf"), (Ids{5}));
  EXPECT_EQ(Sessions(tree, "Sport/tennis/player1"), (Ids{4, 5}));  // case-sensitive
}

TEST(TopicTreeTest, EmptyLevels_MQTT_4_7_1_3) {
  TopicTree tree;
  tree.Subscribe("+/+", Sub(1));
  tree.Subscribe("/+", Sub(2));
  tree.Subscribe("+", Sub(3));
  tree.Subscribe("a//b", Sub(4));
  tree.Subscribe("a/+/b", Sub(5));
  tree.Subscribe("/", Sub(6));
  EXPECT_EQ(Sessions(tree, "/finance"), (Ids{1, 2}));
  EXPECT_EQ(Sessions(tree, "finance"), (Ids{3}));
  EXPECT_EQ(Sessions(tree, "/"), (Ids{1, 2, 6}));
  EXPECT_EQ(Sessions(tree, "a//b"), (Ids{4, 5}));
  EXPECT_EQ(Sessions(tree, "a/b"), (Ids{1}));
}

TEST(TopicTreeTest, DollarTopicsHiddenFromLeadingWildcards_MQTT_4_7_2_1) {
  TopicTree tree;
  tree.Subscribe("#", Sub(1));
  tree.Subscribe("+/monitor/Clients", Sub(2));
  tree.Subscribe("$SYS/#", Sub(3));
  tree.Subscribe("$SYS/monitor/+", Sub(4));
  tree.Subscribe("+", Sub(5));
  tree.Subscribe("+/#", Sub(6));
  EXPECT_EQ(Sessions(tree, "$SYS/monitor/Clients"), (Ids{3, 4}));
  EXPECT_EQ(Sessions(tree, "$SYS"), (Ids{3}));
  EXPECT_EQ(Sessions(tree, "x/monitor/Clients"), (Ids{1, 2, 6}));
  EXPECT_EQ(Sessions(tree, "x"), (Ids{1, 5, 6}));
}

// Each matching (filter, subscriber) entry is visited once; a session with several matching
// filters is visited once per filter (de-duplication is the caller's policy).
TEST(TopicTreeTest, OverlappingFiltersVisitedOncePerEntry) {
  TopicTree tree;
  for (std::string_view filter : {"a/b", "a/+", "a/#", "#", "+/b", "+/+", "a/b/#", "+/#"}) {
    tree.Subscribe(filter, Sub(1));
    tree.Subscribe(filter, Sub(2));
  }
  tree.Subscribe("a/b", Sub(1));  // a replace, not a new entry
  EXPECT_EQ(tree.size(), 16u);
  EXPECT_EQ(Sessions(tree, "a/b"), (Ids{1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2}));
}

TEST(TopicTreeTest, UnsubscribeRemovesOnlyThatEntry) {
  TopicTree tree;
  tree.Subscribe("a/+", Sub(1));
  tree.Subscribe("a/+", Sub(2));
  tree.Subscribe("a/#", Sub(1));
  EXPECT_FALSE(tree.Unsubscribe("a/+", 3));    // no such session
  EXPECT_FALSE(tree.Unsubscribe("a/b", 1));    // no such filter
  EXPECT_FALSE(tree.Unsubscribe("a/+/c", 1));  // deeper than any node
  EXPECT_FALSE(tree.Unsubscribe("#", 1));
  EXPECT_TRUE(tree.Unsubscribe("a/+", 1));
  EXPECT_FALSE(tree.Unsubscribe("a/+", 1));  // already gone
  EXPECT_EQ(tree.size(), 2u);
  EXPECT_EQ(Sessions(tree, "a/b"), (Ids{1, 2}));
  EXPECT_TRUE(tree.Unsubscribe("a/#", 1));
  EXPECT_EQ(Sessions(tree, "a/b"), (Ids{2}));
}

TEST(TopicTreeTest, UnsubscribePrunesEmptyNodes) {
  TopicTree tree;
  const std::vector<std::string_view> filters = {
      "a/b/c", "a/b", "a/+/c", "a/#", "#", "+", "/", "a//", "+/+/#", "$SYS/#", "a/b/c/d/e/f"};
  for (std::string_view f : filters) tree.Subscribe(f, Sub(1));
  for (std::string_view f : filters) tree.Subscribe(f, Sub(2));
  EXPECT_GT(tree.NodeCountForTesting(), 0u);
  // Remove in an order that leaves interior nodes holding deeper ones for a while.
  for (std::string_view f : filters) EXPECT_TRUE(tree.Unsubscribe(f, 1)) << f;
  for (auto it = filters.rbegin(); it != filters.rend(); ++it) {
    EXPECT_TRUE(tree.Unsubscribe(*it, 2)) << *it;
  }
  EXPECT_EQ(tree.size(), 0u);
  EXPECT_EQ(tree.NodeCountForTesting(), 0u);
  EXPECT_EQ(Sessions(tree, "a/b/c"), Ids{});
}

TEST(TopicTreeTest, PruneKeepsNodesStillInUse) {
  TopicTree tree;
  tree.Subscribe("a/b/c", Sub(1));
  tree.Subscribe("a", Sub(2));
  tree.Subscribe("a/#", Sub(3));
  EXPECT_EQ(tree.NodeCountForTesting(), 3u);  // a, b, c
  EXPECT_TRUE(tree.Unsubscribe("a/b/c", 1));
  EXPECT_EQ(tree.NodeCountForTesting(), 1u);  // a holds "a" and "a/#"
  EXPECT_EQ(Sessions(tree, "a"), (Ids{2, 3}));
  EXPECT_TRUE(tree.Unsubscribe("a", 2));
  EXPECT_EQ(tree.NodeCountForTesting(), 1u);
  EXPECT_TRUE(tree.Unsubscribe("a/#", 3));
  EXPECT_EQ(tree.NodeCountForTesting(), 0u);
}

// A fan-out filter with many sessions switches to an indexed subscriber list; subscribe,
// replace and unsubscribe must behave the same across the switch, both ways.
TEST(TopicTreeTest, ManySessionsOnOneFilter) {
  TopicTree tree;
  constexpr uint64_t kSessions = 500;
  for (uint64_t id = 1; id <= kSessions; ++id) EXPECT_TRUE(tree.Subscribe("alerts/#", Sub(id)));
  for (uint64_t id = 1; id <= kSessions; id += 3) {
    EXPECT_FALSE(tree.Subscribe("alerts/#", Sub(id, 1)));
  }
  EXPECT_EQ(tree.size(), kSessions);
  for (uint64_t id = 2; id <= kSessions; id += 2) EXPECT_TRUE(tree.Unsubscribe("alerts/#", id));
  std::vector<Subscriber> seen;
  tree.Match("alerts/x", [&](const Subscriber& s) { seen.push_back(s); });
  ASSERT_EQ(seen.size(), kSessions / 2);
  for (const Subscriber& s : seen) {
    EXPECT_EQ(s.session_id % 2, 1u);
    EXPECT_EQ(s.qos, (s.session_id - 1) % 3 == 0 ? 1 : 0) << s.session_id;
  }
  for (uint64_t id = 1; id <= kSessions; id += 2) EXPECT_TRUE(tree.Unsubscribe("alerts/#", id));
  EXPECT_EQ(tree.size(), 0u);
  EXPECT_EQ(tree.NodeCountForTesting(), 0u);
}

// Topics and filters may have ~32k levels; neither matching nor destruction may recurse per
// level.
TEST(TopicTreeTest, VeryDeepFilters) {
  std::string deep = "a";
  while (deep.size() + 2 <= kMaxTopicLength) deep += "/a";
  std::string deep_plus = "+";
  while (deep_plus.size() + 2 <= kMaxTopicLength) deep_plus += "/+";
  {
    TopicTree tree;
    tree.Subscribe(deep, Sub(1));
    tree.Subscribe(deep_plus, Sub(2));
    EXPECT_EQ(Sessions(tree, deep), (Ids{1, 2}));
    EXPECT_TRUE(tree.Unsubscribe(deep, 1));
    EXPECT_EQ(Sessions(tree, deep), (Ids{2}));
  }  // destroyed while holding a 32k-deep '+' chain
}

TEST(TopicTreeTest, MatchDoesNotAllocate) {
  TopicTree tree;
  for (uint64_t id = 1; id <= 100; ++id) {
    tree.Subscribe("s/" + std::to_string(id % 10) + "/+", Sub(id));
    tree.Subscribe("s/#", Sub(id));
    tree.Subscribe("+/" + std::to_string(id % 10) + "/x", Sub(id));
  }
  size_t visits = 0;
  const std::function<void(const Subscriber&)> visit = [&visits](const Subscriber&) { ++visits; };
  const std::string topic = "s/3/x";
  const size_t before = g_allocations.load();
  tree.Match(topic, visit);
  tree.Match("$SYS/none", visit);
  tree.Match("unknown/level/deep", visit);
  EXPECT_EQ(g_allocations.load(), before);
  EXPECT_EQ(visits, 10u + 100u + 10u);
  // The counter does see allocations (guards against the replacement not being linked in).
  auto probe = std::make_unique<int>(1);
  EXPECT_GT(g_allocations.load(), before);
}

// --- Randomized comparison with the reference matcher ---------------------------------------

// Few level names so that random filters and topics collide often; '$' only matters first.
constexpr std::string_view kLevels[] = {"a", "b", "", "$s", "ab"};

std::string RandomTopic(std::mt19937& rng) {
  std::string topic;
  const int levels = std::uniform_int_distribution<int>(1, 5)(rng);
  for (int i = 0; i < levels; ++i) {
    if (i > 0) topic += '/';
    topic += kLevels[std::uniform_int_distribution<size_t>(0, std::size(kLevels) - 1)(rng)];
  }
  return topic.empty() ? "a" : topic;  // a single empty level is not a valid topic
}

std::string RandomFilter(std::mt19937& rng) {
  std::string filter;
  const int levels = std::uniform_int_distribution<int>(1, 5)(rng);
  std::uniform_int_distribution<int> pick(0, 9);
  for (int i = 0; i < levels; ++i) {
    if (i > 0) filter += '/';
    const int p = pick(rng);
    if (p < 3) {
      filter += '+';
    } else if (p == 3 && i == levels - 1) {
      filter += '#';
    } else {
      filter += kLevels[std::uniform_int_distribution<size_t>(0, std::size(kLevels) - 1)(rng)];
    }
  }
  return filter.empty() ? "a" : filter;  // a single empty level is not a valid filter
}

// The model: (filter, session) -> subscription_id, which makes each entry identifiable.
using Model = std::map<std::pair<std::string, uint64_t>, uint32_t>;

std::vector<uint32_t> ModelMatch(const Model& model, std::string_view topic) {
  std::vector<uint32_t> out;
  for (const auto& [key, id] : model) {
    if (TopicMatches(key.first, topic)) out.push_back(id);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<uint32_t> TreeMatch(const TopicTree& tree, std::string_view topic) {
  std::vector<uint32_t> out;
  tree.Match(topic, [&](const Subscriber& s) { out.push_back(s.subscription_id); });
  std::sort(out.begin(), out.end());
  return out;
}

void ExpectSameAsModel(const TopicTree& tree, const Model& model, std::mt19937& rng) {
  ASSERT_EQ(tree.size(), model.size());
  for (int i = 0; i < 300; ++i) {
    const std::string topic = RandomTopic(rng);
    ASSERT_EQ(TreeMatch(tree, topic), ModelMatch(model, topic)) << "topic '" << topic << "'";
  }
}

TEST(TopicTreeTest, RandomizedAgainstTopicMatches) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937 rng(seed);
    TopicTree tree;
    Model model;
    uint32_t next_id = 1;
    for (int op = 0; op < 400; ++op) {
      const std::string filter = RandomFilter(rng);
      ASSERT_TRUE(IsValidTopicFilter(filter)) << filter;
      const uint64_t session = std::uniform_int_distribution<uint64_t>(1, 8)(rng);
      const bool unsubscribe = std::uniform_int_distribution<int>(0, 3)(rng) == 0;
      const bool present = model.count({filter, session}) > 0;
      if (unsubscribe) {
        ASSERT_EQ(tree.Unsubscribe(filter, session), present);
        model.erase({filter, session});
      } else {
        ASSERT_EQ(tree.Subscribe(filter, Sub(session, 0, next_id)), !present);
        model[{filter, session}] = next_id++;
      }
    }
    ExpectSameAsModel(tree, model, rng);
    // Drop everything and check that the trie is pruned back to the root.
    for (const auto& [key, id] : model) ASSERT_TRUE(tree.Unsubscribe(key.first, key.second));
    EXPECT_EQ(tree.size(), 0u);
    EXPECT_EQ(tree.NodeCountForTesting(), 0u);
  }
}

}  // namespace
}  // namespace mqtt
