// SPDX-License-Identifier: Apache-2.0
#include "cluster/forward.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "node/base/log.h"
#include "node/base/log_limiter.h"
#include "node/persist/convert.h"

namespace mqtt::cluster {
namespace {

// 0xFF never occurs in UTF-8, so no client id can collide with a peer outbox.
std::string OutboxId(const std::string& node_id) { return absl::StrCat("\xffpeer-", node_id); }
constexpr std::string_view kOutboxPrefix = "\xffpeer-";

std::string ProgressKey(const std::string& origin) { return absl::StrCat("fwd-in/", origin); }

// A copy for a shared group (null: a plain copy), shared by the entry and its stream batch.
using SharedPtr = std::shared_ptr<const v1::SharedTarget>;

uint32_t EntryBytes(const Message& message, const SharedPtr& shared) {
  const size_t share = shared ? shared->group().size() + shared->filter().size() : 0;
  return static_cast<uint32_t>(message.topic.size() + message.payload.size() + share + 64);
}

// A durable entry's group goes in its outbox QueueEntry, in target_client_id (which only the
// workers' outboxes use otherwise): the serialized v1::SharedTarget, empty for a plain copy.
std::string StoredShared(const SharedPtr& shared) {
  return shared ? shared->SerializeAsString() : std::string();
}

// False if the stored group cannot be read (then the entry cannot be delivered correctly).
bool RestoredShared(const std::string& stored, SharedPtr* shared) {
  shared->reset();
  if (stored.empty()) return true;
  auto parsed = std::make_shared<v1::SharedTarget>();
  if (!parsed->ParseFromString(stored)) return false;
  *shared = std::move(parsed);
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Sending side: one Peer per destination node.

class Forwarder::Peer final : public AckListener {
 public:
  Peer(Forwarder* f, std::string node_id, uint64_t first_seq)
      : f_(f), node_id_(std::move(node_id)), outbox_id_(OutboxId(node_id_)), next_seq_(first_seq) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Peer() { Stop(); }

  const std::string& outbox_id() const { return outbox_id_; }

  // Appends a message (for a shared group if `shared`); false when the outbox is full
  // (dropped). A durable entry is sent only once OnDurable(seq) says the batch holding it is
  // committed.
  // Flow control: while more than `hold_acks_above` entries wait for the peer, the
  // publisher's acknowledgement `ack` (if any) is held until the peer has this entry too, so a
  // publisher slows down to what the peer takes (its in-flight window fills) instead of filling
  // the outbox and the peer's queues.
  bool Add(const MessagePtr& message, SharedPtr shared, bool durable, const AckTokenPtr& ack,
           uint64_t* seq) ABSL_LOCKS_EXCLUDED(mu_) {
    const uint32_t bytes = EntryBytes(*message, shared);
    absl::MutexLock lock(&mu_);
    if (entries_.size() >= f_->options_.max_outbox_messages ||
        bytes_ + bytes > f_->options_.max_outbox_bytes) {
      ++dropped_;
      ++dropped_full_;
      LogDropLocked("outbox full");
      return false;
    }
    *seq = next_seq_++;
    const bool hold = ack != nullptr && entries_.size() >= f_->options_.hold_acks_above;
    entries_.push_back({*seq, message, std::move(shared), durable, /*committed=*/!durable, bytes,
                        hold ? ack : nullptr});
    bytes_ += bytes;
    durable_count_ += durable ? 1 : 0;
    held_acks_ += hold ? 1 : 0;
    return true;
  }

  // A durable entry read back from the store at start-up.
  void Restore(uint64_t seq, MessagePtr message, SharedPtr shared) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    const uint32_t bytes = EntryBytes(*message, shared);
    entries_.push_back({seq, std::move(message), std::move(shared), true, true, bytes, nullptr});
    bytes_ += bytes;
    ++durable_count_;
    next_seq_ = std::max(next_seq_, seq + 1);
  }

  // The publisher's batch holding entry `seq` is committed (AckListener; a worker thread).
  void OnDurable(uint64_t seq) override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    auto it = std::lower_bound(entries_.begin(), entries_.end(), seq,
                               [](const Entry& e, uint64_t s) { return e.seq < s; });
    if (it != entries_.end() && it->seq == seq) it->committed = true;
  }

