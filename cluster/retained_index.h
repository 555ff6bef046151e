// SPDX-License-Identifier: Apache-2.0
// RetainedIndex: the rules of the cluster's retained messages, without I/O, threads or locks
// (RetainedSync, retained_sync.h, owns one under its mutex and does the transport).
//
// Every topic has one version (hlc, origin) (proto/retained.proto); a version replaces the one
// held only if it is greater: hlc first, then origin bytewise. So every node ends with the same
// winner whatever the order changes arrive in. A delete is a tombstone with its own version.
//
// Tombstones: a tombstone is "held" by a peer once that peer was seen holding its version or a
// newer one of the topic (a push it accepted, a version it listed, an equal digest bucket;
// never the mere absence of the topic, since an older set may still be on its way to it). It is
// collected once held by every member given to CollectTombstones (alive and dead: a dead member
// may come back with the older message): its record is deleted, and it stays in memory as
// "collected" for a grace period, still rejecting older versions and still listed for peers
// that have not collected it yet, but never sent to a peer that lacks the topic (which would
// start the same tombstone over there). A live message whose 5.0 message expiry passed becomes a
// tombstone of the same version (every node does the same at the same wall-clock time).
//
// Anti-entropy: topics fall into kBuckets buckets by a hash of the topic; each bucket's hash is
// the XOR of hash(topic, hlc, origin) over its entries, collected tombstones left out. The
// hashes are stable across processes and builds (FNV-1a with a fixed finalizer).
//
// Threading: none; the owner serializes every call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "node/protocol/message.h"
#include "proto/retained.pb.h"

namespace mqtt::cluster {

struct RetainedVersion {
  uint64_t hlc = 0;
  std::string origin;  // node id

  friend bool operator<(const RetainedVersion& a, const RetainedVersion& b) {
    return std::tie(a.hlc, a.origin) < std::tie(b.hlc, b.origin);
  }
  friend bool operator==(const RetainedVersion& a, const RetainedVersion& b) {
    return a.hlc == b.hlc && a.origin == b.origin;
  }
};

class RetainedIndex {
 public:
  static constexpr uint32_t kBuckets = 1024;

  struct Entry {
    RetainedVersion version;
    MessagePtr message;  // null: a tombstone
    bool collected = false;
    absl::Time forget_at;                   // collected: erased from memory then
    absl::flat_hash_set<std::string> held;  // tombstones: members seen holding it (or newer)
    bool tombstone() const { return message == nullptr; }
  };

  // One topic's state as it is sent or written: a message, a tombstone (message null), or,
  // with present false, no record at all (absent, or a collected tombstone).
  struct Item {
    std::string topic;
    RetainedVersion version;
    MessagePtr message;
    bool present = true;
    size_t bytes() const;  // about what it takes in a request or a batch
  };

  // A peer's listing compared with ours (Reconcile).
  struct Comparison {
    std::vector<Item> newer;          // we hold newer, or the peer lacks it
    std::vector<std::string> wanted;  // the peer holds newer, or we lack it
  };

  static uint32_t BucketOf(std::string_view topic);

  // Installs `version` of `topic` (message null: a tombstone) if it is greater than the version
  // held, collected tombstones included. `from`: the peer it came from, which holds it (empty for
  // a local change). True if installed: the caller updates the router and the store.
  bool Apply(std::string_view topic, const RetainedVersion& version, MessagePtr message,
             std::string_view from);
  // `peer` holds `version` of `topic` or a newer one: our tombstone, if not newer, is held.
  void NoteHeld(std::string_view topic, const RetainedVersion& version, std::string_view peer);
  // `peer` holds exactly what we hold in every bucket for which `same` is true.
  void NoteBucketsHeld(absl::FunctionRef<bool(uint32_t bucket)> same, std::string_view peer);

  const Entry* Find(std::string_view topic) const;
  Item ItemOf(std::string_view topic) const;

  // Live messages expired at `now_ms` (MonotonicMs) become tombstones at the same version.
  // Returns their topics (the caller deletes them from the router and rewrites the records).
  std::vector<std::string> ExpireMessages(int64_t now_ms);
  // Collects every tombstone held by each of `members` (ids, this node excluded); each is then
  // forgotten at now + grace. Returns their topics (the caller deletes the records).
  std::vector<std::string> CollectTombstones(const std::vector<std::string>& members,
                                             absl::Time now, absl::Duration grace);
  // Erases the collected tombstones whose grace has passed.
  void ForgetCollected(absl::Time now);

  const std::vector<uint64_t>& bucket_hashes() const { return bucket_hashes_; }
  // Our versions in `bucket` (collected tombstones included), appended to `out`; returns bytes.
  size_t ListVersions(uint32_t bucket, std::vector<v1::RetainedVersion>* out) const;
  // Compares a peer's versions of `buckets` (all it holds there) with ours, and notes what it
  // holds. A collected tombstone goes into `newer` only for a peer holding an older version.
  Comparison Compare(const std::vector<uint32_t>& buckets,
                     const google::protobuf::RepeatedPtrField<v1::RetainedVersion>& theirs,
                     std::string_view peer);

  // Every entry, collected tombstones included, bucket by bucket (topic order within one).
  void ForEach(absl::FunctionRef<void(const std::string& topic, const Entry&)> visit) const;
  size_t size() const { return size_; }
  size_t tombstone_count() const { return tombstones_.size(); }  // not collected
  size_t collected_count() const { return collected_.size(); }

 private:
  using Bucket = absl::btree_map<std::string, Entry, std::less<>>;

  static uint64_t EntryHash(std::string_view topic, const RetainedVersion& version);
  // XORs the entry into (or, the second time, out of) its bucket's hash; collected: no-op.
  void ToggleHash(std::string_view topic, const Entry& entry);
  // Keeps tombstones_, expiring_ and collected_ in step with `entry`.
  void Track(const std::string& topic, const Entry& entry);

  std::vector<Bucket> buckets_ = std::vector<Bucket>(kBuckets);
  std::vector<uint64_t> bucket_hashes_ = std::vector<uint64_t>(kBuckets, 0);
  size_t size_ = 0;
  absl::flat_hash_set<std::string> tombstones_;  // not collected
  absl::flat_hash_set<std::string> expiring_;    // live messages with a message expiry
  absl::flat_hash_set<std::string> collected_;
};

}  // namespace mqtt::cluster
