// SPDX-License-Identifier: Apache-2.0
#include "cluster/retained_sync.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "node/base/log.h"
#include "node/persist/convert.h"

namespace mqtt::cluster {
namespace {

using Item = RetainedIndex::Item;

absl::Status Validate(const RetainedSyncOptions& o) {
  if (o.node_id.empty()) return absl::InvalidArgumentError("cluster retained: node id is empty");
  if (o.sync_interval <= absl::ZeroDuration() || o.rpc_timeout <= absl::ZeroDuration() ||
      o.tombstone_grace < absl::ZeroDuration() || o.collect_after_start < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("cluster retained: intervals must be positive");
  }
  if (o.max_batch_bytes == 0) {
    return absl::InvalidArgumentError("cluster retained: max_batch_bytes must be > 0");
  }
  return absl::OkStatus();
}

void SetDeadline(grpc::ClientContext* ctx, absl::Duration timeout) {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

grpc::Status Unavailable() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "cluster retained sync not running");
}

bool Expired(const Message& message) {
  return message.expires_at_ms != 0 && message.expires_at_ms <= MonotonicMs();
}

bool Expired(const storage::v1::MessageRecord& record) {
  return record.expires_at_unix_ms() != 0 && record.expires_at_unix_ms() <= UnixMs();
}

// What the router is given for a tombstone: the topic with an empty payload deletes.
MessagePtr DeleteOf(const std::string& topic) {
  auto message = std::make_shared<Message>();
  message->topic = topic;
  message->retain = true;
  return message;
}

storage::v1::RetainedRecord ToRecord(const Item& item) {
  storage::v1::RetainedRecord record;
  record.set_hlc(item.version.hlc);
  record.set_origin(item.version.origin);
  if (item.message != nullptr) {
    *record.mutable_message() = persist::ToStored(*item.message);
  } else {
    record.mutable_message()->set_topic(item.topic);
    record.set_tombstone(true);
  }
  return record;
}

// An expired message goes as a tombstone of the same version.
v1::RetainedChange ToChange(const Item& item) {
  v1::RetainedChange change;
  change.set_topic(item.topic);
  change.set_hlc(item.version.hlc);
  change.set_origin(item.version.origin);
  if (item.message != nullptr && !Expired(*item.message)) {
    *change.mutable_message() = persist::ToStored(*item.message);
  } else {
    change.set_tombstone(true);
  }
  return change;
}

// A received change as an item (message null: a tombstone); nullopt if malformed.
std::optional<Item> FromChange(const v1::RetainedChange& change) {
  if (change.topic().empty() || change.origin().empty()) return std::nullopt;
  Item item{change.topic(), {change.hlc(), change.origin()}, nullptr, true};
  if (change.tombstone() || Expired(change.message())) return item;
  if (!change.has_message()) return std::nullopt;
  storage::v1::MessageRecord record = change.message();
  record.set_topic(change.topic());
  record.set_retain(true);
  item.message = persist::FromStored(0, record);
  return item;
}

std::vector<Item> FromChanges(const google::protobuf::RepeatedPtrField<v1::RetainedChange>& in) {
  std::vector<Item> items;
  items.reserve(in.size());
  for (const v1::RetainedChange& change : in) {
    if (std::optional<Item> item = FromChange(change)) items.push_back(std::move(*item));
  }
  return items;
}

bool SameState(const Item& a, const Item& b) {
  return a.present == b.present &&
         (!a.present ||
          (a.version == b.version && (a.message == nullptr) == (b.message == nullptr)));
}

}  // namespace

class RetainedSync::Handler final : public v1::RetainedSync::CallbackService {
 public:
  explicit Handler(RetainedSync* s) : s_(s) {}