  void Alive(const std::string& address) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (address_ != address && context_ != nullptr) context_->TryCancel();
    address_ = address;
    alive_ = true;
    kick_ = true;
  }

  // Declared dead (or left): its persistent sessions still wait for the durable entries; the
  // others are dropped, since the sessions they were for are gone with the node.
  void Dead() ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<AckTokenPtr> released;
    absl::MutexLock lock(&mu_);
    alive_ = false;
    if (context_ != nullptr) context_->TryCancel();
    // The durable entries are safe in the outbox: their publishers need not wait for the peer.
    for (Entry& e : entries_) TakeHeldAckLocked(e, &released);
    DropLocked([](const Entry& e) { return !e.durable; }, "declared dead");
  }

  // Removed from the cluster: nothing will ever take the entries.
  void Removed() ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<uint64_t> stored;
    {
      absl::MutexLock lock(&mu_);
      alive_ = false;
      address_.clear();
      if (context_ != nullptr) context_->TryCancel();
      for (const Entry& e : entries_) {
        if (e.durable) stored.push_back(e.seq);
      }
      DropLocked([](const Entry&) { return true; }, "removed from the cluster");
    }
    RemoveStored(stored);
  }

  void Stop() ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      if (context_ != nullptr) context_->TryCancel();
    }
    if (thread_.joinable()) thread_.join();
  }

  ForwardPeerStats Stats() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    ForwardPeerStats s;
    s.node_id = node_id_;
    s.address = address_;
    s.connected = connected_;
    s.queued = entries_.size();
    s.queued_bytes = bytes_;
    s.durable_queued = durable_count_;
    s.forwarded = forwarded_;
    s.dropped = dropped_;
    s.dropped_full = dropped_full_;
    s.held_acks = held_acks_;
    return s;
  }

 private:
  struct Entry {
    uint64_t seq;
    MessagePtr message;
    SharedPtr shared;
    bool durable;    // also in the store's outbox
    bool committed;  // may be sent
    uint32_t bytes;
    AckTokenPtr held_ack;  // the publisher's, held for flow control (see Add)
  };

  // Moves `e`'s held acknowledgement to `released`, to be let go after the lock.
  void TakeHeldAckLocked(Entry& e, std::vector<AckTokenPtr>* released)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (e.held_ack == nullptr) return;
    released->push_back(std::move(e.held_ack));
    --held_acks_;
  }
  struct Outgoing {
    uint64_t seq;
    bool durable;
    MessagePtr message;
    SharedPtr shared;
  };
  using Stream = grpc::ClientReaderWriter<v1::ForwardBatch, v1::ForwardAck>;

  bool SendableLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return sent_ < entries_.size() && entries_[sent_].committed &&
           sent_ < static_cast<size_t>(f_->options_.window_messages);
  }

  void Run() {
    absl::Duration backoff = f_->options_.min_reconnect;
    for (;;) {
      std::string address;
      {
        absl::MutexLock lock(&mu_);
        auto can_connect = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || (alive_ && !address_.empty());
        };
        mu_.Await(absl::Condition(&can_connect));
        if (stopping_) return;
        address = address_;
        kick_ = false;
      }
      const bool acknowledged = RunStream(address);
      f_->stubs_.ReleaseRetired();
      backoff = acknowledged ? f_->options_.min_reconnect
                             : std::min(backoff * 2, f_->options_.max_reconnect);
      absl::MutexLock lock(&mu_);
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || kick_; };
      mu_.AwaitWithTimeout(absl::Condition(&woken), backoff);
      if (stopping_) return;
    }
  }

  // One stream: re-sends every unacknowledged entry, then whatever comes. Returns whether the
  // peer acknowledged anything (a healthy connection: reconnect at once if it breaks).
  bool RunStream(const std::string& address) {
    std::shared_ptr<v1::Forwarding::Stub> stub = f_->stubs_.Get(address);
    grpc::ClientContext context;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return false;
      context_ = &context;
      sent_ = 0;
      broken_ = false;
      batches_in_flight_.clear();
    }
    std::unique_ptr<Stream> stream = stub->Stream(&context);
    std::atomic<bool> acknowledged{false};
    std::thread reader([&] {
      v1::ForwardAck ack;
      while (stream->Read(&ack)) {
        acknowledged = true;
        Acked(ack.done_upto());
      }
      absl::MutexLock lock(&mu_);
      broken_ = true;
    });
    bool first = true;
    std::vector<Outgoing> outgoing;
    v1::ForwardBatch batch;
    while (TakeBatch(&outgoing)) {
      batch.Clear();
      if (first) batch.set_origin(f_->options_.node_id);
      first = false;
      for (const Outgoing& o : outgoing) {
        v1::ForwardEntry* entry = batch.add_entries();
        entry->set_seq(o.seq);
        entry->set_durable(o.durable);
        *entry->mutable_message() = persist::ToStored(*o.message);
        if (o.shared) *entry->mutable_shared() = *o.shared;
      }
      if (!stream->Write(batch)) break;
    }
    context.TryCancel();
    reader.join();
    stream->Finish().IgnoreError();
    absl::MutexLock lock(&mu_);
    context_ = nullptr;
    connected_ = false;
    return acknowledged;
  }

  // Waits for entries to send; false when the stream must end.
  bool TakeBatch(std::vector<Outgoing>* out) ABSL_LOCKS_EXCLUDED(mu_) {
    out->clear();
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ || broken_ || !alive_ || SendableLocked();
    };
    mu_.Await(absl::Condition(&ready));
    if (stopping_ || broken_ || !alive_) return false;
    size_t bytes = 0;
    while (SendableLocked() && out->size() < static_cast<size_t>(f_->options_.max_batch_messages) &&
           bytes < f_->options_.max_batch_bytes) {
      const Entry& e = entries_[sent_++];
      out->push_back({e.seq, e.durable, e.message, e.shared});
      bytes += e.bytes;
    }
    if (!out->empty()) batches_in_flight_.push_back({out->back().seq, MonotonicNs()});
    return true;
  }

  void Acked(uint64_t done_upto) ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<uint64_t> stored;
    std::vector<AckTokenPtr> released;  // publishers' acknowledgements go after the lock
    {
      absl::MutexLock lock(&mu_);
      connected_ = true;
      const int64_t now_ns = MonotonicNs();
      while (!batches_in_flight_.empty() && batches_in_flight_.front().last_seq <= done_upto) {
        f_->forward_latency_.RecordConcurrent(now_ns - batches_in_flight_.front().sent_ns);
        batches_in_flight_.pop_front();
      }
      while (!entries_.empty() && entries_.front().seq <= done_upto) {
        Entry& e = entries_.front();
        TakeHeldAckLocked(e, &released);
        if (e.durable) {
          stored.push_back(e.seq);
          --durable_count_;
        }
        bytes_ -= e.bytes;
        ++forwarded_;
        entries_.pop_front();
        if (sent_ > 0) --sent_;
      }
    }
    RemoveStored(stored);
  }

  void RemoveStored(const std::vector<uint64_t>& seqs) {
    if (seqs.empty() || f_->store_ == nullptr) return;
    storage::Batch batch;
    for (uint64_t seq : seqs) batch.RemoveQueueEntry(outbox_id_, seq);
    if (absl::Status s = f_->store_->Write(std::move(batch)); !s.ok()) {
      // They are re-sent after a restart and dropped there as duplicates: nothing is lost.
      MQTT_LOG_WARN("cluster: cannot remove forwarded messages for %s from the outbox: %s",
                    node_id_, s.message());
    }
  }

  // Dropped entries let their held acknowledgements go (the publisher is not made to wait for
  // a peer that is gone); callers hold the lock, and the token only posts to the publisher.
  template <typename Pred>
  void DropLocked(Pred drop, const char* why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const size_t before = entries_.size();
    std::deque<Entry> kept;
    for (Entry& e : entries_) {
      if (drop(e)) {
        held_acks_ -= e.held_ack != nullptr ? 1 : 0;
        bytes_ -= e.bytes;
        durable_count_ -= e.durable ? 1 : 0;
      } else {
        kept.push_back(std::move(e));
      }
    }
    entries_.swap(kept);
    sent_ = 0;
    const size_t dropped = before - entries_.size();
    dropped_ += dropped;
    if (dropped > 0) {
      MQTT_LOG_WARN("cluster: dropped %d messages queued for %s: %s", dropped, node_id_, why);
    }
  }

  void LogDropLocked(const char* why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!drop_log_.Allow()) return;
    MQTT_LOG_WARN("cluster: dropping messages for %s: %s (%d queued, %d bytes; %d dropped so far)",
                  node_id_, why, entries_.size(), bytes_, dropped_);
  }

  Forwarder* const f_;
  const std::string node_id_;
  const std::string outbox_id_;

  mutable absl::Mutex mu_;
  std::deque<Entry> entries_ ABSL_GUARDED_BY(mu_);  // unacknowledged, by seq
  size_t sent_ ABSL_GUARDED_BY(mu_) = 0;            // entries_[0, sent_) are on the stream
  struct BatchSent {
    uint64_t last_seq;  // of its last entry: acknowledged when done_upto reaches it
    int64_t sent_ns;    // MonotonicNs when it was taken to be written
  };
  std::deque<BatchSent> batches_in_flight_ ABSL_GUARDED_BY(mu_);  // of the open stream, by seq
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_);
  uint64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t durable_count_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t forwarded_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_full_ ABSL_GUARDED_BY(mu_) = 0;  // of dropped_: outbox full
  uint64_t held_acks_ ABSL_GUARDED_BY(mu_) = 0;
  LogLimiter drop_log_{absl::Seconds(1)};  // LogDropLocked's line (thread-safe itself)
  std::string address_ ABSL_GUARDED_BY(mu_);
  bool alive_ ABSL_GUARDED_BY(mu_) = false;
  bool kick_ ABSL_GUARDED_BY(mu_) = false;  // connect now, not after the backoff
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;  // of the open stream
  std::thread thread_;
};

