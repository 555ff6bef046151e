// SPDX-License-Identifier: Apache-2.0
// The rules of replicated retained messages without I/O: last writer wins by (hlc, origin),
// tombstones held and collected, expiry, bucket hashes and the comparison of two listings.
#include "cluster/retained_index.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace mqtt::cluster {
namespace {

MessagePtr Msg(const std::string& topic, const std::string& payload, int64_t expires_at_ms = 0) {
  auto m = std::make_shared<Message>();
  m->topic = topic;
  m->payload = payload;
  m->retain = true;
  m->expires_at_ms = expires_at_ms;
  return m;
}

RetainedVersion V(uint64_t hlc, std::string origin) { return {hlc, std::move(origin)}; }

std::string PayloadOf(const RetainedIndex& index, const std::string& topic) {
  const RetainedIndex::Entry* e = index.Find(topic);
  if (e == nullptr) return "<absent>";
  if (e->collected) return "<collected>";
  return e->tombstone() ? "<tombstone>" : e->message->payload;
}

TEST(RetainedIndexTest, HigherHlcWinsThenGreaterOriginWhateverTheOrder) {
  RetainedIndex a;
  RetainedIndex b;
  const std::vector<std::pair<RetainedVersion, std::string>> changes = {
      {V(10, "n1"), "one"}, {V(12, "n0"), "two"}, {V(12, "n2"), "three"}, {V(11, "n9"), "four"}};
  for (const auto& [v, p] : changes) a.Apply("t", v, Msg("t", p), "peer");
  for (auto it = changes.rbegin(); it != changes.rend(); ++it) {
    b.Apply("t", it->first, Msg("t", it->second), "peer");
  }
  EXPECT_EQ(PayloadOf(a, "t"), "three");
  EXPECT_EQ(PayloadOf(b, "t"), "three");
  EXPECT_EQ(a.bucket_hashes(), b.bucket_hashes());
  EXPECT_FALSE(a.Apply("t", V(12, "n2"), Msg("t", "again"), ""));  // equal: not replaced
  EXPECT_EQ(PayloadOf(a, "t"), "three");
}

TEST(RetainedIndexTest, EmptyPayloadAndExpiredMessagesAreTombstones) {
  RetainedIndex index;
  ASSERT_TRUE(index.Apply("t", V(1, "a"), Msg("t", "x"), ""));
  ASSERT_TRUE(index.Apply("t", V(2, "a"), Msg("t", ""), ""));
  EXPECT_EQ(PayloadOf(index, "t"), "<tombstone>");
  ASSERT_TRUE(index.Apply("old", V(3, "a"), Msg("old", "x", MonotonicMs() - 1), ""));
  EXPECT_EQ(PayloadOf(index, "old"), "<tombstone>");

  ASSERT_TRUE(index.Apply("soon", V(4, "a"), Msg("soon", "x", MonotonicMs() + 50), ""));
  EXPECT_TRUE(index.ExpireMessages(MonotonicMs()).empty());
  const auto hashes = index.bucket_hashes();
  EXPECT_EQ(index.ExpireMessages(MonotonicMs() + 100), std::vector<std::string>{"soon"});
  EXPECT_EQ(PayloadOf(index, "soon"), "<tombstone>");
  EXPECT_EQ(index.Find("soon")->version, V(4, "a"));  // same version: nothing to exchange
  EXPECT_EQ(index.bucket_hashes(), hashes);
}

TEST(RetainedIndexTest, TombstoneIsCollectedOnlyWhenEveryMemberHoldsIt) {
  RetainedIndex index;
  const absl::Time now = absl::Now();
  ASSERT_TRUE(index.Apply("t", V(5, "a"), nullptr, ""));
  EXPECT_TRUE(index.CollectTombstones({"b", "c"}, now, absl::Seconds(1)).empty());
  index.NoteHeld("t", V(4, "z"), "b");  // an older version: not held
  index.NoteHeld("t", V(5, "a"), "c");
  EXPECT_TRUE(index.CollectTombstones({"b", "c"}, now, absl::Seconds(1)).empty());
  index.NoteBucketsHeld([](uint32_t) { return true; }, "b");
  EXPECT_EQ(index.CollectTombstones({"b", "c"}, now, absl::Seconds(1)),
            std::vector<std::string>{"t"});
  EXPECT_EQ(index.tombstone_count(), 0u);
  EXPECT_EQ(index.ItemOf("t").present, false);  // the record goes
  EXPECT_EQ(index.bucket_hashes(), RetainedIndex().bucket_hashes());

  // Collected: still rejects older versions until forgotten, and a newer one replaces it.
  EXPECT_FALSE(index.Apply("t", V(4, "z"), Msg("t", "stale"), "d"));
  index.ForgetCollected(now + absl::Milliseconds(500));
  EXPECT_EQ(PayloadOf(index, "t"), "<collected>");
  index.ForgetCollected(now + absl::Seconds(1));
  EXPECT_EQ(PayloadOf(index, "t"), "<absent>");
  EXPECT_EQ(index.size(), 0u);
}

TEST(RetainedIndexTest, CompareSendsNewerAndWantsNewerButNoCollectedTombstoneToALackingPeer) {
  RetainedIndex mine;
  ASSERT_TRUE(mine.Apply("same", V(1, "a"), Msg("same", "x"), ""));
  ASSERT_TRUE(mine.Apply("ours-newer", V(9, "a"), Msg("ours-newer", "x"), ""));
  ASSERT_TRUE(mine.Apply("theirs-newer", V(1, "a"), Msg("theirs-newer", "x"), ""));
  ASSERT_TRUE(mine.Apply("they-lack", V(1, "a"), Msg("they-lack", "x"), ""));
  ASSERT_TRUE(mine.Apply("gone", V(7, "a"), nullptr, ""));
  ASSERT_TRUE(mine.Apply("gone-old-there", V(7, "a"), nullptr, ""));
  ASSERT_TRUE(mine.Apply("tomb", V(3, "a"), nullptr, ""));
  ASSERT_EQ(mine.CollectTombstones({}, absl::Now(), absl::Hours(1)).size(), 3u);
  ASSERT_TRUE(mine.Apply("tomb", V(4, "a"), nullptr, ""));  // a fresh tombstone

  RetainedIndex theirs;
  ASSERT_TRUE(theirs.Apply("same", V(1, "a"), Msg("same", "x"), ""));
  ASSERT_TRUE(theirs.Apply("ours-newer", V(2, "b"), Msg("ours-newer", "x"), ""));
  ASSERT_TRUE(theirs.Apply("theirs-newer", V(8, "b"), Msg("theirs-newer", "x"), ""));
  ASSERT_TRUE(theirs.Apply("gone-old-there", V(2, "b"), Msg("gone-old-there", "x"), ""));
  ASSERT_TRUE(theirs.Apply("they-want", V(2, "b"), Msg("they-want", "x"), ""));
  ASSERT_TRUE(theirs.Apply("tomb", V(4, "a"), nullptr, "x"));

  std::vector<uint32_t> all(RetainedIndex::kBuckets);
  for (uint32_t b = 0; b < RetainedIndex::kBuckets; ++b) all[b] = b;
  std::vector<v1::RetainedVersion> listing;
  for (uint32_t b : all) theirs.ListVersions(b, &listing);
  google::protobuf::RepeatedPtrField<v1::RetainedVersion> field(listing.begin(), listing.end());
  RetainedIndex::Comparison c = mine.Compare(all, field, "b");

  std::vector<std::string> newer;
  for (const auto& item : c.newer) newer.push_back(item.topic);
  std::sort(newer.begin(), newer.end());
  EXPECT_EQ(newer, (std::vector<std::string>{"gone-old-there", "ours-newer", "they-lack"}));
  std::sort(c.wanted.begin(), c.wanted.end());
  EXPECT_EQ(c.wanted, (std::vector<std::string>{"theirs-newer", "they-want"}));
  // Listed at our version: held by the peer, so collectable.
  EXPECT_EQ(mine.CollectTombstones({"b"}, absl::Now(), absl::Hours(1)),
            std::vector<std::string>{"tomb"});
}

TEST(RetainedIndexTest, BucketHashesDependOnContentNotOrder) {
  RetainedIndex a;
  RetainedIndex b;
  for (int i = 0; i < 200; ++i) {
    const std::string t = "site/" + std::to_string(i);
    a.Apply(t, V(i, "n"), Msg(t, "x"), "");
  }
  for (int i = 199; i >= 0; --i) {
    const std::string t = "site/" + std::to_string(i);
    b.Apply(t, V(0, "n"), Msg(t, "older"), "");
    b.Apply(t, V(i + 1000, "n"), Msg(t, "x"), "");
  }
  EXPECT_NE(a.bucket_hashes(), b.bucket_hashes());
  for (int i = 0; i < 200; ++i) {
    const std::string t = "site/" + std::to_string(i);
    a.Apply(t, V(i + 1000, "n"), Msg(t, "x"), "");
  }
  EXPECT_EQ(a.bucket_hashes(), b.bucket_hashes());
}

// Nodes compare these values: they must not depend on the process, the build or the platform.
// Golden values computed independently (FNV-1a 64, splitmix64 finalizer, in Python).
TEST(RetainedIndexTest, BucketsAndHashesMatchGoldenValues) {
  EXPECT_EQ(RetainedIndex::BucketOf("a/b"), 301u);
  EXPECT_EQ(RetainedIndex::BucketOf("home/kitchen/temp"), 354u);
  RetainedIndex index;
  index.Apply("a/b", V(5, "n1"), Msg("a/b", "x"), "");
  EXPECT_EQ(index.bucket_hashes()[301], 0xd778ba26d31681f6ull);
}

}  // namespace
}  // namespace mqtt::cluster
