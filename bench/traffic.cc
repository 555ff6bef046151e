// SPDX-License-Identifier: Apache-2.0
// Publishing (open loop, windowed, fixed rate), receiving (sequence checks, latency) and the
// publish/subscribe flow of the throughput and latency scenarios.
#include <algorithm>
#include <cstdio>
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
      if (p.next_pid == 0 || p.next_pid > p.pid_max) p.next_pid = 1;
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
    if (burst_) {
      if (sent_total_ >= uint64_t(o_.messages)) return;
      n = std::min(n, size_t(uint64_t(o_.messages) - sent_total_));
    }
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
  if (burst_ && sent_total_ >= uint64_t(o_.messages)) return false;
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
  if (burst_ && resumed_) {
    // Longest stall after the subscriber resumed reading: the largest gap between deliveries
    // (the first one counted from the resume). Receive time is taken once per read().
    const int64_t gap = now - std::max(prev_recv_ns_, resume_ns_);
    if (gap > max_gap_ns_) {
      max_gap_ns_ = gap;
      max_gap_at_ns_ = now;
    }
    prev_recv_ns_ = now;
  }
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
  } else if (sc == "manyconn") {
    // N connections in all: a few wildcard subscribers on TOPIC/c/+, the rest each publishing
    // --conn-rate msg/s to its own TOPIC/c/<i>, spread evenly over each second.
    manyconn_ = true;
    nsub = o_.subscribers > 0 ? o_.subscribers : 1;
    conns_requested_ = o_.connections;
    const int total = ManyConnLimit(o_.connections);
    npub = total - nsub;
    if (npub < 1) {
      Error("manyconn: no room for publishers (descriptor limits)");
      Report("msg/s", 0);
      return 1;
    }
    filter = t + "/c/+";
    o_.rate = double(npub) * o_.conn_rate;
    rss_every_ns_ = kSecond;
  } else if (sc == "burst") {
    burst_ = true;
    o_.max_backlog = 0;  // open loop: nothing holds the publisher back but the broker
    rss_every_ns_ = 10 * kMs;
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
    const std::string topic = sc == "fanin"      ? t + "/" + std::to_string(i) + "/x"
                              : sc == "manyconn" ? t + "/c/" + std::to_string(i)
                                                 : t + "/t";
    Pub& p = pubs_.emplace_back(topic, uint8_t(o_.qos), size_t(o_.payload));
    Conn& c = conns_.emplace_back();
    c.role = kPub;
    c.role_index = uint32_t(i);
    p.c = &c;
    p.index = uint32_t(i);
    if (manyconn_ && o_.inflight < 1023) p.pid_max = 1023;  // 128 B of bitmap, not 8 KiB
    if (o_.qos) p.pid_used.assign(size_t(p.pid_max) / 64 + 1, 0);
    pub_conns.push_back(&c);
  }

  int rc = 1;
  rss_before_kb_ = ProcRssKb(o_.broker_pid);
  rss_peak_kb_ = rss_before_kb_;
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
  if (rc == 0 && burst_) {
    RunBurst();
  } else if (rc == 0) {
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
    rss_end_kb_ = ProcRssKb(o_.broker_pid);
    phase_ = kDrain;
    progress_ns_ = MonoNs();
    RunUntil([&] { return DrainDone(MonoNs()); }, MonoNs() + 30 * kSecond);
  }
  phase_ = kDone;
  if (rss_every_ns_ > 0) SampleRss(MonoNs());
  const long hwm_kb = ProcStatusKb(o_.broker_pid, "VmHWM");
  Disconnect();
  const double window = double(w_end_ - w_start_) / 1e9;
  auto extra = [&](Json& j) {
    if (!manyconn_ && !burst_) return;
    j.Int("rss_before_kb", rss_before_kb_).Int("rss_start_kb", rss_start_kb_);
    j.Int("rss_end_kb", rss_end_kb_).Int("rss_peak_kb", rss_peak_kb_).Int("vmhwm_kb", hwm_kb);
    if (manyconn_) {
      j.Int("connections_requested", conns_requested_);
      j.Int("connections", int64_t(pubs_.size() + subs_.size()));
      j.Int("connected", connected_);
      j.Int("fd_limit", o_.fd_limit).Int("broker_fd_room", broker_fd_room_);
      j.Num("conn_rate", o_.conn_rate, 2);
      if (rss_before_kb_ >= 0 && rss_start_kb_ >= 0 && connected_ > 0) {
        j.Num("bytes_per_conn", double(rss_start_kb_ - rss_before_kb_) * 1024.0 / connected_, 0);
      }
    }
    if (burst_) {
      auto secs = [&](int64_t t) { return t > 0 ? double(t - run_start_) / 1e9 : -1.0; };
      j.Int("messages", o_.messages).Num("pause_s", o_.pause, 2);
      j.Num("published_at_s", secs(sent_done_ns_), 3);
      j.Num("resumed_at_s", secs(resume_ns_), 3);
      j.Num("last_delivery_at_s", received_total_ ? secs(last_recv_ns_) : -1.0, 3);
      j.Num("max_gap_ms", double(max_gap_ns_) / 1e6, 1);
      j.Num("max_gap_at_s", secs(max_gap_at_ns_), 3);
      j.Num("pub_max_blocked_ms", double(pubs_[0].c->max_blocked_ns) / 1e6, 1);
    }
  };
  if (burst_) {
    // Deliveries per second from the burst start to the last delivery.
    const double span = received_total_ ? double(last_recv_ns_ - run_start_) / 1e9 : 0;
    Report("msg/s", span > 0 ? double(received_total_) / span : 0, extra);
  } else {
    Report(fan_ > 1 || shared_ ? "deliveries/s" : "msg/s",
           window > 0 ? double(recv_window_) / window : 0, extra);
  }
  if (rc != 0 || errors_ > 0) return 1;
  if (o_.qos > 0 && unique_total_ < sent_total_ * fan_) return 3;
  return 0;
}

