// SPDX-License-Identifier: Apache-2.0
// RetainedStore: set/replace/delete [MQTT-3.3.1-5], [MQTT-3.3.1-10], wildcard matching with the
// '$' rule [MQTT-4.7.2-1], and that a filter only walks the subtrees it can reach.
#include "node/router/retained_store.h"

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "node/router/topic.h"

namespace mqtt {
namespace {

MessagePtr Msg(std::string topic, std::string payload = "x") {
  auto m = std::make_shared<Message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->retain = true;
  return m;
}

using Topics = std::vector<std::string>;

// Topics of the messages Match visits, sorted (visit order is unspecified).
Topics Matched(const RetainedStore& store, std::string_view filter) {
  Topics out;
  store.Match(filter, [&](const MessagePtr& m) { out.push_back(m->topic); });
  std::sort(out.begin(), out.end());
  return out;
}

TEST(RetainedStoreTest, EmptyStoreMatchesNothing) {
  RetainedStore store;
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(Matched(store, "#"), Topics{});
  EXPECT_EQ(Matched(store, "a/+"), Topics{});
}

// [MQTT-3.3.1-5]: a new retained message replaces the one stored for the topic.
TEST(RetainedStoreTest, SetReplaces_MQTT_3_3_1_5) {
  RetainedStore store;
  store.Set(Msg("a/b", "one"));
  store.Set(Msg("a/b", "two"));
  EXPECT_EQ(store.size(), 1u);
  std::vector<std::string> payloads;
  store.Match("a/b", [&](const MessagePtr& m) { payloads.push_back(m->payload); });
  EXPECT_EQ(payloads, std::vector<std::string>{"two"});
}

// [MQTT-3.3.1-10]: an empty payload deletes the retained message; nodes are pruned.
TEST(RetainedStoreTest, EmptyPayloadDeletesAndPrunes_MQTT_3_3_1_10) {
  RetainedStore store;
  store.Set(Msg("a/b/c"));
  store.Set(Msg("a"));
  EXPECT_EQ(store.NodeCountForTesting(), 3u);
  store.Set(Msg("a/b", ""));  // nothing retained there: no-op
  store.Set(Msg("x/y", ""));  // unknown topic: no-op
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.NodeCountForTesting(), 3u);
  store.Set(Msg("a/b/c", ""));
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.NodeCountForTesting(), 1u);  // "a" still holds a message
  EXPECT_EQ(Matched(store, "#"), Topics{"a"});
  store.Set(Msg("a", ""));
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.NodeCountForTesting(), 0u);
  EXPECT_EQ(Matched(store, "#"), Topics{});
}

TEST(RetainedStoreTest, DeleteKeepsDescendants) {
  RetainedStore store;
  store.Set(Msg("a"));
  store.Set(Msg("a/b"));
  store.Set(Msg("a", ""));
  EXPECT_EQ(Matched(store, "#"), Topics{"a/b"});
  EXPECT_EQ(store.NodeCountForTesting(), 2u);
}

class RetainedMatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* t :
         {"sport", "sport/", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking",
          "sport/tennis/player2", "sport/golf", "/finance", "finance", "a//b",
          "$SYS/monitor/Clients", "$SYS", "a/$b", "Sport/tennis"}) {
      store_.Set(Msg(t));
    }
  }
  RetainedStore store_;
};

TEST_F(RetainedMatchTest, ExactIsCaseSensitive_MQTT_4_7_3) {
  EXPECT_EQ(Matched(store_, "sport/tennis"), Topics{"sport/tennis"});
  EXPECT_EQ(Matched(store_, "Sport/tennis"), Topics{"Sport/tennis"});
  EXPECT_EQ(Matched(store_, "finance"), Topics{"finance"});
  EXPECT_EQ(Matched(store_, "sport/tennis/player3"), Topics{});
}

TEST_F(RetainedMatchTest, MultiLevelWildcard_MQTT_4_7_1_2) {
  EXPECT_EQ(Matched(store_, "sport/tennis/player1/#"),
            (Topics{"sport/tennis/player1", "sport/tennis/player1/ranking"}));
  EXPECT_EQ(Matched(store_, "sport/#"),
            (Topics{"sport", "sport/", "sport/golf", "sport/tennis", "sport/tennis/player1",
                    "sport/tennis/player1/ranking", "sport/tennis/player2"}));
  EXPECT_EQ(Matched(store_, "/#"), Topics{"/finance"});
  EXPECT_EQ(Matched(store_, "#"),
            (Topics{"/finance", "Sport/tennis", "a/$b", "a//b", "finance", "sport", "sport/",
                    "sport/golf", "sport/tennis", "sport/tennis/player1",
                    "sport/tennis/player1/ranking", "sport/tennis/player2"}));
}

TEST_F(RetainedMatchTest, SingleLevelWildcard_MQTT_4_7_1_3) {
  EXPECT_EQ(Matched(store_, "sport/tennis/+"),
            (Topics{"sport/tennis/player1", "sport/tennis/player2"}));
  EXPECT_EQ(Matched(store_, "sport/+"), (Topics{"sport/", "sport/golf", "sport/tennis"}));
  EXPECT_EQ(Matched(store_, "+/+"),
            (Topics{"/finance", "Sport/tennis", "a/$b", "sport/", "sport/golf", "sport/tennis"}));
  EXPECT_EQ(Matched(store_, "/+"), Topics{"/finance"});
  EXPECT_EQ(Matched(store_, "+"), (Topics{"finance", "sport"}));
  EXPECT_EQ(Matched(store_, "a/+/b"), Topics{"a//b"});
  EXPECT_EQ(Matched(store_, "+/tennis/#"),
            (Topics{"Sport/tennis", "sport/tennis", "sport/tennis/player1",
                    "sport/tennis/player1/ranking", "sport/tennis/player2"}));
}