// ---------------------------------------------------------------------------------------------
// Receiving side: one Origin per source node, one Inbound per stream.

class Forwarder::Inbound final : public grpc::ServerBidiReactor<v1::ForwardBatch, v1::ForwardAck> {
 public:
  // Owns itself (self_) until OnDone; an Origin may hold it a little longer to send acks,
  // which it refuses once finished.
  static Inbound* Create(Forwarder* f) {
    auto inbound = std::shared_ptr<Inbound>(new Inbound(f));
    inbound->self_ = inbound;
    inbound->StartRead(&inbound->batch_);
    return inbound.get();
  }

  // Any thread, no lock of the caller held (a write may complete inline).
  void SendAck(uint64_t done_upto) ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      pending_ = std::max(pending_, done_upto);
      if (writing_) return;
      writing_ = true;
      ack_.set_done_upto(pending_);
    }
    StartWrite(&ack_);
  }

  void OnReadDone(bool ok) override;

  void OnWriteDone(bool ok) override {
    bool again = false;
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      if (ok && !reads_done_ && pending_ > ack_.done_upto()) {
        ack_.set_done_upto(pending_);
        again = true;
      } else {
        writing_ = false;
        finish = reads_done_ && !finished_;
        finished_ |= finish;
      }
    }
    if (again) StartWrite(&ack_);
    if (finish) Finish(end_status_);
  }

  void OnDone() override;

 private:
  explicit Inbound(Forwarder* f) : f_(f) {}

  void EndReads(grpc::Status status) {
    bool finish;
    {
      absl::MutexLock lock(&mu_);
      reads_done_ = true;
      end_status_ = std::move(status);
      finish = !writing_ && !finished_;
      finished_ |= finish;
    }
    if (finish) Finish(end_status_);
  }

  Forwarder* const f_;
  std::shared_ptr<Inbound> self_;
  std::shared_ptr<Origin> origin_;  // set by the first batch (reactor callbacks are serial)
  v1::ForwardBatch batch_;

  absl::Mutex mu_;
  v1::ForwardAck ack_ ABSL_GUARDED_BY(mu_);
  uint64_t pending_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status end_status_ ABSL_GUARDED_BY(mu_);
};

