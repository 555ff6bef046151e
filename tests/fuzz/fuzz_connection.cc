// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for a whole client connection: the input is what one client sends to a real
// Broker (two Shards on two IoWorkers that are never started: this thread polls their
// io_contexts, as tests/unit/session does), offered through the Transport interface in chunks.
// Output is swallowed. Per input: a fresh Broker (no store: sessions and retained messages in
// memory), an observer client on worker 1 subscribed to `#` (so publishes cross workers), the
// fuzzed connection, then the peer goes away and everything is torn down; Broker::Start() is
// never called, so no timer is armed (the shard sweep is the only one).
//
// Input layout: byte 0 picks the set-up, the rest is the client's byte stream.
//   bit 0      accept the connection on worker 1 instead of 0 (a CONNECT then moves it or not)
//   bit 1      with access control: a password file (user "fuzz", password "secret") and an ACL
//   bits 2..7  chunking: 0 = the whole stream at once, else a seed for chunk sizes (1..64)
// tests/fuzz/make_connection_seeds.py writes seeds in this layout.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "node/auth/access_control.h"
#include "node/auth/enhanced_auth.h"
#include "node/auth/password_file.h"
#include "node/base/log.h"
#include "node/net/io_worker.h"
#include "node/net/transport.h"
#include "node/protocol/codec.h"
#include "node/protocol/packets.h"
#include "node/session/broker.h"

namespace mqtt {
namespace {

// What outlives one FuzzTransport: the connection across a hand-over between workers.
struct Connection {
  std::weak_ptr<class FuzzTransport> current;
  size_t bytes_written = 0;
};

// A Transport whose peer is the fuzzer: Feed() offers input, output is counted and dropped.
class FuzzTransport final : public net::Transport,
                            public std::enable_shared_from_this<FuzzTransport> {
 public:
  FuzzTransport(net::IoWorker* worker, std::shared_ptr<Connection> conn)
      : worker_(worker), conn_(std::move(conn)) {}

  void Start(net::TransportCallbacks* callbacks, std::string initial_input) override {
    callbacks_ = callbacks;
    conn_->current = weak_from_this();
    if (!initial_input.empty()) Feed(initial_input);
  }
  std::string* output_buffer() override { return open() ? &out_ : &discard_; }
  void RequestFlush() override {
    if (flush_requested_ || !open_or_closing()) return;
    flush_requested_ = true;
    worker_->ScheduleFlush(shared_from_this());
  }
  size_t unsent_bytes() const override { return out_.size(); }
  void PauseReading() override { paused_ = true; }
  void ResumeReading() override {
    paused_ = false;
    std::weak_ptr<FuzzTransport> weak = weak_from_this();
    worker_->Post([weak] {
      if (auto self = weak.lock()) self->Feed({});
    });
  }
  void Close() override {
    if (!open()) return;
    state_ = State::kClosing;
    close_started_ = std::chrono::steady_clock::now();
    RequestFlush();
  }
  void Abort() override {
    if (!open_or_closing()) return;
    if (open()) close_started_ = std::chrono::steady_clock::now();
    out_.clear();
    Shutdown();
  }
  bool closing() const override { return !open(); }
  std::chrono::steady_clock::time_point close_started() const override { return close_started_; }
  std::unique_ptr<net::DetachedTransport> Detach() override;
  net::IoWorker* worker() const override { return worker_; }
  std::string peer() const override { return open_or_closing() ? "192.0.2.7:1883" : "-"; }
  void FlushOutput() override {
    flush_requested_ = false;
    if (!open_or_closing()) return;
    conn_->bytes_written += out_.size();
    out_.clear();
    discard_.clear();
    if (state_ == State::kClosing) Shutdown();
  }

  // The fuzzer's side: bytes from the peer, offered with whatever was not consumed before.
  void Feed(std::string_view bytes) {
    if (!open() || callbacks_ == nullptr) return;
    in_.append(bytes);
    if (paused_ || in_.empty()) return;
    std::shared_ptr<FuzzTransport> self = shared_from_this();  // the handler may let go of us
    std::string data;
    data.swap(in_);
    const size_t consumed = callbacks_->OnInput(data);
    if (consumed > data.size()) __builtin_trap();  // OnInput's contract
    if (open() && callbacks_ != nullptr) in_ = data.substr(consumed) + in_;
  }
  // The peer went away without DISCONNECT.
  void PeerClosed() {
    if (!open_or_closing()) return;
    std::shared_ptr<FuzzTransport> self = shared_from_this();
    Shutdown();
  }

 private:
  enum class State { kOpen, kClosing, kClosed, kDetached };
  bool open() const { return state_ == State::kOpen; }
  bool open_or_closing() const { return state_ == State::kOpen || state_ == State::kClosing; }
  void Shutdown() {
    state_ = State::kClosed;
    in_.clear();
    net::TransportCallbacks* callbacks = callbacks_;
    callbacks_ = nullptr;
    if (callbacks != nullptr) callbacks->OnClosed();
  }

  net::IoWorker* const worker_;
  const std::shared_ptr<Connection> conn_;
  net::TransportCallbacks* callbacks_ = nullptr;
  State state_ = State::kOpen;
  std::string out_, discard_, in_;
  bool flush_requested_ = false;
  bool paused_ = false;
  std::chrono::steady_clock::time_point close_started_;
};

class FuzzDetached final : public net::DetachedTransport {
 public:
  explicit FuzzDetached(std::shared_ptr<Connection> conn) : conn_(std::move(conn)) {}
  std::shared_ptr<net::Transport> Attach(net::IoWorker* worker) override {
    auto transport = std::make_shared<FuzzTransport>(worker, conn_);
    conn_->current = transport;
    return transport;
  }

