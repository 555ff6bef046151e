#include "node/session/session.h"

#include <algorithm>

#include "node/session/client.h"

namespace mqtt {

void Session::Attach(Client* client, uint16_t receive_maximum) {
  client_ = client;
  expires_at_ms_ = 0;
  if (online_) online_->store(true, std::memory_order_relaxed);
  send_window_ = std::min<uint32_t>(limits_.max_inflight, receive_maximum);
  for (Inflight& entry : inflight_) {
    if (entry.stage == Stage::kAwaitPubcomp) {
      client_->SendPubrel(entry.packet_id);
    } else {
      client_->SendPublish(entry.out, /*dup=*/true, entry.packet_id);
    }
  }
  DrainQueue();
}

void Session::Detach(const Redistribute& redistribute) {
  client_ = nullptr;
  if (online_) online_->store(false, std::memory_order_relaxed);
  if (expiry_interval_ != 0 && expiry_interval_ != kSessionNeverExpires) {
    expires_at_ms_ = MonotonicMs() + int64_t{expiry_interval_} * 1000;
  }
  if (!redistribute) return;
  // The callback may deliver to other sessions of this worker, never to this one, so erasing
  // while iterating is safe.
  std::erase_if(inflight_, [&](const Inflight& entry) {
    return entry.out.shared_group != 0 && entry.stage == Stage::kAwaitPuback &&
           redistribute(entry.out, id_);
  });
  if (queue_empty()) return;
  std::erase_if(*queue_, [&](const OutboundMessage& out) {
    return out.shared_group != 0 && out.qos > 0 && redistribute(out, id_);
  });
}

std::shared_ptr<const std::atomic<bool>> Session::online_flag() {
  if (online_ == nullptr) online_ = std::make_shared<std::atomic<bool>>(client_ != nullptr);
  return online_;
}

bool Session::Expired(const OutboundMessage& out) const {
  return out.message->expires_at_ms != 0 && out.message->expires_at_ms <= MonotonicMs();
}

bool Session::CanSendNow(uint8_t qos) const {
  if (client_ == nullptr || !queue_empty()) return false;
  return qos == 0 || inflight_.size() < send_window_;
}

void Session::Deliver(OutboundMessage&& out) {
  if (CanSendNow(out.qos)) {
    SendNow(std::move(out));
    return;
  }
  if (out.qos == 0 && client_ == nullptr) return;  // QoS 0 is not kept for offline sessions
  if (queued_count() >= limits_.max_queued_messages) {
    ++dropped_;
    return;
  }
  if (queue_ == nullptr) queue_ = std::make_unique<std::deque<OutboundMessage>>();
  queue_->push_back(std::move(out));
}

void Session::SendNow(OutboundMessage&& out) {
  if (Expired(out)) {
    ++dropped_;
    return;
  }
  if (out.qos == 0) {
    // A client that does not read its socket loses QoS 0 messages rather than growing memory.
    if (client_->unsent_bytes() > limits_.max_outbound_buffer ||
        !client_->SendPublish(out, false, 0)) {
      ++dropped_;
    }
    return;
  }
  uint16_t packet_id = NextPacketId();
  if (!client_->SendPublish(out, false, packet_id)) {
    ++dropped_;  // larger than the client's Maximum Packet Size: dropped for this client only
    return;
  }
  Stage stage = out.qos == 1 ? Stage::kAwaitPuback : Stage::kAwaitPubrec;
  inflight_.push_back({packet_id, stage, std::move(out)});
}

void Session::DrainQueue() {
  while (client_ != nullptr && !queue_empty()) {
    if (queue_->front().qos > 0 && inflight_.size() >= send_window_) return;
    OutboundMessage next = std::move(queue_->front());
    queue_->pop_front();
    SendNow(std::move(next));
  }
  if (queue_ != nullptr && queue_->empty()) queue_.reset();
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

bool Session::OnPuback(uint16_t packet_id) {
  auto it = FindInflight(packet_id);
  if (it == inflight_.end() || it->stage != Stage::kAwaitPuback) return false;
  inflight_.erase(it);
  DrainQueue();
  return true;
}

bool Session::OnPubrec(uint16_t packet_id) {
  auto it = FindInflight(packet_id);
  if (it == inflight_.end() || it->stage == Stage::kAwaitPuback) return false;
  it->stage = Stage::kAwaitPubcomp;
  it->out.message.reset();
  it->out.subscription_ids.clear();
  if (client_ != nullptr) client_->SendPubrel(packet_id);
  return true;
}

bool Session::OnPubcomp(uint16_t packet_id) {
  auto it = FindInflight(packet_id);
  if (it == inflight_.end() || it->stage != Stage::kAwaitPubcomp) return false;
  inflight_.erase(it);
  DrainQueue();
  return true;
}

}  // namespace mqtt