class Forwarder::Origin final : public AckListener, public std::enable_shared_from_this<Origin> {
 public:
  Origin(Forwarder* f, std::string node_id, ForwardedDelivery* local)
      : f_(f),
        node_id_(std::move(node_id)),
        progress_key_(ProgressKey(node_id_)),
        local_(local),
        worker_(static_cast<uint32_t>(std::hash<std::string>()(node_id_) % local->worker_count())) {
  }

  void Attach(std::shared_ptr<Inbound> stream) ABSL_LOCKS_EXCLUDED(mu_) {
    uint64_t done;
    {
      absl::MutexLock lock(&mu_);
      stream_ = stream;
      done = done_upto_;
    }
    if (done != 0) stream->SendAck(done);  // what a re-sending peer may forget at once
  }

  void Detach(Inbound* stream) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (stream_.get() == stream) stream_.reset();
  }

  // One batch of the origin's stream, in stream order: drops duplicates, then delivers the rest
  // on this origin's worker.
  void Apply(const v1::ForwardBatch& batch) ABSL_LOCKS_EXCLUDED(mu_) {
    auto items = std::make_shared<std::vector<Item>>();
    uint64_t last_durable = 0;
    absl::MutexLock lock(&mu_);
    if (!LoadLocked()) return;
    for (const v1::ForwardEntry& entry : batch.entries()) {
      if (entry.seq() <= applied_) {
        f_->duplicates_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      applied_ = entry.seq();
      pending_.push_back({entry.seq(), false});
      Item& item = items->emplace_back(
          Item{entry.seq(), entry.durable(), persist::FromStored(0, entry.message()), {}});
      if (entry.has_shared()) item.shared = entry.shared();
      if (entry.durable()) last_durable = entry.seq();
    }
    if (items->empty()) return;
    // Posted under the lock: batches reach the worker in stream order.
    local_->executor_of(worker_).Post(
        [self = shared_from_this(), items, last_durable] { self->Deliver(*items, last_durable); });
  }

  // An entry is stored (durable) or handed over (the others). Any thread.
  void OnDurable(uint64_t seq) override ABSL_LOCKS_EXCLUDED(mu_) {
    std::shared_ptr<Inbound> stream;
    uint64_t done;
    {
      absl::MutexLock lock(&mu_);
      auto it = std::lower_bound(pending_.begin(), pending_.end(), seq,
                                 [](const auto& p, uint64_t s) { return p.first < s; });
      if (it == pending_.end() || it->first != seq) return;
      it->second = true;
      const uint64_t before = done_upto_;
      while (!pending_.empty() && pending_.front().second) {
        done_upto_ = pending_.front().first;
        pending_.pop_front();
      }
      if (done_upto_ == before || stream_ == nullptr) return;
      stream = stream_;
      done = done_upto_;
    }
    stream->SendAck(done);
  }

 private:
  struct Item {
    uint64_t seq;
    bool durable;
    MessagePtr message;
    std::optional<v1::SharedTarget> shared;  // a copy for this group only
  };

  // On the origin's worker.
  void Deliver(const std::vector<Item>& items, uint64_t last_durable) {
    SessionStorage& storage = local_->storage_of(worker_);
    // In the batch that stores the messages: after a restart the duplicates are still known.
    if (last_durable != 0 && storage.store() != nullptr) {
      storage.batch()->PutProgress(progress_key_, last_durable);
    }
    for (const Item& item : items) {
      auto token = std::make_shared<AckToken>(nullptr, weak_from_this(), item.seq);
      if (item.durable) storage.HoldUntilCommitted(token);
      const AckTokenPtr ack = item.message->qos > 0 ? token : nullptr;
      if (!item.shared) {
        local_->DeliverForwarded(worker_, item.message, ack, nullptr);
        continue;
      }
      const std::vector<uint32_t> subscription_ids(item.shared->subscription_ids().begin(),
                                                   item.shared->subscription_ids().end());
      const SharedTarget shared{item.shared->group(), item.shared->filter(), item.shared->hops(),
                                item.shared->client_id(), &subscription_ids};
      local_->DeliverForwarded(worker_, item.message, ack, &shared);
    }
  }

  // The highest seq applied before this process, once. False on a storage error (the batch is
  // then not applied, and the peer re-sends it on its next stream).
  bool LoadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (loaded_) return true;
    if (f_->store_ != nullptr) {
      absl::StatusOr<uint64_t> stored = f_->store_->GetProgress(progress_key_);
      if (!stored.ok()) {
        MQTT_LOG_ERROR("cluster: cannot read forwarding progress of %s: %s", node_id_,
                       stored.status().message());
        return false;
      }
      applied_ = done_upto_ = *stored;
    }
    loaded_ = true;
    return true;
  }

  Forwarder* const f_;
  const std::string node_id_;
  const std::string progress_key_;
  ForwardedDelivery* const local_;
  const uint32_t worker_;

  absl::Mutex mu_;
  bool loaded_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t applied_ ABSL_GUARDED_BY(mu_) = 0;  // highest seq accepted
  uint64_t done_upto_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<std::pair<uint64_t, bool>> pending_ ABSL_GUARDED_BY(mu_);  // accepted, done?
  std::shared_ptr<Inbound> stream_ ABSL_GUARDED_BY(mu_);                // the latest stream
};