 private:
  std::shared_ptr<Connection> conn_;
};

std::unique_ptr<net::DetachedTransport> FuzzTransport::Detach() {
  if (!open() || !out_.empty()) return nullptr;
  state_ = State::kDetached;
  callbacks_ = nullptr;
  in_.clear();
  return std::make_unique<FuzzDetached>(conn_);
}

// Everything that lives for the whole process: the workers (never started) and the policy.
struct Fixture {
  net::IoWorker w0{0};
  net::IoWorker w1{1};
  std::shared_ptr<auth::AccessControl> access_control;
  std::shared_ptr<const auth::AuthMethod> hmac = auth::MakeHmacChallengeMethod("fuzz-secret");
  std::string observer_bytes;  // CONNECT "observer" + SUBSCRIBE "#" (3.1.1)

  void PollUntilIdle() {
    for (int round = 0; round < 10000; ++round) {
      if (w0.io().poll() + w1.io().poll() == 0) return;
    }
    __builtin_trap();  // a loop of handlers that never ends
  }
};

// A temporary file holding `text`, removed by the destructor.
class TempFile {
 public:
  explicit TempFile(std::string_view text) {
    char name[] = "/tmp/fuzz_connection.XXXXXX";
    const int fd = mkstemp(name);
    if (fd < 0 || write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      std::abort();
    }
    close(fd);
    path_ = name;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::shared_ptr<auth::AccessControl> MakeAccessControl() {
  absl::StatusOr<std::string> hash = auth::HashPassword("secret", 1);  // fast: 1 iteration
  if (!hash.ok()) std::abort();
  TempFile passwords("fuzz:" + *hash + "\n");
  TempFile acl(
      "topic read $SYS/#\n"
      "user fuzz\n"
      "topic readwrite a/#\n"
      "topic deny a/secret\n"
      "topic write w/+\n"
      "client observer\n"
      "topic read #\n"
      "address 192.0.2.0/24\n"
      "topic read net/#\n"
      "pattern readwrite users/%u/#\n"
      "pattern read clients/%c\n");
  absl::StatusOr<std::shared_ptr<auth::AccessControl>> control =
      auth::AccessControl::Create({passwords.path(), acl.path(), "true"});
  if (!control.ok()) std::abort();
  return *control;
}

Fixture& TheFixture() {
  static Fixture* fixture = [] {
    SetLogLevel(std::getenv("FUZZ_LOG") != nullptr ? LogLevel::kDebug : LogLevel::kError);
    auto* f = new Fixture;
    f->access_control = MakeAccessControl();
    Connect connect;
    connect.version = Version::kV311;
    connect.client_id = "observer";
    connect.clean_start = true;
    EncodeConnect(connect, &f->observer_bytes);
    Subscribe subscribe;
    subscribe.packet_id = 1;
    SubscribeTopic all;
    all.filter = "#";
    all.qos = 2;
    subscribe.topics.push_back(all);
    EncodeSubscribe(subscribe, Version::kV311, &f->observer_bytes);
    return f;
  }();
  return *fixture;
}

// Chunk sizes from a tiny LCG seeded by the set-up byte: reproducible for one input.
class Chunker {
 public:
  explicit Chunker(uint8_t seed) : state_(seed), whole_(seed == 0) {}
  size_t Next(size_t left) {
    if (whole_) return left;
    state_ = state_ * 1103515245u + 12345u;
    return std::min<size_t>(left, 1 + (state_ >> 16) % 64);
  }

 private:
  uint32_t state_;
  bool whole_;
};

// Accepts a connection on `worker` and returns its record (the transport is held by the
// broker's client from then on).
std::shared_ptr<Connection> Open(Fixture& f, Broker& broker, net::IoWorker* worker) {
  auto conn = std::make_shared<Connection>();
  auto transport = std::make_shared<FuzzTransport>(worker, conn);
  conn->current = transport;
  broker.Accept(transport);
  f.PollUntilIdle();
  return conn;
}

void Feed(Fixture& f, const Connection& conn, std::string_view bytes) {
  if (std::shared_ptr<FuzzTransport> t = conn.current.lock()) t->Feed(bytes);
  f.PollUntilIdle();
}

void PeerClosed(Fixture& f, const Connection& conn) {
  if (std::shared_ptr<FuzzTransport> t = conn.current.lock()) t->PeerClosed();
  f.PollUntilIdle();
}

void RunOne(const uint8_t* data, size_t size) {
  if (size == 0) return;
  Fixture& f = TheFixture();
  const uint8_t setup = data[0];
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);

  BrokerOptions options;
  options.max_packet_size = 64 * 1024;  // larger packets only wait for more input
  options.auth_methods.push_back(f.hmac);
  if (setup & 2) options.access_control = f.access_control;
  {
    Broker broker(options, {&f.w0, &f.w1});
    std::shared_ptr<Connection> observer = Open(f, broker, &f.w1);
    Feed(f, *observer, f.observer_bytes);

    std::shared_ptr<Connection> conn = Open(f, broker, (setup & 1) ? &f.w1 : &f.w0);
    Chunker chunker(setup >> 2);
    for (size_t pos = 0; pos < stream.size();) {
      const size_t n = chunker.Next(stream.size() - pos);
      Feed(f, *conn, stream.substr(pos, n));
      pos += n;
    }
    PeerClosed(f, *conn);
    PeerClosed(f, *observer);
    // The broker goes with every session; no handler may still refer to it.
  }
  f.PollUntilIdle();
}

}  // namespace
}  // namespace mqtt

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mqtt::RunOne(data, size);
  return 0;
}
