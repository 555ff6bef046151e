// SPDX-License-Identifier: Apache-2.0
#include "cluster/retained_index.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"

namespace mqtt::cluster {
namespace {

constexpr uint64_t kFnvOffset = 14695981039346656037ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;

uint64_t Fnv(uint64_t h, std::string_view bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= kFnvPrime;
  }
  return h;
}

// splitmix64's finalizer: FNV-1a alone spreads short, similar topics poorly over the buckets.
uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

bool Expired(const MessagePtr& message, int64_t now_ms) {
  return message != nullptr && message->expires_at_ms != 0 && message->expires_at_ms <= now_ms;
}

}  // namespace

size_t RetainedIndex::Item::bytes() const {
  size_t n = topic.size() + version.origin.size() + 64;
  if (message != nullptr) n += message->topic.size() + message->payload.size();
  return n;
}

uint32_t RetainedIndex::BucketOf(std::string_view topic) {
  return static_cast<uint32_t>(Mix(Fnv(kFnvOffset, topic)) % kBuckets);
}

uint64_t RetainedIndex::EntryHash(std::string_view topic, const RetainedVersion& version) {
  // The topic ends at a 0x00, which an MQTT topic cannot contain; the hlc has a fixed size.
  uint64_t h = Fnv(Fnv(kFnvOffset, topic), std::string_view("\0", 1));
  char hlc[8];
  for (int i = 0; i < 8; ++i) hlc[i] = static_cast<char>(version.hlc >> (8 * i));
  h = Fnv(h, std::string_view(hlc, sizeof(hlc)));
  return Mix(Fnv(h, version.origin));
}

void RetainedIndex::ToggleHash(std::string_view topic, const Entry& entry) {
  if (!entry.collected) bucket_hashes_[BucketOf(topic)] ^= EntryHash(topic, entry.version);
}

void RetainedIndex::Track(const std::string& topic, const Entry& entry) {
  tombstones_.erase(topic);
  expiring_.erase(topic);
  collected_.erase(topic);
  if (entry.collected) {
    collected_.insert(topic);
  } else if (entry.tombstone()) {
    tombstones_.insert(topic);
  } else if (entry.message->expires_at_ms != 0) {
    expiring_.insert(topic);
  }
}

bool RetainedIndex::Apply(std::string_view topic, const RetainedVersion& version,
                          MessagePtr message, std::string_view from) {
  // An empty payload is a delete [MQTT-3.3.1-10]; an expired message is one too (file comment).
  if (message != nullptr && (message->payload.empty() || Expired(message, MonotonicMs()))) {
    message = nullptr;
  }
  Bucket& bucket = buckets_[BucketOf(topic)];
  auto it = bucket.find(topic);
  if (it != bucket.end()) {
    if (!(it->second.version < version)) {
      if (!from.empty()) NoteHeld(topic, version, from);
      return false;
    }
    ToggleHash(topic, it->second);
  } else {
    it = bucket.emplace(std::string(topic), Entry{}).first;
    ++size_;
  }
  Entry& entry = it->second;
  entry = Entry{};
  entry.version = version;
  entry.message = std::move(message);
  if (entry.tombstone() && !from.empty()) entry.held.insert(std::string(from));
  ToggleHash(topic, entry);
  Track(it->first, entry);
  return true;
}

void RetainedIndex::NoteHeld(std::string_view topic, const RetainedVersion& version,
                             std::string_view peer) {
  Bucket& bucket = buckets_[BucketOf(topic)];
  auto it = bucket.find(topic);
  if (it == bucket.end() || !it->second.tombstone() || it->second.collected) return;
  if (!(version < it->second.version)) it->second.held.insert(std::string(peer));
}

void RetainedIndex::NoteBucketsHeld(absl::FunctionRef<bool(uint32_t bucket)> same,
                                    std::string_view peer) {
  for (const std::string& topic : tombstones_) {
    const uint32_t b = BucketOf(topic);
    if (same(b)) buckets_[b].find(topic)->second.held.insert(std::string(peer));
  }
}

const RetainedIndex::Entry* RetainedIndex::Find(std::string_view topic) const {
  const Bucket& bucket = buckets_[BucketOf(topic)];
  auto it = bucket.find(topic);
  return it == bucket.end() ? nullptr : &it->second;
}

