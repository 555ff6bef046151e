// SPDX-License-Identifier: Apache-2.0
#include "node/session/session.h"

#include <algorithm>
#include <limits>

#include "node/base/latency_histogram.h"
#include "node/base/log.h"
#include "node/persist/convert.h"

namespace mqtt {
namespace {

// Queue entries read from disk per page when an offline session comes back.
constexpr size_t kQueuePage = 64;

storage::v1::InflightRecord::Stage ToRecordStage(uint8_t stage) {
  using R = storage::v1::InflightRecord;
  static constexpr R::Stage kStages[] = {R::STAGE_AWAIT_PUBACK, R::STAGE_AWAIT_PUBREC,
                                         R::STAGE_AWAIT_PUBCOMP};
  return kStages[stage];
}

}  // namespace

MessagePtr WillMessage(Will will, std::string_view client_id) {
  auto message = std::make_shared<Message>();
  message->topic = std::move(will.topic);
  message->payload = std::move(will.payload);
  message->qos = will.qos;
  message->retain = will.retain;
  message->publisher_id = std::string(client_id);
  message->origin = NewOriginId();  // cheap; lets a moved session drop a will's second copy
  will.properties.will_delay_interval.reset();
  if (will.properties.message_expiry_interval) {
    message->expires_at_ms =
        MonotonicMs() + int64_t{*will.properties.message_expiry_interval} * 1000;
  }
  if (will.properties != Properties{}) {
    message->properties = std::make_shared<const Properties>(std::move(will.properties));
  }
  return message;
}

void Session::Attach(SessionClient* client, uint16_t receive_maximum) {
  const GaugeReport report{this};
  client_ = client;
  if (extras_ != nullptr) {
    SetExpiresAt(0);
    extras_->oldest_stored.reset();
    if (extras_->online) extras_->online->store(true, std::memory_order_relaxed);
  }
  send_window_ = std::min<uint32_t>(limits_.max_inflight, receive_maximum);
  for (Inflight& entry : inflight_) entry.resend = true;
  ResendInflight();
  DrainQueue();
}

// Re-sends, in their original order, the exchanges a resumed session had in flight
// [MQTT-4.4.0-1], as many as the client's window takes [MQTT-3.3.4-9] (a 5.0 client may resume
// with a smaller Receive Maximum than the session had): the rest go as acknowledgements free
// the window, before anything new. A message the new connection cannot take (its 5.0 Maximum
// Packet Size is smaller) is discarded as if sent and acknowledged [MQTT-3.1.2-25], so it does
// not hold the window. The acknowledgement latency of a resent message counts from the resend.
void Session::ResendInflight() {
  if (client_ == nullptr || inflight_.empty() || !inflight_.back().resend) return;
  size_t open = 0;
  for (const Inflight& entry : inflight_) open += entry.resend ? 0 : 1;
  const int64_t now_ns = MonotonicNs();
  std::erase_if(inflight_, [&](Inflight& entry) {
    if (!entry.resend || open >= send_window_) return false;
    entry.resend = false;
    entry.sent_ns = now_ns;
    if (entry.stage == Stage::kAwaitPubcomp) {
      client_->SendPubrel(entry.packet_id);
      ++open;
      return false;
    }
    const SendResult sent = client_->SendPublish(entry.out, /*dup=*/true, entry.packet_id);
    if (sent == SendResult::kSent) {
      ++open;
      return false;
    }
    DroppedBySend(sent);
    Unstore(entry);
    return true;
  });
}

// Every connection has a session: one more jemalloc size class (224 B) would cost each idle
// connection 32 bytes (docs/performance.md, idle memory).
static_assert(sizeof(Session) <= 192, "Session outgrew its 192-byte size class");

// The storage outlives its sessions (Shard declares its totals before its sessions).
Session::~Session() {
  SessionTotals* totals = storage_->totals();
  totals->queued -= reported_queued_;
  totals->inflight -= reported_inflight_;
}

void Session::ReportGauges() {
  const auto queued = static_cast<uint32_t>(
      std::min<uint64_t>(queued_count() + disk_queued_, std::numeric_limits<uint32_t>::max()));
  const auto inflight = static_cast<uint16_t>(
      std::min<size_t>(inflight_.size(), std::numeric_limits<uint16_t>::max()));
  if (queued == reported_queued_ && inflight == reported_inflight_) return;  // most deliveries
  SessionTotals* totals = storage_->totals();
  totals->queued += int64_t{queued} - int64_t{reported_queued_};
  totals->inflight += int64_t{inflight} - int64_t{reported_inflight_};
  reported_queued_ = queued;
  reported_inflight_ = inflight;
}

void Session::SetExpiresAt(int64_t at_ms) {
  const int64_t old_ms = expires_at_ms();
  if (at_ms == old_ms) return;
  extras().expires_at_ms = at_ms;
  storage_->ExpiryChanged(id_, old_ms, at_ms);
}

void Session::Detach(const Redistribute& redistribute) {
  const GaugeReport report{this};
  client_ = nullptr;
  if (extras_ != nullptr && extras_->online) {
    extras_->online->store(false, std::memory_order_relaxed);
  }
  if (expiry_interval_ != 0 && expiry_interval_ != kSessionNeverExpires) {
    SetExpiresAt(MonotonicMs() + int64_t{expiry_interval_} * 1000);
  }
  if (redistribute) {
    // The callback may deliver to other sessions of this worker, never to this one, so erasing
    // while iterating is safe.
    std::erase_if(inflight_, [&](const Inflight& entry) {
      if (entry.out.shared_group == 0 || entry.stage != Stage::kAwaitPuback ||
          !redistribute(entry.out, id_)) {
        return false;
      }
      Unstore(entry);
      return true;
    });
    if (!queue_empty()) {
      std::erase_if(*queue_, [&](const OutboundMessage& out) {
        if (out.shared_group == 0 || out.qos == 0 || !redistribute(out, id_)) return false;
        if (out.seq != 0 && persistent()) storage_->batch()->RemoveQueueEntry(client_id_, out.seq);
        queued_bytes_ -= std::min(queued_bytes_, QueuedBytes(out));
        return true;
      });
    }
  }
  // A persistent session's queue lives on disk while it is offline: drop the copies in memory
  // (re-read from the first entry when a client comes back).
  if (persistent() && !queue_empty()) {
    for (const OutboundMessage& out : *queue_) {
      if (out.seq != 0) {
        ++disk_queued_;
      } else {
        queued_bytes_ -= std::min(queued_bytes_, QueuedBytes(out));  // QoS 0, dropped
      }
    }
    queue_.reset();
    if (extras_ != nullptr) extras_->disk_read_after = 0;
  }
  if (extras_ != nullptr) extras_->oldest_stored.reset();
}

std::shared_ptr<const std::string> Session::durable_client_id() {
  if (!persistent()) return nullptr;
  std::shared_ptr<const std::string>& id = extras().durable_client_id;
  if (id == nullptr) id = std::make_shared<std::string>(client_id_);
  return id;
}

void Session::AppendRecovered(uint64_t message_id, const storage::v1::MessageRecord& message,
                              storage::v1::QueueEntry entry) {
  const GaugeReport report{this};
  entry.clear_target_client_id();
  storage::Batch* batch = storage_->batch();
  batch->PutMessage(message_id, message);
  batch->AddQueueEntry(client_id_, next_seq_++, entry);
  ++disk_queued_;
}

std::shared_ptr<const std::atomic<bool>> Session::online_flag() {
  std::shared_ptr<std::atomic<bool>>& online = extras().online;
  if (online == nullptr) online = std::make_shared<std::atomic<bool>>(client_ != nullptr);
  return online;
}

uint64_t Session::QueuedBytes(const OutboundMessage& out) {
  return out.message->topic.size() + out.message->payload.size();
}

bool Session::Expired(const OutboundMessage& out) const {
  return out.message->expires_at_ms != 0 && out.message->expires_at_ms <= MonotonicMs();
}

bool Session::CanSendNow(uint8_t qos) const {
  if (client_ == nullptr || !queue_empty() || disk_queued_ > 0) return false;
  return qos == 0 || inflight_.size() < send_window_;
}

void Session::WatchDuplicates(int64_t until_ms, size_t max_ids) {
  extras().duplicates = std::make_unique<DuplicateWatch>();
  extras_->duplicates->until_ms = until_ms;
  extras_->duplicates->max_ids = max_ids;
}

bool Session::SeenBefore(const Message& message) {
  if (message.origin.empty()) return false;
  if (MonotonicMs() > extras_->duplicates->until_ms) {
    extras_->duplicates.reset();
    return false;
  }
  DuplicateWatch& watch = *extras_->duplicates;
  if (!watch.seen.insert(message.origin).second) return true;
  watch.order.push_back(message.origin);
  if (watch.order.size() > watch.max_ids) {
    watch.seen.erase(watch.order.front());
    watch.order.pop_front();
  }
  return false;
}

void Session::Deliver(OutboundMessage&& out) {
  const GaugeReport report{this};
  if (extras_ != nullptr && extras_->duplicates != nullptr && SeenBefore(*out.message)) return;
  const bool offline = client_ == nullptr;
  // QoS 0 waits for an offline session only when configured, and then on disk.
  if (out.qos == 0 && offline && !(limits_.queue_qos0_offline && persistent())) return;
  const bool durable = persistent() && (out.qos > 0 || offline);
  const uint64_t bytes = QueuedBytes(out);
  // Room is made before the acknowledgement is held: dropping a stored oldest entry may commit
  // this turn's batch, which must not release this message's acknowledgement before it is stored.
  const bool dropped =
      !CanSendNow(out.qos) && QueueFull(bytes) && !(limits_.drop_oldest && DropOldestFor(bytes));
  // The publisher's acknowledgement waits for this turn's batch only if something is stored.
  if (durable) storage_->HoldUntilCommitted(std::move(out.ack));
  out.ack.reset();
  if (dropped) {
    Dropped(DropReason::kQueueFull);  // the newest: what is queued keeps its order
    return;
  }
  if (CanSendNow(out.qos)) {
    SendNow(std::move(out));
    return;
  }
  queued_bytes_ += bytes;
  if (durable) {
    out.seq = next_seq_++;
    StoreQueued(out);
    if (client_ == nullptr || disk_queued_ > 0) {
      ++disk_queued_;  // on disk only, read back in order when the client is there
      return;
    }
  }
  if (queue_ == nullptr) queue_ = std::make_unique<std::deque<OutboundMessage>>();
  queue_->push_back(std::move(out));
}

bool Session::QueueFull(uint64_t bytes) const {
  return queued_count() + disk_queued_ >= limits_.max_queued_messages ||
         (limits_.max_queued_bytes != 0 && queued_bytes_ + bytes > limits_.max_queued_bytes);
}

bool Session::DropOldestFor(uint64_t bytes) {
  if (limits_.max_queued_bytes != 0 && bytes > limits_.max_queued_bytes) return false;
  while (QueueFull(bytes)) {
    if (!queue_empty()) {  // what is in memory is older than what is only on disk
      const OutboundMessage& oldest = queue_->front();
      if (oldest.seq != 0 && persistent()) {
        storage_->batch()->RemoveQueueEntry(client_id_, oldest.seq);
      }
      queued_bytes_ -= std::min(queued_bytes_, QueuedBytes(oldest));
      queue_->pop_front();
    } else if (disk_queued_ == 0 || !DropOldestStored()) {
      return false;
    }
    Dropped(DropReason::kQueueFull);
  }
  return true;
}

// The oldest entry on disk (queue_ is empty), from Extras::oldest_stored, refilled by a read of the
// next page once this turn's batch is written (the read must see what this session stored and
// removed). Its removal goes into the batch that will hold the new entry.
bool Session::DropOldestStored() {
  std::unique_ptr<std::deque<std::pair<uint64_t, uint64_t>>>& oldest_stored =
      extras().oldest_stored;
  if (oldest_stored == nullptr || oldest_stored->empty()) {
    storage::Store* store = storage_->store();
    if (store == nullptr || !persistent() || !storage_->CommitNow()) return false;
    absl::StatusOr<storage::QueuePage> page =
        store->ReadQueue(client_id_, extras_->disk_read_after, kQueuePage, UnixMs());
    if (!page.ok()) {
      storage_->StorageFailed(page.status());
      return false;
    }
    for (uint32_t i = 0; i < page->expired; ++i) Dropped(DropReason::kExpired);
    disk_queued_ -= std::min<uint64_t>(disk_queued_, page->expired + page->missing);
    if (oldest_stored == nullptr) {
      oldest_stored = std::make_unique<std::deque<std::pair<uint64_t, uint64_t>>>();
    }
    for (const storage::QueuedMessage& queued : page->messages) {
      oldest_stored->emplace_back(queued.seq, queued.entry.message_bytes());
    }
    if (oldest_stored->empty()) {
      disk_queued_ = 0;  // the count is advisory: the store says the queue is empty
      return false;
    }
  }
  const auto [seq, bytes] = oldest_stored->front();
  oldest_stored->pop_front();
  storage_->batch()->RemoveQueueEntry(client_id_, seq);
  disk_queued_ -= std::min<uint64_t>(disk_queued_, 1);
  queued_bytes_ -= std::min(queued_bytes_, bytes);
  return true;
}

void Session::Dropped(DropReason reason) {
  Extras& extras = this->extras();
  ++extras.dropped;
  storage_->CountDrop(reason);
  // The first drop of each minute is logged: a slow subscriber is visible without flooding.
  const int64_t now = MonotonicMs();
  if (extras.drop_logged_ms != 0 && now - extras.drop_logged_ms < 60'000) return;
  extras.drop_logged_ms = now;
  MQTT_LOG_WARN(
      "client %s: message dropped (%s; queue %d messages, %d bytes; %d dropped by this session "
      "so far, more drops this minute are counted, not logged)",
      client_id_, DropReasonName(reason), queued_count() + disk_queued_, queued_bytes_,
      extras.dropped);
}

void Session::DroppedBySend(SendResult result) {
  if (result == SendResult::kSent) return;
  Dropped(result == SendResult::kTooLarge ? DropReason::kTooLarge : DropReason::kAcl);
}

void Session::SendNow(OutboundMessage&& out) {
  if (Expired(out)) {
    Dropped(DropReason::kExpired);
    if (out.seq != 0 && persistent()) storage_->batch()->RemoveQueueEntry(client_id_, out.seq);
    return;
  }
  if (out.qos == 0) {
    if (out.seq != 0 && persistent()) storage_->batch()->RemoveQueueEntry(client_id_, out.seq);
    // A client that does not read its socket loses QoS 0 messages rather than growing memory.
    if (client_->unsent_bytes() > limits_.max_outbound_buffer) {
      Dropped(DropReason::kOutboundBuffer);
    } else {
      DroppedBySend(client_->SendPublish(out, false, 0));
    }
    return;
  }
  uint16_t packet_id = NextPacketId();
  if (const SendResult sent = client_->SendPublish(out, false, packet_id);
      sent != SendResult::kSent) {
    DroppedBySend(sent);  // too large for the client, or denied: dropped for this client only
    if (out.seq != 0 && persistent()) storage_->batch()->RemoveQueueEntry(client_id_, out.seq);
    return;
  }
  if (persistent()) {
    // The in-flight record takes the place of the queue entry, in the same batch.
    if (out.seq != 0) {
      storage_->batch()->RemoveQueueEntry(client_id_, out.seq);
    } else {
      out.seq = next_seq_++;
    }
  }
  Stage stage = out.qos == 1 ? Stage::kAwaitPuback : Stage::kAwaitPubrec;
  inflight_.push_back({packet_id, stage, std::move(out), MonotonicNs()});
  if (persistent()) StoreInflight(inflight_.back());
}

void Session::DrainQueue() {
  while (client_ != nullptr) {
    if (queue_empty() && (disk_queued_ == 0 || !LoadQueuePage())) break;
    if (queue_->front().qos > 0 && inflight_.size() >= send_window_) return;
    OutboundMessage next = std::move(queue_->front());
    queue_->pop_front();
    queued_bytes_ -= std::min(queued_bytes_, QueuedBytes(next));
    SendNow(std::move(next));
  }
  if (queue_ != nullptr && queue_->empty()) queue_.reset();
  // Entries skipped on disk (expired) are never popped: an empty queue is the true zero.
  if (queue_empty() && disk_queued_ == 0) queued_bytes_ = 0;
}

// Reads the next page of the on-disk queue into queue_. The turn's batch is written first, so
// the read sees every entry this session stored. Returns false when nothing was read.
bool Session::LoadQueuePage() {
  storage::Store* store = storage_->store();
  if (extras_ != nullptr) extras_->oldest_stored.reset();
  if (store == nullptr || !storage_->CommitNow()) return false;
  while (disk_queued_ > 0 && queue_empty()) {
    const uint64_t after = extras_ ? extras_->disk_read_after : 0;
    absl::StatusOr<storage::QueuePage> page =
        store->ReadQueue(client_id_, after, kQueuePage, UnixMs());
    if (!page.ok()) {
      storage_->StorageFailed(page.status());
      return false;
    }
    AppendQueuePage(*page);
  }
  return !queue_empty();
}

void Session::AppendQueuePage(storage::QueuePage& page_ref) {
  storage::QueuePage* page = &page_ref;
  if (page->last_seq != 0 || extras_ != nullptr) extras().disk_read_after = page->last_seq;
  for (uint32_t i = 0; i < page->expired; ++i) Dropped(DropReason::kExpired);
  for (storage::QueuedMessage& queued : page->messages) {
    if (queue_ == nullptr) queue_ = std::make_unique<std::deque<OutboundMessage>>();
    OutboundMessage out{persist::FromStored(queued.entry.message_id(), queued.message),
                        static_cast<uint8_t>(queued.entry.qos()),
                        queued.entry.retain(),
                        0,
                        {},
                        queued.seq,
                        nullptr};
    out.subscription_ids.assign(queued.entry.subscription_identifiers().begin(),
                                queued.entry.subscription_identifiers().end());
    queue_->push_back(std::move(out));
  }
  uint64_t consumed = page->messages.size() + page->expired + page->missing;
  // The count is advisory (it is rebuilt from the store at start-up): the end of the queue on
  // disk is what ends the backlog.
  bool stuck = consumed == 0;
  disk_queued_ = page->end || stuck ? 0 : disk_queued_ - std::min(disk_queued_, consumed);
}

void Session::StoreQueued(const OutboundMessage& out) {
  uint64_t message_id = storage_->PutMessage(*out.message);
  storage::v1::QueueEntry entry;
  entry.set_message_id(message_id);
  entry.set_qos(out.qos);
  entry.set_retain(out.retain);
  for (uint32_t id : out.subscription_ids) entry.add_subscription_identifiers(id);
  storage_->batch()->AddQueueEntry(client_id_, out.seq, entry);
}

void Session::StoreInflight(const Inflight& entry) {
  storage::v1::InflightRecord record;
  record.set_packet_id(entry.packet_id);
  record.set_stage(ToRecordStage(static_cast<uint8_t>(entry.stage)));
  record.set_qos(entry.out.qos);
  record.set_retain(entry.out.retain);
  if (entry.out.message != nullptr) record.set_message_id(storage_->PutMessage(*entry.out.message));
  for (uint32_t id : entry.out.subscription_ids) record.add_subscription_identifiers(id);
  storage_->batch()->PutInflight(client_id_, entry.out.seq, record);
}

void Session::Unstore(const Inflight& entry) {
  if (entry.out.seq != 0 && persistent())
    storage_->batch()->RemoveInflight(client_id_, entry.out.seq);
}

// Ids increase and wrap, skipping 0 and ids still in flight; the inflight window is small, so
// the scan is short.
uint16_t Session::NextPacketId() {
  for (;;) {
    if (++last_packet_id_ == 0) last_packet_id_ = 1;
    if (FindInflight(last_packet_id_) == inflight_.end()) return last_packet_id_;
  }
}

// Acknowledgements usually arrive in send order, so the match is almost always at the front.
std::vector<Session::Inflight>::iterator Session::FindInflight(uint16_t packet_id) {
  return std::find_if(inflight_.begin(), inflight_.end(),
                      [packet_id](const Inflight& e) { return e.packet_id == packet_id; });
}

bool Session::OnPuback(uint16_t packet_id, int64_t* sent_ns) {
  const GaugeReport report{this};
  auto it = FindInflight(packet_id);
  if (it == inflight_.end() || it->stage != Stage::kAwaitPuback) return false;
  if (sent_ns != nullptr) *sent_ns = it->sent_ns;
  Unstore(*it);
  inflight_.erase(it);
  ResendInflight();
  DrainQueue();
  return true;
}

bool Session::OnPubrec(uint16_t packet_id) {
  const GaugeReport report{this};
  auto it = FindInflight(packet_id);
  if (it == inflight_.end() || it->stage == Stage::kAwaitPuback) return false;
  it->stage = Stage::kAwaitPubcomp;
  it->out.message.reset();
  it->out.subscription_ids.clear();
  if (it->out.seq != 0 && persistent()) StoreInflight(*it);
  if (client_ != nullptr) client_->SendPubrel(packet_id);
  return true;
}

bool Session::OnPubrecError(uint16_t packet_id) {
  const GaugeReport report{this};
  auto it = FindInflight(packet_id);
  if (it == inflight_.end() || it->stage == Stage::kAwaitPuback) return false;
  Unstore(*it);
  inflight_.erase(it);
  ResendInflight();
  DrainQueue();
  return true;
}

bool Session::OnPubcomp(uint16_t packet_id, int64_t* sent_ns) {
  const GaugeReport report{this};
  auto it = FindInflight(packet_id);
  if (it == inflight_.end() || it->stage != Stage::kAwaitPubcomp) return false;
  if (sent_ns != nullptr) *sent_ns = it->sent_ns;
  Unstore(*it);
  inflight_.erase(it);
  ResendInflight();
  DrainQueue();
  return true;
}

void Session::AddInboundQos2(uint16_t packet_id) {
  extras().inbound_qos2.insert(packet_id);
  if (persistent()) storage_->batch()->AddInboundQos2(client_id_, packet_id);
}

bool Session::ReleaseInboundQos2(uint16_t packet_id) {
  if (extras_ == nullptr || extras_->inbound_qos2.erase(packet_id) == 0) return false;
  if (persistent()) storage_->batch()->RemoveInboundQos2(client_id_, packet_id);
  return true;
}

void Session::SaveRecord(const Will* will) {
  if (!persistent()) {
    // A session that stopped being persistent (5.0 DISCONNECT with expiry 0) leaves no trace.
    Forget();
    return;
  }
  storage::v1::SessionRecord record;
  record.set_client_id(client_id_);
  record.set_protocol_version(persist::ToRecord(version_));
  record.set_session_expiry_interval_seconds(expiry_interval_);
  for (const auto& [filter, options] : subscriptions_) {
    storage::v1::Subscription* sub = record.add_subscriptions();
    sub->set_topic_filter(filter);
    sub->set_qos(options.qos);
    sub->set_no_local(options.no_local);
    sub->set_retain_as_published(options.retain_as_published);
    sub->set_retain_handling(options.retain_handling);
    sub->set_subscription_id(options.subscription_id);
  }
  if (expiry_interval_ == kSessionNeverExpires) {
    record.set_never_expires(true);
  } else if (client_ == nullptr) {
    const int64_t at_ms = expires_at_ms();
    int64_t left_ms =
        at_ms != 0 ? std::max<int64_t>(at_ms - MonotonicMs(), 0) : int64_t{expiry_interval_} * 1000;
    record.set_expires_at_unix_ms(UnixMs() + static_cast<uint64_t>(left_ms));
  }
  if (will != nullptr) *record.mutable_will() = persist::ToRecord(*will);
  record.set_last_seen_unix_ms(UnixMs());
  storage_->batch()->PutSession(record);
  stored_ = true;
}

void Session::Forget() {
  if (stored_ && storage_->store() != nullptr) storage_->batch()->DeleteSession(client_id_);
  stored_ = false;
}

void Session::Restore(const storage::SessionState& state) {
  const GaugeReport report{this};
  const storage::v1::SessionRecord& record = state.record;
  stored_ = true;
  version_ = persist::FromRecord(record.protocol_version());
  expiry_interval_ = record.session_expiry_interval_seconds();
  if (std::optional<uint64_t> at = storage::SessionExpiresAt(record)) {
    int64_t left_ms = static_cast<int64_t>(*at) - static_cast<int64_t>(UnixMs());
    SetExpiresAt(MonotonicMs() + std::max<int64_t>(left_ms, 0));
  }
  for (const storage::v1::Subscription& sub : record.subscriptions()) {
    subscriptions_[sub.topic_filter()] = SubscriptionOptions{
        static_cast<uint8_t>(sub.qos()), sub.no_local(), sub.retain_as_published(),
        static_cast<uint8_t>(sub.retain_handling()), sub.subscription_id()};
  }
  for (const storage::InflightEntry& stored : state.inflight) {
    const storage::v1::InflightRecord& r = stored.record;
    Inflight entry{
        static_cast<uint16_t>(r.packet_id()), static_cast<Stage>(static_cast<int>(r.stage()) - 1),
        OutboundMessage{
            nullptr, static_cast<uint8_t>(r.qos()), r.retain(), 0, {}, stored.seq, nullptr}};
    if (stored.message) {
      entry.out.message = persist::FromStored(r.message_id(), *stored.message);
    } else if (entry.stage != Stage::kAwaitPubcomp) {
      continue;  // its message is gone: nothing to resend
    }
    entry.out.subscription_ids.assign(r.subscription_identifiers().begin(),
                                      r.subscription_identifiers().end());
    last_packet_id_ = std::max(last_packet_id_, entry.packet_id);
    inflight_.push_back(std::move(entry));
  }
  for (uint16_t packet_id : state.inbound_qos2) extras().inbound_qos2.insert(packet_id);
  next_seq_ = state.next_seq;
  disk_queued_ = state.queue.count;
  queued_bytes_ = state.queue.bytes;  // record sizes: close to topic + payload
}

}  // namespace mqtt