  grpc::ServerUnaryReactor* Push(grpc::CallbackServerContext* ctx,
                                 const v1::RetainedPushRequest* req,
                                 v1::RetainedPushResponse*) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(s_->HandlePush(*req));
    return reactor;
  }
  grpc::ServerUnaryReactor* Digest(grpc::CallbackServerContext* ctx,
                                   const v1::RetainedDigestRequest* req,
                                   v1::RetainedDigestResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(s_->HandleDigest(*req, resp));
    return reactor;
  }
  grpc::ServerUnaryReactor* Reconcile(grpc::CallbackServerContext* ctx,
                                      const v1::RetainedReconcileRequest* req,
                                      v1::RetainedReconcileResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(s_->HandleReconcile(*req, resp));
    return reactor;
  }

 private:
  RetainedSync* const s_;
};

// Told on the worker that wrote the batch (null executor: inline, see ack_token.h). A token may
// outlive the RetainedSync in a worker's batch: Detach, under the listener's own mutex, makes
// later calls no-ops and waits for one in progress.
class RetainedSync::CommitListener final : public AckListener {
 public:
  explicit CommitListener(RetainedSync* s) : s_(s) {}
  void OnDurable(uint64_t seq) override {
    absl::MutexLock lock(&mu_);
    if (s_ != nullptr) s_->LocalCommitted(seq);
  }
  void Detach() {
    absl::MutexLock lock(&mu_);
    s_ = nullptr;
  }

 private:
  absl::Mutex mu_;  // taken before RetainedSync::mu_
  RetainedSync* s_ ABSL_GUARDED_BY(mu_);
};

RetainedSync::RetainedSync(RetainedSyncOptions options, Router* router, storage::Store* store)
    : options_(std::move(options)),
      router_(router),
      store_(store),
      handler_(std::make_unique<Handler>(this)),
      commit_listener_(std::make_shared<CommitListener>(this)),
      hlc_(options_.wall_clock),
      rng_(std::random_device{}()) {}

RetainedSync::~RetainedSync() {
  Stop();
  commit_listener_->Detach();
}

grpc::Service* RetainedSync::service() { return handler_.get(); }

absl::Status RetainedSync::Start(std::string_view advertise_address) {
  absl::MutexLock lock(&mu_);
  if (phase_ != Phase::kNew) {
    return absl::FailedPreconditionError("cluster retained: already started");
  }
  if (!advertise_address.empty()) options_.advertise_address = std::string(advertise_address);
  if (absl::Status s = Validate(options_); !s.ok()) return s;
  if (store_ != nullptr) {
    if (absl::Status s = LoadFromStore(); !s.ok()) return s;
  }
  phase_ = Phase::kRunning;
  started_at_ = absl::Now();
  MQTT_LOG_INFO("cluster: retained sync of %s at %s starting with %d topics (%d tombstones)",
                options_.node_id, options_.advertise_address, index_.size(),
                index_.tombstone_count());
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

absl::Status RetainedSync::LoadFromStore() {
  return store_
      ->LoadRetainedRecords(UnixMs(),
                            [this](std::string_view topic, const storage::v1::RetainedRecord& r)
                                ABSL_NO_THREAD_SAFETY_ANALYSIS {  // Start holds mu_
                                  LoadRecord(std::string(topic), r);
                                  return absl::OkStatus();
                                })
      .status();
}

void RetainedSync::LoadRecord(const std::string& topic, const storage::v1::RetainedRecord& record) {
  hlc_.Observe(record.hlc());
  // Without an origin it was written by this node alone (Batch::PutRetained), at hlc 0: it
  // loses to any version made in a cluster.
  RetainedVersion version{record.hlc(),
                          record.origin().empty() ? options_.node_id : record.origin()};
  const bool expired = !record.tombstone() && Expired(record.message());
  MessagePtr message;
  if (!record.tombstone() && !expired) {
    // The broker's Recover put it in the router: share that copy rather than hold a second.
    for (const MessagePtr& m : router_->RetainedMatching(topic)) {
      if (m->topic == topic) message = m;
    }
    if (message == nullptr) {
      message = persist::FromStored(0, record.message());
      router_->SetRetained(message, /*routed_here=*/false);
    }
  }
  index_.Apply(topic, version, std::move(message), {});
  if (expired) dirty_.insert(topic);  // rewritten as the tombstone it now is
}

void RetainedSync::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (phase_ == Phase::kNew) phase_ = Phase::kStopped;
    if (phase_ != Phase::kRunning) {
      mu_.Await(absl::Condition(
          +[](Phase* p) { return *p == Phase::kStopped; }, &phase_));
      return;
    }
    phase_ = Phase::kStopping;
  }
  thread_.join();
  std::vector<Item> writes;
  {
    absl::MutexLock lock(&mu_);
    // Callbacks of calls in flight use `this`; each call has a deadline.
    mu_.Await(absl::Condition(
        +[](int* n) { return *n == 0; }, &calls_in_flight_));
    // Remote changes applied since the thread's last turn still reach the store.
    for (const std::string& topic : dirty_) writes.push_back(index_.ItemOf(topic));
    dirty_.clear();
  }
  WriteStore(std::move(writes));
  absl::MutexLock lock(&mu_);
  phase_ = Phase::kStopped;
}