void Forwarder::Inbound::OnReadDone(bool ok) {
  if (!ok) return EndReads(grpc::Status::OK);
  if (origin_ == nullptr) {
    if (batch_.origin().empty()) {
      return EndReads(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   "the first forward batch must name its origin"));
    }
    origin_ = f_->OriginById(batch_.origin());
    origin_->Attach(self_);
  }
  origin_->Apply(batch_);
  StartRead(&batch_);
}

void Forwarder::Inbound::OnDone() {
  if (origin_ != nullptr) origin_->Detach(this);
  {
    absl::MutexLock lock(&mu_);
    finished_ = true;
  }
  self_.reset();  // may delete this
}

class Forwarder::Service final : public v1::Forwarding::CallbackService {
 public:
  explicit Service(Forwarder* f) : f_(f) {}

  grpc::ServerBidiReactor<v1::ForwardBatch, v1::ForwardAck>* Stream(
      grpc::CallbackServerContext*) override {
    if (f_->local_.load() == nullptr) return new Reject();
    return Inbound::Create(f_);
  }

 private:
  class Reject final : public grpc::ServerBidiReactor<v1::ForwardBatch, v1::ForwardAck> {
   public:
    Reject() { Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "forwarding not started yet")); }
    void OnDone() override { delete this; }
  };

  Forwarder* const f_;
};