TEST_F(RetainedMatchTest, DollarTopics_MQTT_4_7_2_1) {
  EXPECT_EQ(Matched(store_, "+/monitor/Clients"), Topics{});
  EXPECT_EQ(Matched(store_, "$SYS/#"), (Topics{"$SYS", "$SYS/monitor/Clients"}));
  EXPECT_EQ(Matched(store_, "$SYS/monitor/+"), Topics{"$SYS/monitor/Clients"});
  EXPECT_EQ(Matched(store_, "$SYS"), Topics{"$SYS"});
  EXPECT_EQ(Matched(store_, "a/+"), Topics{"a/$b"});  // '$' below the first level is ordinary
}

// A filter visits only the subtrees it can reach, however many other topics are stored:
// "a/b/#" over 1,000,000 retained topics examines root, a, b and b's subtree, nothing else.
TEST(RetainedStoreTest, WildcardVisitsOnlyReachableSubtree) {
  RetainedStore store;
  constexpr int kSubtree = 10'000;
  constexpr int kTotal = 1'000'000;
  for (int i = 0; i < kSubtree; ++i) {
    store.Set(Msg("a/b/" + std::to_string(i % 100) + "/" + std::to_string(i / 100)));
  }
  // Neighbours that share prefixes with the subtree but must not be walked.
  store.Set(Msg("a/bb/0"));
  store.Set(Msg("a/c/0"));
  store.Set(Msg("a"));
  for (int i = static_cast<int>(store.size()); i < kTotal; ++i) {
    store.Set(Msg("t" + std::to_string(i % 1000) + "/" + std::to_string(i / 1000)));
  }
  ASSERT_EQ(store.size(), static_cast<size_t>(kTotal));

  size_t matched = 0;
  const size_t examined = store.MatchCountingNodes("a/b/#", [&](const MessagePtr& m) {
    ++matched;
    EXPECT_EQ(m->topic.rfind("a/b/", 0), 0u) << m->topic;
  });
  EXPECT_EQ(matched, static_cast<size_t>(kSubtree));
  // root + a + b, then b's 100 children and their 10,000 leaves.
  EXPECT_EQ(examined, 3u + 100u + kSubtree);

  matched = 0;
  EXPECT_EQ(store.MatchCountingNodes("a/+/0/0", [&](const MessagePtr&) { ++matched; }),
            // root, a, then {b, bb, c}, each one's "0" child, and b/0's "0" child
            1u + 1u + 3u + 3u + 1u);
  EXPECT_EQ(matched, 1u);
}

// --- Randomized comparison with the reference matcher ---------------------------------------

constexpr std::string_view kLevels[] = {"a", "b", "", "$s"};

std::string RandomLevels(std::mt19937& rng, bool wildcards) {
  std::string out;
  const int levels = std::uniform_int_distribution<int>(1, 4)(rng);
  std::uniform_int_distribution<int> pick(0, 9);
  for (int i = 0; i < levels; ++i) {
    if (i > 0) out += '/';
    const int p = pick(rng);
    if (wildcards && p < 3) {
      out += '+';
    } else if (wildcards && p == 3 && i == levels - 1) {
      out += '#';
    } else {
      out += kLevels[std::uniform_int_distribution<size_t>(0, std::size(kLevels) - 1)(rng)];
    }
  }
  return out.empty() ? "a" : out;  // a single empty level is not a valid topic or filter
}

TEST(RetainedStoreTest, RandomizedAgainstTopicMatches) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937 rng(seed);
    RetainedStore store;
    std::map<std::string, std::string> model;  // topic -> payload
    for (int op = 0; op < 300; ++op) {
      const std::string topic = RandomLevels(rng, /*wildcards=*/false);
      const bool erase = std::uniform_int_distribution<int>(0, 3)(rng) == 0;
      const std::string payload = erase ? "" : std::to_string(op);
      store.Set(Msg(topic, payload));
      if (erase) {
        model.erase(topic);
      } else {
        model[topic] = payload;
      }
    }
    ASSERT_EQ(store.size(), model.size());
    for (int i = 0; i < 300; ++i) {
      const std::string filter = RandomLevels(rng, /*wildcards=*/true);
      std::vector<std::string> expected;
      for (const auto& [topic, payload] : model) {
        if (TopicMatches(filter, topic)) expected.push_back(topic + "=" + payload);
      }
      std::vector<std::string> actual;
      store.Match(filter,
                  [&](const MessagePtr& m) { actual.push_back(m->topic + "=" + m->payload); });
      std::sort(expected.begin(), expected.end());
      std::sort(actual.begin(), actual.end());
      ASSERT_EQ(actual, expected) << "filter '" << filter << "'";
    }
    for (const auto& [topic, payload] : model) store.Set(Msg(topic, ""));
    EXPECT_EQ(store.size(), 0u);
    EXPECT_EQ(store.NodeCountForTesting(), 0u);
  }
}

}  // namespace
}  // namespace mqtt