// manyconn: as many of the requested connections as both processes' descriptor limits allow
// (this one's RLIMIT_NOFILE and the broker's, read from /proc, minus what they hold).
int Bench::ManyConnLimit(int requested) {
  long room = o_.fd_limit > 0 ? o_.fd_limit - 32 : requested;
  broker_fd_room_ = ProcFdRoom(o_.broker_pid);
  if (broker_fd_room_ > 0) room = std::min(room, broker_fd_room_ - 64);
  if (room < requested) {
    std::fprintf(stderr,
                 "mqtt-bench: manyconn: %d connections requested, %ld possible (RLIMIT_NOFILE %ld "
                 "here, %ld descriptors free in the broker); using %ld\n",
                 requested, room, o_.fd_limit, broker_fd_room_, room);
    return int(std::max(room, 0L));
  }
  return requested;
}

// burst: one open-loop burst of --messages QoS 0 messages; the subscriber reads nothing for the
// first --pause seconds, then everything. Runs until all is sent and the subscriber resumed,
// then drains (everything arrived, or nothing moved for 2 s). The window is the whole burst.
void Bench::RunBurst() {
  phase_ = kRun;
  run_start_ = MonoNs();
  last_recv_ns_ = run_start_;
  measure_start_ = run_start_;
  run_end_ = run_start_ + 3600 * kSecond;  // the window ends after the drain, below
  if (o_.pause > 0) {
    resumed_ = false;
    pause_end_ = run_start_ + int64_t(o_.pause * 1e9);
    for (Sub& s : subs_) s.c->read_paused = true;
  }
  StartWindow(run_start_);
  if (!RunUntil([&] { return resumed_ && sent_done_ns_ > 0; }, run_start_ + 600 * kSecond)) {
    Error("burst: not sent within 600 s");
  }
  phase_ = kDrain;
  progress_ns_ = MonoNs();
  RunUntil([&] { return DrainDone(MonoNs()); }, MonoNs() + 120 * kSecond);
  EndWindow(MonoNs());
  rss_end_kb_ = ProcRssKb(o_.broker_pid);
}

}  // namespace bench