// ---------------------------------------------------------------------------------------------

Forwarder::Forwarder(ForwarderOptions options, storage::Store* store, RouteTable* ids)
    : options_(std::move(options)),
      store_(store),
      ids_(ids),
      service_(std::make_unique<Service>(this)) {}

Forwarder::~Forwarder() { Stop(); }

grpc::Service* Forwarder::service() { return service_.get(); }

absl::Status Forwarder::Start(ForwardedDelivery* local) {
  if (absl::Status s = RecoverOutboxes(); !s.ok()) return s;
  local_ = local;
  return absl::OkStatus();
}

void Forwarder::Stop() {
  std::vector<std::shared_ptr<Peer>> peers;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    peers = peers_;
  }
  for (auto& peer : peers) {
    if (peer != nullptr) peer->Stop();
  }
  stubs_.ReleaseRetired();
}

uint64_t Forwarder::FirstSeq(uint64_t after_recovered) const {
  const uint64_t clock = static_cast<uint64_t>(absl::ToUnixMicros(absl::Now())) * 16;
  return std::max(clock, after_recovered);
}

std::shared_ptr<Forwarder::Peer> Forwarder::PeerByIndex(uint32_t index) {
  {
    absl::ReaderMutexLock lock(&mu_);
    if (index < peers_.size() && peers_[index] != nullptr) return peers_[index];
  }
  const std::string node_id = ids_->NodeIdOf(index);
  if (node_id.empty() || node_id == options_.node_id) return nullptr;
  absl::MutexLock lock(&mu_);
  if (index >= peers_.size()) peers_.resize(index + 1);
  if (peers_[index] == nullptr) {
    peers_[index] = std::make_shared<Peer>(this, node_id, FirstSeq(0));
    if (stopped_) peers_[index]->Stop();
    if (auto it = addresses_.find(node_id); it != addresses_.end()) {
      peers_[index]->Alive(it->second);
    }
  }
  return peers_[index];
}

std::shared_ptr<Forwarder::Peer> Forwarder::PeerById(const std::string& node_id) {
  if (node_id == options_.node_id) return nullptr;
  return PeerByIndex(ids_->NodeIndex(node_id));
}