uint64_t RetainedSync::PublishRetained(SessionStorage& storage, const MessagePtr& message,
                                       const AckTokenPtr& ack) {
  const std::string& topic = message->topic;
  MessagePtr kept = message->payload.empty() ? nullptr : message;
  RetainedVersion version;
  uint64_t seq = 0;
  uint64_t retained_seq = 0;
  {
    absl::MutexLock lock(&mu_);
    // Above every version held: each was observed by the clock before it was installed.
    version = {hlc_.Now(), options_.node_id};
    if (!index_.Apply(topic, version, kept, {})) {
      MQTT_LOG_ERROR("cluster: retained %s: local version not newer (a bug)", topic);
    }
    retained_seq = router_->SetRetained(message);
    QueueForPeers(topic);
    ++stats_.local_changes;
    if (storage.batch() != nullptr) {
      seq = next_commit_seq_++;
      uncommitted_[seq] = {topic, version};
    } else if (store_ != nullptr) {
      dirty_.insert(topic);  // the worker persists nothing: the thread writes it
    }
  }
  if (storage::Batch* batch = storage.batch()) {
    batch->PutRetainedRecord(topic, ToRecord({topic, version, std::move(kept), true}));
    storage.HoldUntilCommitted(ack);
    storage.HoldUntilCommitted(std::make_shared<AckToken>(nullptr, commit_listener_, seq));
  }
  return retained_seq;
}

void RetainedSync::LocalCommitted(uint64_t seq) {
  absl::MutexLock lock(&mu_);
  auto it = uncommitted_.find(seq);
  if (it == uncommitted_.end()) return;
  const auto [topic, version] = std::move(it->second);
  uncommitted_.erase(it);
  const Item now = index_.ItemOf(topic);
  if (store_ != nullptr && !(now.present && now.version == version)) {
    dirty_.insert(topic);
    wake_ = true;
  }
}

void RetainedSync::QueueForPeers(const std::string& topic) {
  for (auto& [id, peer] : peers_) {
    if (peer.alive) peer.pending.insert(topic);
  }
  wake_ = true;
}

void RetainedSync::ApplyRemote(std::vector<Item> changes, const std::string& from) {
  for (Item& change : changes) {
    hlc_.Observe(change.version.hlc);
    if (!index_.Apply(change.topic, change.version, std::move(change.message), from)) continue;
    const RetainedIndex::Entry& entry = *index_.Find(change.topic);
    router_->SetRetained(entry.tombstone() ? DeleteOf(change.topic) : entry.message,
                         /*routed_here=*/false);
    if (store_ != nullptr) dirty_.insert(change.topic);
    ++stats_.remote_applied;
    wake_ = true;
  }
}

void RetainedSync::PeerAlive(const std::string& node_id, const std::string& address) {
  if (node_id == options_.node_id || address.empty()) return;
  std::string old_address;
  {
    absl::MutexLock lock(&mu_);
    Peer& peer = peers_[node_id];
    if (peer.address != address) old_address = std::exchange(peer.address, address);
    peer.alive = true;
    // At once rather than at the next period: a joining or returning node missed changes.
    digest_queue_.push_back(node_id);
    wake_ = true;
  }
  if (!old_address.empty()) stubs_.Drop(old_address);
}

