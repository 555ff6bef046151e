// SPDX-License-Identifier: Apache-2.0
#include "scenarios.h"

#include <netdb.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench.h"

namespace bench {

bool Bench::Resolve(const std::string& host, int port, sockaddr_in* out) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || !res) {
    Error("cannot resolve " + host);
    return false;
  }
  *out = *reinterpret_cast<sockaddr_in*>(res->ai_addr);
  out->sin_port = htons(uint16_t(port));
  freeaddrinfo(res);
  return true;
}

void Bench::Error(const std::string& what) {
  if (errors_++ == 0) first_error_ = what;
}

int Bench::Run() {
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);  // precise wake-ups for fixed-rate publishing
  nonce_ = uint32_t(MonoNs() ^ (uint64_t(getpid()) << 16));
  id_prefix_ = o_.client_prefix.empty() ? "mb" + std::to_string(getpid()) : o_.client_prefix;
  if (!Resolve(o_.host, o_.port, &pub_addr_) ||
      !Resolve(o_.sub_host.empty() ? o_.host : o_.sub_host, o_.sub_port ? o_.sub_port : o_.port,
               &sub_addr_)) {
    Report("", 0);
    return 1;
  }
  next_ping_ = MonoNs() + o_.keepalive * kSecond / 2;
  loop_.set_clean_session(o_.clean_session);
  if (o_.tls) {
    std::string error;
    ssl_ctx_st* ctx = MakeTlsContext(o_.tls_options, &error);
    if (!ctx) {
      Error("TLS: " + error);
      Report("", 0);
      return 1;
    }
    loop_.EnableTls(ctx, o_.tls_server_name);
  }
  if (o_.scenario == "connect" || o_.scenario == "idle") return RunConnections();
  return RunFlow();
}

// ---- Loop plumbing ----

bool Bench::RunUntil(const std::function<bool()>& done, int64_t deadline) {
  while (!done()) {
    if (MonoNs() >= deadline) return false;
    Turn(deadline);
  }
  return true;
}

void Bench::Turn(int64_t deadline) {
  int64_t now = MonoNs();
  int64_t wait = 0;
  if (!ShouldSpin()) {
    wait = std::min<int64_t>(deadline - now, 10 * kMs);
    if (phase_ == kRun && !measured_) {
      wait = std::min(wait, (measuring_ ? run_end_ : measure_start_) - now);
    }
    if (phase_ == kRun && o_.rate > 0) wait = std::min(wait, NextDue() - now);
    if (!resumed_) wait = std::min(wait, pause_end_ - now);
    if (rss_every_ns_ > 0) wait = std::min(wait, next_rss_ns_ - now);
  }
  loop_.Poll(wait);
  now = MonoNs();
  Tick(now);
  loop_.Flush();
}

void Bench::Tick(int64_t now) {
  if (open_next_ < open_list_.size()) OpenStep();
  if (phase_ == kProbe && now >= next_probe_) {
    Pub& p = pubs_[0];
    uint8_t* pl = p.probe.Append(loop_.Out(*p.c), 0);
    const uint32_t zero = 0;
    std::memcpy(pl, &now, 8);
    std::memcpy(pl + 8, &zero, 4);
    std::memcpy(pl + 12, &p.index, 4);
    std::memcpy(pl + 16, &nonce_, 4);
    // One probe reaches every subscriber: at 10,000 subscribers a slow broker takes longer than
    // 50 ms to deliver one, and probes sent faster pile up ahead of the measured run.
    next_probe_ = now + 50 * kMs * std::max<int64_t>(1, int64_t(subs_.size()) / 100);
  }
  if (phase_ == kRun) {
    if (!measuring_ && !measured_ && now >= measure_start_) StartWindow(now);
    if (measuring_ && now >= run_end_) EndWindow(now);
    if (o_.rate > 0) {
      GenerateAtRate();
    } else if (o_.qos == 0) {
      GenerateOpenLoop(now);
    }
    if (burst_ && sent_done_ns_ == 0 && sent_total_ >= uint64_t(o_.messages) &&
        pubs_[0].c->pending() == 0) {
      sent_done_ns_ = now;  // the last byte of the burst went to the socket
    }
  }
  if (!resumed_ && now >= pause_end_) {
    resumed_ = true;
    resume_ns_ = now;
    for (Sub& s : subs_) loop_.ResumeRead(*s.c);
  }
  if (rss_every_ns_ > 0 && now >= next_rss_ns_) SampleRss(now);
  // Keep-alive: ping a connection that sent nothing for half the keep-alive (a publisher at
  // 1 msg/s never needs one; no synchronized ping storm over thousands of connections).
  if (now >= next_ping_) {
    const int64_t quiet = o_.keepalive * kSecond / 2;
    for (Conn& c : conns_) {
      if (c.state == Conn::kReady && now - c.last_tx_ns >= quiet) {
        EncodeSimple(loop_.Out(c), kPingreq);
      }
    }
    next_ping_ = now + std::min<int64_t>(kSecond, quiet);
  }
}