std::shared_ptr<Forwarder::Origin> Forwarder::OriginById(const std::string& node_id) {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<Origin>& origin = origins_[node_id];
  if (origin == nullptr) origin = std::make_shared<Origin>(this, node_id, local_.load());
  return origin;
}

absl::Status Forwarder::RecoverOutboxes() {
  if (store_ == nullptr) return absl::OkStatus();
  size_t recovered = 0;
  for (const std::string& owner : store_->QueueOwners(kOutboxPrefix)) {
    const std::string node_id = owner.substr(kOutboxPrefix.size());
    std::shared_ptr<Peer> peer = PeerById(node_id);
    if (peer == nullptr) continue;
    uint64_t after = 0;
    for (;;) {
      absl::StatusOr<storage::QueuePage> page = store_->ReadQueue(owner, after, 1024, UnixMs());
      if (!page.ok()) return page.status();
      for (storage::QueuedMessage& queued : page->messages) {
        SharedPtr shared;
        if (!RestoredShared(queued.entry.target_client_id(), &shared)) {
          MQTT_LOG_ERROR("cluster: outbox entry %d for %s: unreadable shared group, not re-sent",
                         queued.seq, node_id);
          continue;
        }
        peer->Restore(queued.seq, persist::FromStored(queued.entry.message_id(), queued.message),
                      std::move(shared));
        ++recovered;
      }
      after = page->last_seq;
      if (page->end) break;
    }
  }
  if (recovered > 0) MQTT_LOG_INFO("cluster: %d forwarded messages to re-send", recovered);
  return absl::OkStatus();
}

void Forwarder::OnMemberChange(const MemberInfo& member, MemberChange change) {
  if (member.node_id == options_.node_id) return;
  if (change == MemberChange::kJoined || change == MemberChange::kAlive) {
    absl::MutexLock lock(&mu_);
    addresses_[member.node_id] = member.address;
  }
  std::shared_ptr<Peer> peer = PeerById(member.node_id);
  if (peer == nullptr) return;
  switch (change) {
    case MemberChange::kJoined:
    case MemberChange::kAlive:
      peer->Alive(member.address);
      break;
    case MemberChange::kDead:
    case MemberChange::kLeft:
      peer->Dead();
      break;
    case MemberChange::kRemoved:
      peer->Removed();
      break;
    case MemberChange::kSuspect:
      break;
  }
}

void Forwarder::Forward(SessionStorage& from, uint32_t node, bool durable,
                        const MessagePtr& message, const AckTokenPtr& ack,
                        const SharedTarget* shared) {
  std::shared_ptr<Peer> peer = PeerByIndex(node);
  if (peer == nullptr) return;
  SharedPtr share;
  if (shared != nullptr) {
    auto s = std::make_shared<v1::SharedTarget>();
    s->set_group(std::string(shared->group));
    s->set_filter(std::string(shared->filter));
    s->set_hops(shared->hops);
    s->set_client_id(std::string(shared->client_id));
    if (shared->subscription_ids != nullptr) {
      s->mutable_subscription_ids()->Add(shared->subscription_ids->begin(),
                                         shared->subscription_ids->end());
    }
    share = std::move(s);
  }
  const bool persist = durable && message->qos > 0 && from.store() != nullptr;
  uint64_t seq = 0;
  if (!peer->Add(message, share, persist, ack, &seq) || !persist) return;
  storage::v1::QueueEntry entry;
  entry.set_message_id(from.PutMessage(*message));
  entry.set_qos(message->qos);
  entry.set_retain(message->retain);
  entry.set_target_client_id(StoredShared(share));
  from.batch()->AddQueueEntry(peer->outbox_id(), seq, entry);
  from.HoldUntilCommitted(ack);
  // Told when the batch is committed: only then may the entry leave this node.
  from.HoldUntilCommitted(std::make_shared<AckToken>(nullptr, std::weak_ptr<Peer>(peer), seq));
}

std::vector<ForwardPeerStats> Forwarder::Stats() const {
  std::vector<std::shared_ptr<Peer>> peers;
  {
    absl::ReaderMutexLock lock(&mu_);
    peers = peers_;
  }
  std::vector<ForwardPeerStats> stats;
  for (const auto& peer : peers) {
    if (peer != nullptr) stats.push_back(peer->Stats());
  }
  return stats;
}

}  // namespace mqtt::cluster