void RetainedSync::PeerDead(const std::string& node_id) {
  absl::MutexLock lock(&mu_);
  auto it = peers_.find(node_id);
  if (it == peers_.end()) return;
  it->second.alive = false;  // still a member: its tombstones wait for it
  it->second.pending.clear();
}

void RetainedSync::PeerGone(const std::string& node_id) {
  absl::MutexLock lock(&mu_);
  peers_.erase(node_id);
}

void RetainedSync::OnMemberChange(const MemberInfo& member, MemberChange change) {
  switch (change) {
    case MemberChange::kJoined:
    case MemberChange::kAlive:
      PeerAlive(member.node_id, member.address);
      break;
    case MemberChange::kDead:
      PeerDead(member.node_id);
      break;
    case MemberChange::kLeft:
    case MemberChange::kRemoved:
      PeerGone(member.node_id);
      break;
    case MemberChange::kSuspect:
      break;  // still pushed to; a failed push is repaired by a later sync
  }
}

std::vector<RetainedEntryInfo> RetainedSync::Snapshot() const {
  std::vector<RetainedEntryInfo> out;
  {
    absl::MutexLock lock(&mu_);
    out.reserve(index_.size());
    index_.ForEach([&](const std::string& topic, const RetainedIndex::Entry& entry) {
      if (entry.collected) return;
      out.push_back({topic, entry.version.hlc, entry.version.origin, entry.tombstone(),
                     entry.message != nullptr ? entry.message->payload.size() : 0,
                     entry.held.size()});
    });
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.topic < b.topic; });
  return out;
}

RetainedSyncStats RetainedSync::stats() const {
  absl::MutexLock lock(&mu_);
  RetainedSyncStats stats = stats_;
  stats.entries = index_.size() - index_.collected_count();
  stats.tombstones = index_.tombstone_count();
  return stats;
}

std::string RetainedSync::AddressOf(const std::string& node_id) const {
  auto it = peers_.find(node_id);
  return it != peers_.end() && it->second.alive ? it->second.address : std::string();
}

void RetainedSync::CallDone() {
  absl::MutexLock lock(&mu_);
  --calls_in_flight_;
}

// --- The thread ---

void RetainedSync::Loop() {
  absl::Time next_tick = absl::Now() + options_.sync_interval;
  for (;;) {
    stubs_.ReleaseRetired();  // here, off gRPC's callback threads (stub_cache.h)
    Work work;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithDeadline(absl::Condition(
                                +[](RetainedSync* s) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                  return s->wake_ || s->phase_ != Phase::kRunning;
                                },
                                this),
                            next_tick);
      if (phase_ != Phase::kRunning) return;
      wake_ = false;
      if (const absl::Time now = absl::Now(); now >= next_tick) {
        Tick(now);
        next_tick = now + options_.sync_interval;
      }
      TakeWork(&work);
    }
    WriteStore(std::move(work.writes));
    for (PendingPush& push : work.pushes) SendPush(std::move(push));
    for (auto& [peer, address] : work.digests) SendDigest(std::move(peer), std::move(address));
    for (PendingReconcile& r : work.reconciles) SendReconcile(std::move(r));
  }
}