void Bench::SampleRss(int64_t now) {
  const long kb = ProcRssKb(o_.broker_pid);
  if (kb > rss_peak_kb_) rss_peak_kb_ = kb;
  next_rss_ns_ = now + rss_every_ns_;
}

void Bench::StartWindow(int64_t now) {
  measuring_ = true;
  w_start_ = now;
  cpu0_ = SelfCpuNs();
  bcpu0_ = ProcCpuNs(o_.broker_pid);
  psi0_ = CpuPressureUs();
  sys0_ = loop_.syscalls();
  if (rss_every_ns_ > 0) rss_start_kb_ = ProcRssKb(o_.broker_pid);
}

void Bench::EndWindow(int64_t now) {
  measuring_ = false;
  measured_ = true;
  w_end_ = now;
  cpu1_ = SelfCpuNs();
  bcpu1_ = ProcCpuNs(o_.broker_pid);
  psi1_ = CpuPressureUs();
  sys1_ = loop_.syscalls();
}

// ---- Connections ----

bool Bench::OpenAll(std::vector<Conn*> conns, const sockaddr_in* addr, int64_t timeout) {
  open_list_ = std::move(conns);
  open_addr_ = addr;
  open_next_ = 0;
  const int before_failed = connect_failed_;
  OpenStep();
  loop_.Flush();
  const bool done = RunUntil([&] { return open_next_ == open_list_.size() && open_pending_ == 0; },
                             MonoNs() + timeout);
  open_list_.clear();
  open_next_ = 0;
  return done && connect_failed_ == before_failed;
}

void Bench::OpenStep() {
  while (open_pending_ < o_.concurrency && open_next_ < open_list_.size()) {
    Conn& c = *open_list_[open_next_++];
    const char tag = c.role == kPub ? 'p' : c.role == kSub ? 's' : 'c';
    const std::string id = id_prefix_ + "-" + tag + std::to_string(c.role_index);
    // Past 25,000 connections to a loopback broker, spread the sources over 127.0.0.2, .3, ...:
    // one source address has about 28,000 ephemeral ports per destination.
    const uint64_t spread = open_seq_++ / 25000;
    sockaddr_in src{};
    const bool loopback = (ntohl(open_addr_->sin_addr.s_addr) >> 24) == 127;
    if (spread > 0 && loopback) {
      src.sin_family = AF_INET;
      src.sin_addr.s_addr = htonl((127u << 24) | uint32_t(1 + spread));
    }
    if (loop_.Connect(c, *open_addr_, id, uint16_t(o_.keepalive),
                      src.sin_family ? &src : nullptr)) {
      ++open_pending_;
      ++open_fds_;
    } else {
      ++connect_failed_;
      Error(std::string("connect: ") + std::strerror(errno));
    }
  }
}

void Bench::OnConnected(Conn& c, int64_t now) {
  --open_pending_;
  ++connected_;
  last_connack_ns_ = now;
  handshake_.Record(now - c.connect_start_ns);
}

