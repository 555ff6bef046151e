// SPDX-License-Identifier: Apache-2.0
// The internals of mqtt-bench's scenarios: one Bench object drives one run. scenarios.cc holds
// the loop plumbing, connection handling and the report; traffic.cc publishing, receiving and
// the publish/subscribe flow.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "codec.h"
#include "loop.h"
#include "scenarios.h"
#include "stats.h"

namespace bench {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kMs = 1'000'000;
// Payload header: send time (u64, CLOCK_MONOTONIC ns), sequence number (u32, from 1; 0 marks a
// readiness probe), publisher index (u32), run nonce (u32). The rest is padding.
constexpr size_t kHeaderBytes = 20;

enum Role : uint8_t { kPub, kSub, kPlain };

struct Pub {
  Conn* c = nullptr;
  uint32_t index = 0;
  PublishTemplate tmpl;
  PublishTemplate probe;
  uint32_t next_seq = 1;
  uint32_t inflight = 0;
  uint64_t owed = 0;  // rate mode: due but held back by the window
  uint16_t next_pid = 1;
  uint16_t pid_max = 65535;        // packet ids cycle through 1..pid_max
  std::vector<uint64_t> pid_used;  // bitset of pid_max + 1 packet ids (QoS 1/2 only)
  uint64_t sent = 0;
  uint64_t acked = 0;
  Pub(std::string_view topic, uint8_t qos, size_t payload)
      : tmpl(topic, qos, payload), probe(topic, 0, payload) {}
};

struct Sub {
  Conn* c = nullptr;
  uint32_t group = 0;
  bool subacked = false;
  bool probed = false;
  std::vector<uint32_t> last_seq;  // per publisher
};

class Bench : public Loop::Handler {
 public:
  explicit Bench(const Options& o) : o_(o), loop_(this) {}
  int Run();

  void OnConnected(Conn& c, int64_t now) override;
  void OnPacket(Conn& c, const Packet& p, int64_t now) override;
  void OnClosed(Conn& c, Conn::State was, const char* why) override;

 private:
  enum Phase { kSetup, kProbe, kRun, kDrain, kDone };

  bool Resolve(const std::string& host, int port, sockaddr_in* out);
  int RunFlow();
  int RunConnections();
  void Error(const std::string& what);
  // Runs loop turns until done() or the deadline; returns done().
  bool RunUntil(const std::function<bool()>& done, int64_t deadline);
  void Turn(int64_t deadline);
  void Tick(int64_t now);
  bool OpenAll(std::vector<Conn*> conns, const sockaddr_in* addr, int64_t timeout);
  int ManyConnLimit(int requested);
  void RunBurst();
  void SampleRss(int64_t now);
  void OpenStep();
  void Disconnect();
  void StartWindow(int64_t now);
  void EndWindow(int64_t now);
  void Emit(Pub& p, int64_t ts);
  bool CanSend(const Pub& p) const;
  void GenerateOpenLoop(int64_t now);
  void GenerateAtRate();
  int64_t NextDue() const;
  bool ShouldSpin() const;
  int64_t Backlog() const {
    return int64_t(sent_total_ * fan_) - int64_t(received_total_) - forgiven_;
  }
  void OnPublish(Sub& s, const Packet& p, int64_t now);
  void OnAck(Pub& p, uint16_t pid);
  bool DrainDone(int64_t now);
  void Report(const char* unit, double rate, const std::function<void(Json&)>& extra = {});

  Options o_;
  Loop loop_;
  std::string id_prefix_;
  sockaddr_in pub_addr_{}, sub_addr_{};
  uint32_t nonce_ = 0;
  bool shared_ = false;
  std::deque<Conn> conns_;
  std::vector<Pub> pubs_;
  std::vector<Sub> subs_;
  std::vector<SeqSet> seen_;  // [group * publishers + publisher]
  uint64_t fan_ = 1;          // deliveries expected per message
  Phase phase_ = kSetup;
  bool paused_ = false;  // QoS 0 open loop: at the backlog cap

  // Connection opening, bounded concurrency.
  std::vector<Conn*> open_list_;
  const sockaddr_in* open_addr_ = nullptr;
  size_t open_next_ = 0;
  int open_pending_ = 0;
  int connected_ = 0;
  int connect_failed_ = 0;
  int open_fds_ = 0;
  int64_t last_connack_ns_ = 0;
  Histogram handshake_;
  uint64_t open_seq_ = 0;  // connections started (source address spreading past 25,000)

  // Errors.
  int errors_ = 0;
  std::string first_error_;
  uint64_t protocol_errors_ = 0;
  uint64_t foreign_ = 0;
  uint64_t unexpected_acks_ = 0;

  // Traffic.
  int64_t run_start_ = 0, measure_start_ = 0, run_end_ = 0;
  int64_t next_probe_ = 0, next_ping_ = 0;
  uint64_t scheduled_ = 0;  // rate mode
  size_t rr_ = 0;
  uint64_t sent_total_ = 0, received_total_ = 0, unique_total_ = 0, acked_total_ = 0;
  uint64_t duplicates_ = 0, out_of_order_ = 0;
  int64_t forgiven_ = 0;
  int64_t last_recv_ns_ = 0;
  uint64_t progress_mark_ = 0;
  int64_t progress_ns_ = 0;
  int probed_subs_ = 0;

  // manyconn and burst: broker memory, connection cap, burst timing.
  bool burst_ = false, manyconn_ = false;
  int conns_requested_ = 0;
  long broker_fd_room_ = -1;
  long rss_before_kb_ = -1, rss_start_kb_ = -1, rss_end_kb_ = -1, rss_peak_kb_ = -1;
  int64_t next_rss_ns_ = 0, rss_every_ns_ = 0;
  bool resumed_ = true;
  int64_t pause_end_ = 0, resume_ns_ = 0, sent_done_ns_ = 0, prev_recv_ns_ = 0;
  int64_t max_gap_ns_ = 0, max_gap_at_ns_ = 0;

  // Measurement window.
  bool measuring_ = false, measured_ = false;
  int64_t w_start_ = 0, w_end_ = 0;
  int64_t cpu0_ = 0, cpu1_ = 0, bcpu0_ = -1, bcpu1_ = -1, psi0_ = -1, psi1_ = -1;
  uint64_t sys0_ = 0, sys1_ = 0;
  uint64_t sent_window_ = 0, recv_window_ = 0;
  Histogram latency_;
};

}  // namespace bench