void RetainedSync::Tick(absl::Time now) {
  ++stats_.periods;
  for (const std::string& topic : index_.ExpireMessages(MonotonicMs())) {
    router_->SetRetained(DeleteOf(topic), /*routed_here=*/false);
    if (store_ != nullptr) dirty_.insert(topic);
    ++stats_.expired;
  }
  if (now >= started_at_ + options_.collect_after_start) {
    std::vector<std::string> members;  // alive and dead: see the file comment
    for (const auto& [id, peer] : peers_) members.push_back(id);
    for (const std::string& topic :
         index_.CollectTombstones(members, now, options_.tombstone_grace)) {
      if (store_ != nullptr) dirty_.insert(topic);
      ++stats_.tombstones_collected;
    }
  }
  index_.ForgetCollected(now);
  std::vector<std::string> alive;
  for (const auto& [id, peer] : peers_) {
    if (peer.alive) alive.push_back(id);
  }
  if (!alive.empty()) {
    std::uniform_int_distribution<size_t> pick(0, alive.size() - 1);
    digest_queue_.push_back(alive[pick(rng_)]);
  }
}

void RetainedSync::TakeWork(Work* work) {
  for (const std::string& topic : dirty_) work->writes.push_back(index_.ItemOf(topic));
  dirty_.clear();
  for (auto& [id, peer] : peers_) {
    if (!peer.alive || peer.in_flight || peer.pending.empty()) continue;
    PendingPush push{id, peer.address, {}};
    size_t bytes = 0;
    for (auto it = peer.pending.begin();
         it != peer.pending.end() && (push.items.empty() || bytes < options_.max_batch_bytes);) {
      Item item = index_.ItemOf(*it);
      peer.pending.erase(it++);
      if (!item.present) continue;  // collected meanwhile: the peer had it
      bytes += item.bytes();
      push.items.push_back(std::move(item));
    }
    if (push.items.empty()) continue;
    if (!peer.pending.empty()) wake_ = true;  // the rest after this call
    peer.in_flight = true;
    work->pushes.push_back(std::move(push));
  }
  for (const std::string& id : digest_queue_) {
    if (std::string address = AddressOf(id); !address.empty()) {
      work->digests.emplace_back(id, std::move(address));
    }
  }
  digest_queue_.clear();
  work->reconciles.swap(reconcile_queue_);
  calls_in_flight_ +=
      static_cast<int>(work->pushes.size() + work->digests.size() + work->reconciles.size());
}

void RetainedSync::WriteStore(std::vector<Item> items) {
  if (items.empty() || store_ == nullptr) return;
  for (size_t i = 0; i < items.size();) {
    storage::Batch batch;
    size_t bytes = 0;
    for (const size_t first = i;
         i < items.size() && (i == first || bytes < options_.max_batch_bytes); ++i) {
      if (items[i].present) {
        batch.PutRetainedRecord(items[i].topic, ToRecord(items[i]));
      } else {
        batch.DeleteRetained(items[i].topic);
      }
      bytes += items[i].bytes();
    }
    if (absl::Status s = store_->Write(std::move(batch)); !s.ok()) {
      // The store now refuses every write; the node stops on the workers' next write.
      absl::MutexLock lock(&mu_);
      if (stats_.store_errors++ == 0)
        MQTT_LOG_ERROR("cluster: retained write failed: %s", s.ToString());
      return;
    }
  }
  absl::MutexLock lock(&mu_);
  ++stats_.store_writes;
  // A worker's batch written meanwhile may hold an older state of one of these topics, or a
  // newer state may have been applied since they were read: write those again.
  for (const Item& written : items) {
    if (!SameState(written, index_.ItemOf(written.topic))) {
      dirty_.insert(written.topic);
      wake_ = true;
    }
  }
}

// --- Calls made ---

void RetainedSync::SendPush(PendingPush push) {
  struct Call {
    grpc::ClientContext ctx;
    v1::RetainedPushRequest req;
    v1::RetainedPushResponse resp;
  };
  auto call = std::make_shared<Call>();
  call->req.set_sender_node_id(options_.node_id);
  for (const Item& item : push.items) *call->req.add_changes() = ToChange(item);
  SetDeadline(&call->ctx, options_.rpc_timeout);
  stubs_.Get(push.address)
      ->async()
      ->Push(&call->ctx, &call->req, &call->resp,
             [this, call, push = std::move(push)](grpc::Status s) {
               if (!s.ok()) {
                 MQTT_LOG_DEBUG("cluster: retained push to %s failed: %s", push.peer,
                                s.error_message());
                 stubs_.Drop(push.address);  // next call on a fresh channel
               }
               absl::MutexLock lock(&mu_);
               --calls_in_flight_;
               if (auto it = peers_.find(push.peer); it != peers_.end()) {
                 it->second.in_flight = false;
                 if (!it->second.pending.empty()) wake_ = true;
               }
               if (!s.ok()) {
                 ++stats_.push_failures;  // the next sync repairs it
                 return;
               }
               ++stats_.pushes;
               for (const Item& item : push.items) {
                 index_.NoteHeld(item.topic, item.version, push.peer);
               }
             });
}