void Bench::OnClosed(Conn& c, Conn::State was, const char* why) {
  --open_fds_;
  if (was == Conn::kTcpConnecting || was == Conn::kTlsHandshaking || was == Conn::kMqttConnecting) {
    --open_pending_;
    ++connect_failed_;
    Error(std::string("connect: ") + why);
  } else if (was != Conn::kClosing) {
    const char* role = c.role == kPub ? "publisher" : c.role == kSub ? "subscriber" : "client";
    Error(std::string(role) + " " + std::to_string(c.role_index) + ": " + why);
  }
}

void Bench::Disconnect() {
  for (Conn& c : conns_) {
    if (c.fd < 0) continue;
    if (c.state == Conn::kReady) {
      EncodeSimple(loop_.Out(c), kDisconnect);
      c.state = Conn::kClosing;
    } else if (c.state != Conn::kClosing) {
      loop_.Close(c, "abandoned");
    }
  }
  loop_.Flush();
  // Wait for the broker to close first (the TIME_WAIT stays on its side, not on our ports).
  RunUntil([&] { return open_fds_ == 0; }, MonoNs() + 3 * kSecond);
  for (Conn& c : conns_) {
    if (c.fd >= 0) {
      c.state = Conn::kClosing;
      loop_.Close(c, "closed");
    }
  }
}

int Bench::RunConnections() {
  const bool idle = o_.scenario == "idle";
  std::vector<Conn*> list;
  for (int i = 0; i < o_.connections; ++i) {
    Conn& c = conns_.emplace_back();
    c.role = kPlain;
    c.role_index = uint32_t(i);
    list.push_back(&c);
  }
  const long rss_before = ProcRssKb(o_.broker_pid);
  const int64_t t0 = MonoNs();
  StartWindow(t0);
  OpenAll(std::move(list), &pub_addr_, 60 * kSecond + int64_t(o_.connections) * 10 * kMs);
  EndWindow(MonoNs());
  const int64_t t1 = connected_ > 0 ? last_connack_ns_ : MonoNs();
  long rss_after = -1;
  if (idle) {
    // Let the broker settle, then read its RSS until two readings 250 ms apart agree (±0.5 %).
    RunUntil([] { return false; }, MonoNs() + int64_t(o_.settle * 1e9));
    rss_after = ProcRssKb(o_.broker_pid);
    for (int i = 0; i < 20 && rss_after >= 0; ++i) {
      RunUntil([] { return false; }, MonoNs() + 250 * kMs);
      const long again = ProcRssKb(o_.broker_pid);
      const bool stable = std::abs(again - rss_after) * 200 <= rss_after;
      rss_after = again;
      if (stable) break;
    }
  }
  const int still_open = open_fds_;
  Disconnect();
  const double secs = double(t1 - t0) / 1e9;
  Report(idle ? "" : "conn/s", idle || secs <= 0 ? 0 : connected_ / secs, [&](Json& j) {
    j.Int("connections", o_.connections).Int("connected", connected_);
    j.Int("failed", connect_failed_).Int("open_at_end", still_open);
    j.Num("elapsed_s", secs, 3);
    j.Begin("handshake_us")
        .Num("p50", double(handshake_.Quantile(0.5)) / 1e3)
        .Num("p99", double(handshake_.Quantile(0.99)) / 1e3)
        .Num("max", double(handshake_.max()) / 1e3)
        .End();
    if (idle) {
      j.Int("rss_before_kb", rss_before).Int("rss_after_kb", rss_after);
      if (rss_before >= 0 && rss_after >= 0 && connected_ > 0) {
        j.Num("bytes_per_conn", double(rss_after - rss_before) * 1024.0 / connected_, 0);
      } else {
        j.Null("bytes_per_conn");
      }
    }
  });
  return errors_ > 0 || connected_ < o_.connections ? 1 : 0;
}

// ---- Output ----