RetainedIndex::Item RetainedIndex::ItemOf(std::string_view topic) const {
  Item item;
  item.topic = std::string(topic);
  const Entry* entry = Find(topic);
  item.present = entry != nullptr && !entry->collected;
  if (entry != nullptr) {
    item.version = entry->version;
    item.message = entry->message;
  }
  return item;
}

std::vector<std::string> RetainedIndex::ExpireMessages(int64_t now_ms) {
  std::vector<std::string> expired;
  for (const std::string& topic : expiring_) {
    if (Expired(Find(topic)->message, now_ms)) expired.push_back(topic);
  }
  for (const std::string& topic : expired) {
    Entry& entry = buckets_[BucketOf(topic)].find(topic)->second;
    entry.message = nullptr;  // same version: the hash does not change
    Track(topic, entry);
  }
  return expired;
}

std::vector<std::string> RetainedIndex::CollectTombstones(const std::vector<std::string>& members,
                                                          absl::Time now, absl::Duration grace) {
  std::vector<std::string> collected;
  for (const std::string& topic : tombstones_) {
    const Entry& entry = *Find(topic);
    if (std::all_of(members.begin(), members.end(),
                    [&](const std::string& m) { return entry.held.contains(m); })) {
      collected.push_back(topic);
    }
  }
  for (const std::string& topic : collected) {
    Entry& entry = buckets_[BucketOf(topic)].find(topic)->second;
    ToggleHash(topic, entry);
    entry.collected = true;
    entry.forget_at = now + grace;
    entry.held.clear();
    Track(topic, entry);
  }
  return collected;
}

void RetainedIndex::ForgetCollected(absl::Time now) {
  std::vector<std::string> forget;
  for (const std::string& topic : collected_) {
    if (Find(topic)->forget_at <= now) forget.push_back(topic);
  }
  for (const std::string& topic : forget) {
    buckets_[BucketOf(topic)].erase(topic);
    collected_.erase(topic);
    --size_;
  }
}

size_t RetainedIndex::ListVersions(uint32_t bucket, std::vector<v1::RetainedVersion>* out) const {
  size_t bytes = 0;
  for (const auto& [topic, entry] : buckets_[bucket]) {
    v1::RetainedVersion& v = out->emplace_back();
    v.set_topic(topic);
    v.set_hlc(entry.version.hlc);
    v.set_origin(entry.version.origin);
    v.set_tombstone(entry.tombstone());
    bytes += topic.size() + entry.version.origin.size() + 16;
  }
  return bytes;
}

RetainedIndex::Comparison RetainedIndex::Compare(
    const std::vector<uint32_t>& buckets,
    const google::protobuf::RepeatedPtrField<v1::RetainedVersion>& theirs, std::string_view peer) {
  Comparison result;
  const absl::flat_hash_set<uint32_t> asked(buckets.begin(), buckets.end());
  absl::flat_hash_set<std::string_view> listed;
  for (const v1::RetainedVersion& v : theirs) {
    if (!asked.contains(BucketOf(v.topic()))) continue;  // not theirs to list: ignored
    listed.insert(v.topic());
    const RetainedVersion version{v.hlc(), v.origin()};
    const Entry* mine = Find(v.topic());
    if (mine == nullptr || mine->version < version) {
      result.wanted.push_back(v.topic());
    } else if (version < mine->version) {
      result.newer.push_back({v.topic(), mine->version, mine->message, true});
    } else {
      NoteHeld(v.topic(), version, peer);
    }
  }
  for (uint32_t b : asked) {
    if (b >= kBuckets) continue;
    for (const auto& [topic, entry] : buckets_[b]) {
      if (entry.collected || listed.contains(topic)) continue;
      result.newer.push_back({topic, entry.version, entry.message, true});
    }
  }
  return result;
}

void RetainedIndex::ForEach(
    absl::FunctionRef<void(const std::string& topic, const Entry& entry)> visit) const {
  for (const Bucket& bucket : buckets_) {
    for (const auto& [topic, entry] : bucket) visit(topic, entry);
  }
}

}  // namespace mqtt::cluster
