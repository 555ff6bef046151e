// Publishing (open loop, windowed, fixed rate), receiving (sequence checks, latency) and the
// publish/subscribe flow of the throughput and latency scenarios.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "bench.h"

namespace bench {

// ---- Publishing ----

bool Bench::CanSend(const Pub& p) const {
  if (p.c->fd < 0 || p.c->state != Conn::kReady) return false;
  if (o_.qos == 0) return p.c->pending() < (1u << 20);
  return p.inflight < uint32_t(o_.inflight);
}

void Bench::Emit(Pub& p, int64_t ts) {
  uint16_t pid = 0;
  if (o_.qos) {
    do {
      pid = p.next_pid++;
      if (p.next_pid == 0) p.next_pid = 1;
    } while (p.pid_used[pid >> 6] & (uint64_t(1) << (pid & 63)));
    p.pid_used[pid >> 6] |= uint64_t(1) << (pid & 63);
    ++p.inflight;
  }
  uint8_t* pl = p.tmpl.Append(loop_.Out(*p.c), pid);
  const uint32_t seq = p.next_seq++;
  std::memcpy(pl, &ts, 8);
  std::memcpy(pl + 8, &seq, 4);
  std::memcpy(pl + 12, &p.index, 4);
  std::memcpy(pl + 16, &nonce_, 4);
  ++p.sent;
  ++sent_total_;
  if (measuring_) ++sent_window_;
}

// QoS 0 open loop: each publisher whose socket took everything gets another burst; a publisher
// whose socket is full waits for EPOLLOUT. A cap on undelivered messages keeps the broker from
// being buried when the subscribers fall behind.
void Bench::GenerateOpenLoop(int64_t now) {
  if (o_.max_backlog > 0) {
    // Pause at the cap, resume at half of it: bursts stay large, no spinning on a full cap.
    if (!paused_ && Backlog() + int64_t(fan_) > o_.max_backlog) paused_ = true;
    if (paused_ && Backlog() > o_.max_backlog / 2) {
      if (now - last_recv_ns_ > kSecond) forgiven_ += Backlog();  // presumed lost: go on
      return;
    }
    paused_ = false;
  }
  for (Pub& p : pubs_) {
    if (p.c->fd < 0 || p.c->write_blocked || p.c->pending() > 0) continue;
    size_t n = std::max<size_t>(1, size_t(o_.burst) / p.tmpl.packet_size());
    if (o_.max_backlog > 0) {
      const int64_t room = (o_.max_backlog - Backlog()) / int64_t(fan_);
      if (room <= 0) break;
      n = std::min(n, size_t(room));
    }
    for (size_t i = 0; i < n; ++i) Emit(p, now);
  }
}

bool Bench::ShouldSpin() const {
  if (phase_ != kRun || o_.rate != 0 || o_.qos != 0) return false;
  if (paused_ || (o_.max_backlog > 0 && Backlog() + int64_t(fan_) > o_.max_backlog)) return false;
  for (const Pub& p : pubs_) {
    if (p.c->fd >= 0 && !p.c->write_blocked && p.c->pending() == 0) return true;
  }
  return false;
}

// Fixed rate over all publishers, round robin; a message held back by a full window is owed and
// sent on the next acknowledgement. Stamped with the time it is actually sent.
void Bench::GenerateAtRate() {
  const int64_t ts = MonoNs();
  const uint64_t due = uint64_t(double(ts - run_start_) * o_.rate / 1e9);
  while (scheduled_ < due) {
    ++scheduled_;
    Pub& p = pubs_[rr_++ % pubs_.size()];
    if (CanSend(p)) {
      Emit(p, ts);
    } else {
      ++p.owed;
    }
  }
}

int64_t Bench::NextDue() const {
  return run_start_ + int64_t(double(scheduled_ + 1) * 1e9 / o_.rate);
}

void Bench::OnAck(Pub& p, uint16_t pid) {
  uint64_t& word = p.pid_used[pid >> 6];
  const uint64_t bit = uint64_t(1) << (pid & 63);
  if (!(word & bit)) {
    ++unexpected_acks_;
    return;
  }
  word &= ~bit;
  --p.inflight;
  ++p.acked;
  ++acked_total_;
  if (phase_ != kRun) return;
  if (o_.rate > 0) {
    if (p.owed > 0) {
      --p.owed;
      Emit(p, MonoNs());
    }
  } else {
    Emit(p, MonoNs());
  }
}

// ---- Receiving ----

void Bench::OnPacket(Conn& c, const Packet& p, int64_t now) {
  const bool has_id = p.len >= 2;
  const uint16_t pid = has_id ? ReadU16(p.body) : 0;
  if (c.role == kSub) {
    Sub& s = subs_[c.role_index];
    switch (p.type()) {
      case kPublish:
        OnPublish(s, p, now);
        return;
      case kPubrel:
        if (has_id) EncodeAck(loop_.Out(c), kPubcomp, pid);
        return;
      case kSuback:
        if (p.len >= 3 && p.body[2] <= 2) {
          s.subacked = true;
        } else {
          Error("subscription refused");
        }
        return;
      case kPingresp:
        return;
    }
  } else if (c.role == kPub) {
    Pub& pub = pubs_[c.role_index];
    switch (p.type()) {
      case kPuback:
      case kPubcomp:
        if (has_id) OnAck(pub, pid);
        return;
      case kPubrec:
        if (has_id) EncodeAck(loop_.Out(c), kPubrel, pid);
        return;
      case kPingresp:
        return;
    }
  } else if (p.type() == kPingresp) {
    return;
  }
  ++protocol_errors_;
}

void Bench::OnPublish(Sub& s, const Packet& p, int64_t now) {
  PublishView v;
  if (!DecodePublish(p, &v)) {
    ++protocol_errors_;
    return;
  }
  if (v.qos == 1) EncodeAck(loop_.Out(*s.c), kPuback, v.packet_id);
  if (v.qos == 2) EncodeAck(loop_.Out(*s.c), kPubrec, v.packet_id);
  int64_t ts;
  uint32_t seq, pub, nonce;
  if (v.payload_len < kHeaderBytes) {
    ++foreign_;
    return;
  }
  std::memcpy(&ts, v.payload, 8);
  std::memcpy(&seq, v.payload + 8, 4);
  std::memcpy(&pub, v.payload + 12, 4);
  std::memcpy(&nonce, v.payload + 16, 4);
  if (nonce != nonce_ || pub >= pubs_.size()) {
    ++foreign_;
    return;
  }
  if (seq == 0) {  // readiness probe
    if (!s.probed) {
      s.probed = true;
      ++probed_subs_;
    }
    return;
  }
  ++received_total_;
  last_recv_ns_ = now;
  if (!seen_[size_t(s.group) * pubs_.size() + pub].Insert(seq)) {
    ++duplicates_;
  } else {
    ++unique_total_;
    uint32_t& last = s.last_seq[pub];
    if (seq > last) {
      last = seq;
    } else {
      ++out_of_order_;
    }
  }
  if (measuring_) {
    ++recv_window_;
    latency_.Record(now - ts);
  }
}

// ---- Scenarios ----

bool Bench::DrainDone(int64_t now) {
  bool acked = true;
  for (const Pub& p : pubs_) acked = acked && (p.inflight == 0 || p.c->fd < 0);
  if (acked && unique_total_ >= sent_total_ * fan_) return true;
  const uint64_t mark = received_total_ + acked_total_;
  if (mark != progress_mark_) {
    progress_mark_ = mark;
    progress_ns_ = now;
  }
  return now - progress_ns_ > 2 * kSecond;
}

int Bench::RunFlow() {
  const std::string& sc = o_.scenario;
  const std::string t = o_.topic;
  int npub = 1, nsub = 1;
  std::string filter = t + "/t";
  if (sc == "fanin") {
    npub = o_.publishers > 0 ? o_.publishers : 16;
    filter = t + "/+/x";
  } else if (sc == "fanout") {
    nsub = o_.subscribers > 0 ? o_.subscribers : 100;
  } else if (sc == "shared") {
    nsub = o_.subscribers > 0 ? o_.subscribers : 8;
    filter = "$share/g/" + t + "/t";
    shared_ = true;
  } else if (sc == "qos" || sc == "latency" || sc == "cluster") {
    if (o_.publishers > 0) npub = o_.publishers;
    if (o_.subscribers > 0) nsub = o_.subscribers;
  }
  fan_ = shared_ ? 1 : uint64_t(nsub);
  const int ngroups = shared_ ? 1 : nsub;
  seen_.resize(size_t(ngroups) * size_t(npub));

  std::vector<Conn*> sub_conns, pub_conns;
  subs_.resize(size_t(nsub));
  for (int i = 0; i < nsub; ++i) {
    Conn& c = conns_.emplace_back();
    c.role = kSub;
    c.role_index = uint32_t(i);
    subs_[size_t(i)].c = &c;
    subs_[size_t(i)].group = shared_ ? 0 : uint32_t(i);
    subs_[size_t(i)].last_seq.assign(size_t(npub), 0);
    sub_conns.push_back(&c);
  }
  pubs_.reserve(size_t(npub));
  for (int i = 0; i < npub; ++i) {
    const std::string topic = sc == "fanin" ? t + "/" + std::to_string(i) + "/x" : t + "/t";
    Pub& p = pubs_.emplace_back(topic, uint8_t(o_.qos), size_t(o_.payload));
    Conn& c = conns_.emplace_back();
    c.role = kPub;
    c.role_index = uint32_t(i);
    p.c = &c;
    p.index = uint32_t(i);
    if (o_.qos) p.pid_used.assign(1024, 0);
    pub_conns.push_back(&c);
  }

  int rc = 1;
  const int64_t setup_timeout = 30 * kSecond + int64_t(nsub + npub) * kMs;
  if (!OpenAll(sub_conns, &sub_addr_, setup_timeout)) {
    Error("subscribers did not connect");
  } else {
    for (Sub& s : subs_) EncodeSubscribe(loop_.Out(*s.c), 1, filter, uint8_t(o_.qos));
    loop_.Flush();
    if (!RunUntil(
            [&] {
              return std::all_of(subs_.begin(), subs_.end(), [](auto& s) { return s.subacked; });
            },
            MonoNs() + setup_timeout)) {
      Error("no SUBACK");
    } else if (!OpenAll(pub_conns, &pub_addr_, setup_timeout)) {
      Error("publishers did not connect");
    } else {
      // Probe until the subscriptions deliver (immediate on one node; on a cluster, until the
      // subscription has reached the publishing node).
      phase_ = kProbe;
      const int want = shared_ ? 1 : nsub;
      if (!RunUntil([&] { return probed_subs_ >= want; }, MonoNs() + 10 * kSecond)) {
        Error("probe messages were not delivered");
      } else {
        rc = 0;
      }
    }
  }
  if (rc == 0) {
    phase_ = kRun;
    run_start_ = MonoNs();
    last_recv_ns_ = run_start_;
    measure_start_ = run_start_ + int64_t(o_.warmup * 1e9);
    run_end_ = measure_start_ + int64_t(o_.duration * 1e9);
    if (o_.rate == 0 && o_.qos > 0) {
      const int64_t now = MonoNs();
      for (Pub& p : pubs_) {
        while (CanSend(p)) Emit(p, now);
      }
    }
    RunUntil([&] { return measured_; }, run_end_ + kSecond);
    if (!measured_) EndWindow(MonoNs());
    phase_ = kDrain;
    progress_ns_ = MonoNs();
    RunUntil([&] { return DrainDone(MonoNs()); }, MonoNs() + 30 * kSecond);
  }
  phase_ = kDone;
  Disconnect();
  const double window = double(w_end_ - w_start_) / 1e9;
  Report(fan_ > 1 || shared_ ? "deliveries/s" : "msg/s",
         window > 0 ? double(recv_window_) / window : 0);
  if (rc != 0 || errors_ > 0) return 1;
  if (o_.qos > 0 && unique_total_ < sent_total_ * fan_) return 3;
  return 0;
}

}  // namespace bench