void RetainedSync::SendDigest(std::string peer, std::string address) {
  struct Call {
    grpc::ClientContext ctx;
    v1::RetainedDigestRequest req;
    v1::RetainedDigestResponse resp;
  };
  auto call = std::make_shared<Call>();
  call->req.set_sender_node_id(options_.node_id);
  {
    absl::MutexLock lock(&mu_);
    for (uint64_t h : index_.bucket_hashes()) call->req.add_bucket_hashes(h);
  }
  SetDeadline(&call->ctx, options_.rpc_timeout);
  stubs_.Get(address)->async()->Digest(
      &call->ctx, &call->req, &call->resp,
      [this, call, peer = std::move(peer), address](grpc::Status s) {
        if (!s.ok()) {
          MQTT_LOG_DEBUG("cluster: retained digest with %s failed: %s", peer, s.error_message());
          stubs_.Drop(address);
        }
        absl::MutexLock lock(&mu_);
        --calls_in_flight_;
        if (!s.ok()) return;
        ++stats_.digests;
        const auto& differing = call->resp.differing_buckets();
        const absl::flat_hash_set<uint32_t> differ(differing.begin(), differing.end());
        // A bucket the peer found equal, and still as it was sent, holds what we hold.
        const auto& sent = call->req.bucket_hashes();
        const std::vector<uint64_t>& mine = index_.bucket_hashes();
        index_.NoteBucketsHeld(
            [&](uint32_t b) { return !differ.contains(b) && mine[b] == sent[b]; }, peer);
        if (differing.empty()) return;
        PendingReconcile r{peer, {}};
        for (uint32_t b : differing) {
          if (b < RetainedIndex::kBuckets) r.buckets.push_back(b);
        }
        reconcile_queue_.push_back(std::move(r));
        wake_ = true;
      });
}

void RetainedSync::SendReconcile(PendingReconcile reconcile) {
  struct Call {
    grpc::ClientContext ctx;
    v1::RetainedReconcileRequest req;
    v1::RetainedReconcileResponse resp;
  };
  auto call = std::make_shared<Call>();
  call->req.set_sender_node_id(options_.node_id);
  std::string address;
  {
    absl::MutexLock lock(&mu_);
    address = AddressOf(reconcile.peer);
    std::vector<v1::RetainedVersion> versions;
    size_t bytes = 0;
    size_t n = 0;
    // As many buckets as fit in one listing; the rest in another call.
    for (; n < reconcile.buckets.size() && (n == 0 || bytes < options_.max_batch_bytes); ++n) {
      bytes += index_.ListVersions(reconcile.buckets[n], &versions);
      call->req.add_buckets(reconcile.buckets[n]);
    }
    if (!address.empty() && n < reconcile.buckets.size()) {
      reconcile_queue_.push_back(
          {reconcile.peer, {reconcile.buckets.begin() + n, reconcile.buckets.end()}});
      wake_ = true;
    }
    for (v1::RetainedVersion& v : versions) *call->req.add_versions() = std::move(v);
  }
  if (address.empty()) return CallDone();  // no longer alive
  SetDeadline(&call->ctx, options_.rpc_timeout);
  stubs_.Get(address)->async()->Reconcile(
      &call->ctx, &call->req, &call->resp,
      [this, call, peer = std::move(reconcile.peer), address](grpc::Status s) {
        if (!s.ok()) {
          MQTT_LOG_DEBUG("cluster: retained reconcile with %s failed: %s", peer, s.error_message());
          stubs_.Drop(address);
          return CallDone();
        }
        std::vector<Item> newer = FromChanges(call->resp.newer());  // outside the lock
        absl::MutexLock lock(&mu_);
        --calls_in_flight_;
        ++stats_.reconciles;
        ReconcileDone(peer, call->req, call->resp, std::move(newer));
      });
}

