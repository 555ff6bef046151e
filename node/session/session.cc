#include "node/session/session.h"

#include <algorithm>

#include "node/session/client.h"

namespace mqtt {

void Session::Attach(Client* client) {
  client_ = client;
  for (const Inflight& entry : inflight_) {
    if (entry.stage == Stage::kAwaitPubcomp) {
      client_->SendPubrel(entry.packet_id);
    } else {
      uint8_t qos = entry.stage == Stage::kAwaitPuback ? 1 : 2;
      client_->SendPublish(*entry.message, qos, entry.retain, /*dup=*/true, entry.packet_id);
    }
  }
  DrainQueue();
}

bool Session::CanSendNow(uint8_t qos) const {
  if (client_ == nullptr || !queue_.empty()) return false;
  return qos == 0 || inflight_.size() < limits_.max_inflight;
}

void Session::Deliver(const MessagePtr& message, uint8_t qos, bool retain) {
  if (CanSendNow(qos)) {
    SendNow(message, qos, retain);
    return;
  }
  if (qos == 0 && client_ == nullptr) return;  // QoS 0 is not kept for offline sessions
  if (queue_.size() >= limits_.max_queued_messages) {
    ++dropped_;
    return;
  }
  queue_.push_back({message, qos, retain});
}

void Session::SendNow(const MessagePtr& message, uint8_t qos, bool retain) {
  if (qos == 0) {
    // A client that does not read its socket loses QoS 0 messages rather than growing memory.
    if (client_->unsent_bytes() > limits_.max_outbound_buffer) {
      ++dropped_;
      return;
    }
    client_->SendPublish(*message, 0, retain, false, 0);
    return;
  }
  uint16_t packet_id = NextPacketId();
  inflight_.push_back(
      {packet_id, qos == 1 ? Stage::kAwaitPuback : Stage::kAwaitPubrec, retain, message});
  client_->SendPublish(*message, qos, retain, false, packet_id);
}

void Session::DrainQueue() {
  while (client_ != nullptr && !queue_.empty()) {
    Queued& next = queue_.front();
    if (next.qos > 0 && inflight_.size() >= limits_.max_inflight) return;
    Queued entry = std::move(next);
    queue_.pop_front();
    SendNow(entry.message, entry.qos, entry.retain);
  }
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
std::deque<Session::Inflight>::iterator Session::FindInflight(uint16_t packet_id) {
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
  it->message.reset();
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