void Bench::Report(const char* unit, double rate, const std::function<void(Json&)>& extra) {
  Json j;
  j.Str("scenario", o_.scenario);
  j.Begin("params")
      .Int("qos", o_.qos)
      .Int("inflight", o_.inflight)
      .Int("payload", o_.payload)
      .Int("publishers", int64_t(pubs_.size()))
      .Int("subscribers", int64_t(subs_.size()))
      .Num("rate", o_.rate, 0)
      .Num("duration", o_.duration, 2)
      .Num("warmup", o_.warmup, 2)
      .Str("host", o_.host)
      .Int("port", o_.port)
      .Bool("tls", o_.tls);
  if (o_.tls) j.Str("tls_session", loop_.tls_description());
  // The subscribers' address, when it is not the publishers' (cluster; or --sub-host/--sub-port
  // given to another publish/subscribe scenario, e.g. latency across two nodes).
  if (o_.scenario == "cluster" || !o_.sub_host.empty() || o_.sub_port != 0) {
    j.Str("sub_host", o_.sub_host.empty() ? o_.host : o_.sub_host);
    j.Int("sub_port", o_.sub_port ? o_.sub_port : o_.port);
  }
  j.End();
  const bool flow = !pubs_.empty();
  const double window = double(w_end_ - w_start_) / 1e9;
  if (flow) {
    const uint64_t expected = sent_total_ * fan_;
    const uint64_t loss = expected > unique_total_ ? expected - unique_total_ : 0;
    j.Int("msgs_sent", int64_t(sent_total_)).Int("msgs_received", int64_t(received_total_));
    j.Int("expected", int64_t(expected)).Int("unique_received", int64_t(unique_total_));
    j.Num("window_s", window, 3);
    j.Num("rate", rate, 0).Str("unit", unit);
    j.Num("send_rate", window > 0 ? double(sent_window_) / window : 0, 0);
    j.Int("loss", int64_t(loss))
        .Num("loss_pct", expected ? 100.0 * double(loss) / double(expected) : 0, 4);
    j.Int("duplicates", int64_t(duplicates_)).Int("out_of_order", int64_t(out_of_order_));
    uint64_t unacked = 0;
    for (const Pub& p : pubs_) unacked += p.inflight;
    if (o_.qos > 0) j.Int("unacked", int64_t(unacked));
    if (latency_.count() > 0) {
      j.Begin("latency_us")
          .Num("p50", double(latency_.Quantile(0.5)) / 1e3)
          .Num("p90", double(latency_.Quantile(0.9)) / 1e3)
          .Num("p99", double(latency_.Quantile(0.99)) / 1e3)
          .Num("p999", double(latency_.Quantile(0.999)) / 1e3)
          .Num("max", double(latency_.max()) / 1e3)
          .Int("samples", int64_t(latency_.count()))
          .End();
    }
  } else if (*unit) {
    j.Num("rate", rate, 0).Str("unit", unit);
  }
  if (extra) extra(j);
  const double wall = double(w_end_ - w_start_);
  j.Num("bench_cpu_pct", wall > 0 ? 100.0 * double(cpu1_ - cpu0_) / wall : 0);
  if (bcpu0_ >= 0 && bcpu1_ >= 0 && wall > 0) {
    j.Num("broker_cpu_pct", 100.0 * double(bcpu1_ - bcpu0_) / wall);
  }
  // Share of the window in which some runnable task waited for a CPU (a noisy machine).
  if (psi0_ >= 0 && psi1_ >= 0 && wall > 0) {
    j.Num("cpu_pressure_pct", 100.0 * double(psi1_ - psi0_) * 1e3 / wall);
  }
  if (flow && recv_window_ > 0) {
    j.Num("bench_syscalls_per_msg", double(sys1_ - sys0_) / double(recv_window_), 3);
  }
  j.Int("protocol_errors", int64_t(protocol_errors_ + unexpected_acks_));
  if (foreign_) j.Int("foreign_msgs", int64_t(foreign_));
  j.Int("errors", errors_);
  if (errors_) j.Str("error", first_error_);
  std::printf("%s\n", j.Finish().c_str());
  std::fflush(stdout);
}

int RunScenario(Options opt) {
  opt.fd_limit = RaiseFdLimit();
  if (opt.rate < 0) opt.rate = opt.scenario == "latency" ? 5000 : 0;
  if (opt.warmup < 0) opt.warmup = std::min(2.0, opt.duration / 5);
  Bench b(opt);
  return b.Run();
}

}  // namespace bench