void RetainedSync::ReconcileDone(const std::string& peer,
                                 const v1::RetainedReconcileRequest& request,
                                 const v1::RetainedReconcileResponse& response,
                                 std::vector<Item> newer) {
  absl::flat_hash_set<std::string_view> mentioned;
  for (const v1::RetainedChange& c : response.newer()) mentioned.insert(c.topic());
  ApplyRemote(std::move(newer), peer);
  auto it = peers_.find(peer);
  for (const std::string& topic : response.wanted()) {
    mentioned.insert(topic);
    if (it != peers_.end() && it->second.alive) it->second.pending.insert(topic);
  }
  if (response.truncated()) {
    // Unmentioned topics may just not have been reached: nothing is inferred from them.
    reconcile_queue_.push_back({peer, {request.buckets().begin(), request.buckets().end()}});
  } else {
    for (const v1::RetainedVersion& v : request.versions()) {
      if (!mentioned.contains(v.topic())) index_.NoteHeld(v.topic(), {v.hlc(), v.origin()}, peer);
    }
  }
  wake_ = true;
}

// --- Calls received ---

grpc::Status RetainedSync::HandlePush(const v1::RetainedPushRequest& request) {
  std::vector<Item> changes = FromChanges(request.changes());  // outside the lock
  absl::MutexLock lock(&mu_);
  if (phase_ != Phase::kRunning) return Unavailable();
  if (request.sender_node_id().empty() || request.sender_node_id() == options_.node_id) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad sender node id");
  }
  ApplyRemote(std::move(changes), request.sender_node_id());
  return grpc::Status::OK;
}

grpc::Status RetainedSync::HandleDigest(const v1::RetainedDigestRequest& request,
                                        v1::RetainedDigestResponse* response) {
  absl::MutexLock lock(&mu_);
  if (phase_ != Phase::kRunning) return Unavailable();
  if (request.bucket_hashes_size() != static_cast<int>(RetainedIndex::kBuckets)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "wrong number of digest buckets");
  }
  const std::vector<uint64_t>& mine = index_.bucket_hashes();
  for (uint32_t b = 0; b < RetainedIndex::kBuckets; ++b) {
    if (request.bucket_hashes(b) != mine[b]) response->add_differing_buckets(b);
  }
  // An equal bucket: the requester holds what we hold there (it only moves on since).
  index_.NoteBucketsHeld([&](uint32_t b) { return request.bucket_hashes(b) == mine[b]; },
                         request.sender_node_id());
  return grpc::Status::OK;
}

grpc::Status RetainedSync::HandleReconcile(const v1::RetainedReconcileRequest& request,
                                           v1::RetainedReconcileResponse* response) {
  RetainedIndex::Comparison comparison;
  {
    absl::MutexLock lock(&mu_);
    if (phase_ != Phase::kRunning) return Unavailable();
    const std::vector<uint32_t> buckets(request.buckets().begin(), request.buckets().end());
    comparison = index_.Compare(buckets, request.versions(), request.sender_node_id());
  }
  // Messages are copied into the answer outside the lock, up to the size limit.
  size_t bytes = 0;
  for (const Item& item : comparison.newer) {
    if (response->newer_size() > 0 && bytes >= options_.max_batch_bytes) {
      response->set_truncated(true);
      break;
    }
    bytes += item.bytes();
    *response->add_newer() = ToChange(item);
  }
  for (std::string& topic : comparison.wanted) response->add_wanted(std::move(topic));
  return grpc::Status::OK;
}

}  // namespace mqtt::cluster
